package errand

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newQueue returns a queue for a test and closes it when the test ends.
func newQueue(t testing.TB, cfg Config) *Queue {
	t.Helper()
	q, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// mustSubmit submits fn and fails the test on error.
func mustSubmit[T any](t testing.TB, q *Queue, fn func(context.Context) (T, error), opts ...Option) *Future[T] {
	t.Helper()
	f, err := Submit(context.Background(), q, fn, opts...)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return f
}

// logBuffer is a log destination for a slog handler, safe for the queue's
// goroutines to write while a test reads.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records decodes the JSON log records (slog.NewJSONHandler) written so far.
func (l *logBuffer) records(t testing.TB) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(l.b.Bytes()))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("log record: %v", err)
		}
		out = append(out, m)
	}
	return out
}
