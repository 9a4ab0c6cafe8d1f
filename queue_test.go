package errand

import (
	"context"
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
