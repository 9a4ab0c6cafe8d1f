package errand

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type emailArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

type receipt struct {
	ID  string `json:"id"`
	Len int    `json:"len"`
}

// TestKindEnqueue: a defined kind runs through the queue with its arguments
// and result making the codec round trip, named after the kind, with the
// kind's default options before Enqueue's.
func TestKindEnqueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts atomic.Int32
		send := Define("email.send", func(ctx context.Context, a emailArgs) (receipt, error) {
			info, ok := TaskFromContext(ctx)
			if !ok || info.Name != "email.send" || info.ID == "" {
				return receipt{}, Permanent(errors.New("no task in the context"))
			}
			if attempts.Add(1) == 1 {
				return receipt{}, errors.New("smtp: try again")
			}
			return receipt{ID: info.ID + "/" + a.To, Len: len(a.Subject)}, nil
		}, WithRetry(RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Second)}))
		q := newQueue(t, Config{})
		f, err := send.Enqueue(context.Background(), q, emailArgs{To: "ann@example.com", Subject: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := f.Await(context.Background())
		if err != nil || r != (receipt{ID: f.ID() + "/ann@example.com", Len: 2}) || f.Attempts() != 2 {
			t.Fatalf("Await = %+v, %v after %d attempts; want the receipt after 2", r, err, f.Attempts())
		}
		if send.Name() != "email.send" {
			t.Fatalf("Name = %q", send.Name())
		}
	})
}

// TestKindCodecRoundTrip: a value that cannot be stored fails: at Enqueue
// for arguments, as a permanent task error for a result.
func TestKindCodecRoundTrip(t *testing.T) {
	q := newQueue(t, Config{Retry: RetryPolicy{MaxAttempts: 5}})
	badArgs := Define("bad.args", func(context.Context, float64) (int, error) { return 0, nil })
	if _, err := badArgs.Enqueue(context.Background(), q, math.Inf(1)); err == nil || !strings.Contains(err.Error(), "encoding the arguments") {
		t.Fatalf("Enqueue(+Inf) = %v, want an encoding error", err)
	}
	var runs atomic.Int32
	badResult := Define("bad.result", func(context.Context, int) (chan int, error) { runs.Add(1); return make(chan int), nil })
	f, err := badResult.Enqueue(context.Background(), q, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Await(context.Background()); err == nil || !strings.Contains(err.Error(), "encoding the result") || runs.Load() != 1 {
		t.Fatalf("result that cannot be encoded: %v after %d runs; want one permanent failure", err, runs.Load())
	}
	// The round trip drops what the codec drops: unexported fields.
	type secret struct {
		Public  string
		private string
	}
	echo := Define("echo", func(_ context.Context, s secret) (secret, error) { return s, nil })
	g, err := echo.Enqueue(context.Background(), q, secret{Public: "a", private: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := g.Await(context.Background()); err != nil || got != (secret{Public: "a"}) {
		t.Fatalf("echo = %+v, %v; want only the exported field back", got, err)
	}
}

type upperCodec struct{ JSONCodec }

func (upperCodec) Marshal(v any) ([]byte, error) {
	b, err := JSONCodec{}.Marshal(v)
	return []byte(strings.ToUpper(string(b))), err
}

// TestKindWithCodec: WithCodec swaps the codec of a copy, not the original.
func TestKindWithCodec(t *testing.T) {
	q := newQueue(t, Config{})
	k := Define("echo", func(_ context.Context, s string) (string, error) { return s, nil })
	up := k.WithCodec(upperCodec{})
	for _, c := range []struct {
		k    *Kind[string, string]
		want string
	}{{k, "shout"}, {up, "SHOUT"}} {
		f, err := c.k.Enqueue(context.Background(), q, "shout")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := f.Await(context.Background()); err != nil || got != c.want {
			t.Fatalf("got %q, %v; want %q", got, err, c.want)
		}
	}
	if _, err := k.WithCodec(nil).Enqueue(context.Background(), q, "x"); err == nil {
		t.Fatal("Enqueue with a nil codec: no error")
	}
}

// TestKindFuture: a live task re-attaches by id to the very same future;
// an unknown or finished id is ErrNotFound; another kind's id is an error.
func TestKindFuture(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	gate := make(chan struct{})
	slow := Define("slow", func(ctx context.Context, n int) (int, error) { <-gate; return n * 2, nil })
	other := Define("other", func(context.Context, int) (int, error) { return 0, nil })
	f, err := slow.Enqueue(context.Background(), q, 21)
	if err != nil {
		t.Fatal(err)
	}
	again, err := slow.Future(q, f.ID())
	if err != nil || again != f {
		t.Fatalf("Future(id) = %p, %v; want the same future %p", again, err, f)
	}
	if _, err := other.Future(q, f.ID()); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("another kind's Future = %v, want a kind mismatch", err)
	}
	if _, err := slow.Future(q, "00000000-0000-0000-0000-000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v, want ErrNotFound", err)
	}
	close(gate)
	if v, err := again.Await(context.Background()); v != 42 || err != nil {
		t.Fatalf("Await = %d, %v", v, err)
	}
	if _, err := slow.Future(q, f.ID()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finished task: %v, want ErrNotFound", err)
	}
	q.mu.Lock()
	n := len(q.named)
	q.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d tasks still indexed after they finished", n)
	}
}

// TestDefineBadInput: Define never panics; Enqueue reports what was wrong.
func TestDefineBadInput(t *testing.T) {
	q := newQueue(t, Config{})
	fn := func(context.Context, int) (int, error) { return 0, nil }
	for _, c := range []struct {
		name, mention string
		k             *Kind[int, int]
	}{
		{"empty name", "empty kind name", Define("", fn)},
		{"nil function", "nil function", Define[int, int]("x", nil)},
		{"bad option", "WithTimeout", Define("x", fn, WithTimeout(-1))},
		{"per-task option", "per task", Define("x", fn, WithKey("k"))},
	} {
		if _, err := c.k.Enqueue(context.Background(), q, 1); err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: Enqueue = %v, want an error mentioning %q", c.name, err, c.mention)
		}
	}
	var nilKind *Kind[int, int]
	if _, err := nilKind.Enqueue(context.Background(), q, 1); err == nil {
		t.Error("Enqueue on a nil kind: no error")
	}
	if s := q.Stats(); s.Submitted != 0 {
		t.Errorf("Submitted = %d, want 0", s.Submitted)
	}
}

// TestTaskFromContext: inside a task (and contexts derived from it) the
// task is described; outside, and in a plain Go task, it is not.
func TestTaskFromContext(t *testing.T) {
	if _, ok := TaskFromContext(context.Background()); ok {
		t.Fatal("TaskFromContext(Background) reported a task")
	}
	q := newQueue(t, Config{})
	f := mustSubmit(t, q, func(ctx context.Context) (string, error) {
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		info, ok := TaskFromContext(derived)
		if !ok {
			return "", errors.New("no task")
		}
		return info.Name + "#" + string(rune('0'+info.Attempt)), nil
	}, WithName("job"))
	if got, err := f.Await(context.Background()); err != nil || got != "job#1" {
		t.Fatalf("got %q, %v; want job#1", got, err)
	}
	plain := make(chan bool, 1)
	if err := q.Go(context.Background(), func(ctx context.Context) error {
		_, ok := TaskFromContext(ctx)
		plain <- ok
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if <-plain {
		t.Fatal("a plain Go task reported a task")
	}
}
