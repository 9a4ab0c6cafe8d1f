package errand

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestFirstAttemptContextEndsWithIt: the context of a first attempt (which
// runs on its task, with no allocation of its own) behaves as a context of
// that attempt alone: kept past the attempt, it stays canceled while the
// retry runs on a context of its own; Done returns one channel before and
// after; callbacks and derived contexts fire when the attempt returns; its
// values and TaskFromContext are the task's.
func TestFirstAttemptContextEndsWithIt(t *testing.T) {
	q := newQueue(t, Config{Retry: RetryPolicy{MaxAttempts: 2, Backoff: Constant(0)}})
	ctx := context.WithValue(context.Background(), subCtxKey{}, "v")
	var first context.Context
	var firstDone <-chan struct{}
	var derived context.Context
	var cancelDerived context.CancelFunc
	fired := make(chan struct{})
	f := mustSubmitCtx(t, ctx, q, func(ctx context.Context) (string, error) {
		info, ok := TaskFromContext(ctx)
		if !ok || info.Attempt == 0 {
			return "", Permanent(errors.New("no task in the attempt's context"))
		}
		if info.Attempt == 1 {
			first, firstDone = ctx, ctx.Done()
			context.AfterFunc(ctx, func() { close(fired) })
			derived, cancelDerived = context.WithCancel(ctx)
			if ctx.Err() != nil {
				return "", Permanent(errors.New("first context canceled while it runs"))
			}
			return "", errors.New("try again")
		}
		select {
		case <-firstDone:
		default:
			return "", Permanent(errors.New("the first attempt's Done is open during the second"))
		}
		switch {
		case ctx == first:
			return "", Permanent(errors.New("the second attempt runs on the first one's context"))
		case first.Err() != context.Canceled:
			return "", Permanent(errors.New("the first attempt's context is not canceled"))
		case first.Done() != firstDone:
			return "", Permanent(errors.New("Done returned another channel after the attempt"))
		case ctx.Err() != nil:
			return "", Permanent(errors.New("second attempt's context canceled while it runs"))
		}
		fi, _ := TaskFromContext(first)
		if fi.ID != info.ID {
			return "", Permanent(errors.New("the two attempts' contexts name different tasks"))
		}
		return ctx.Value(subCtxKey{}).(string) + first.Value(subCtxKey{}).(string), nil
	})
	v, err := f.Await(context.Background())
	if err != nil || v != "vv" {
		t.Fatalf("Await = %q, %v", v, err)
	}
	defer cancelDerived()
	<-fired
	<-derived.Done()
	if derived.Err() != context.Canceled || f.Attempts() != 2 {
		t.Fatalf("derived Err %v, attempts %d", derived.Err(), f.Attempts())
	}
	if q, ok := first.Value(queueKey{}).(*Queue); !ok || q == nil {
		t.Fatal("the first attempt's context does not name its queue")
	}
	if d, ok := first.Deadline(); ok || !d.IsZero() {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
}

// TestFirstAttemptContextDoneAfterItEnds: a first attempt's context whose
// Done, or AfterFunc, is first asked for after the attempt returned reports
// it canceled at once, with one channel on every call.
func TestFirstAttemptContextDoneAfterItEnds(t *testing.T) {
	q := newQueue(t, Config{})
	f := mustSubmit(t, q, func(ctx context.Context) (context.Context, error) { return ctx, nil })
	ctx, err := f.Await(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != context.Canceled {
		t.Fatalf("Err = %v after the attempt", ctx.Err())
	}
	d := ctx.Done()
	<-d
	if ctx.Done() != d {
		t.Fatal("Done returned another channel")
	}
	ran := make(chan struct{})
	context.AfterFunc(ctx, func() { close(ran) })
	<-ran
}

// TestFirstAttemptContextCanceledWhileRunning: Future.Cancel and Close
// cancel a first attempt running on its task: Done closes, also for a
// select that asked for it before the cancel, and Err says so.
func TestFirstAttemptContextCanceledWhileRunning(t *testing.T) {
	for _, how := range []string{"Cancel", "Close"} {
		t.Run(how, func(t *testing.T) {
			q := newQueue(t, Config{})
			var wg sync.WaitGroup
			waiting := make(chan struct{})
			f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
				wg.Go(func() { <-ctx.Done() }) // a goroutine that holds Done
				done := ctx.Done()
				close(waiting)
				<-done
				return 0, ctx.Err()
			})
			<-waiting
			if how == "Cancel" {
				if !f.Cancel() {
					t.Fatal("Cancel = false")
				}
			} else if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			_, err := f.Await(context.Background())
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Await = %v, want it to wrap context.Canceled", err)
			}
			wg.Wait()
		})
	}
}

// TestFirstAttemptWithTimeoutHasDeadline: a first attempt with a deadline
// runs on a context of its own, which has it.
func TestFirstAttemptWithTimeoutHasDeadline(t *testing.T) {
	q := newQueue(t, Config{})
	f := mustSubmit(t, q, func(ctx context.Context) (bool, error) {
		_, ok := ctx.Deadline()
		return ok, nil
	}, WithTimeout(time.Hour))
	if ok, err := f.Await(context.Background()); err != nil || !ok {
		t.Fatalf("Deadline reported %v, %v", ok, err)
	}
}

// TestSubmitAllocatesOnlyTheFuture: a future whose task succeeds on its
// first attempt costs one allocation, the Future itself.
func TestSubmitAllocatesOnlyTheFuture(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	var wg sync.WaitGroup
	fn := func(context.Context) (int, error) { wg.Done(); return 1, nil }
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		wg.Add(1)
		if _, err := Submit(ctx, q, fn); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	})
	if allocs > 1 {
		t.Fatalf("%v allocations per Submit, want 1", allocs)
	}
}
