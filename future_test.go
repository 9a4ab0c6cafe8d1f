package errand

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
)

// errFut is the error the tasks of this file fail with.
var errFut = errors.New("future test failure")

// futIsClosed reports whether ch is closed, without waiting.
func futIsClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// futBlocker submits a task that occupies a worker until the returned release
// is called (at the latest when the test ends); it returns once the task is
// running.
func futBlocker(t *testing.T, q *Queue) (f *Future[int], release func()) {
	t.Helper()
	started, gate := make(chan struct{}), make(chan struct{})
	f = mustSubmit(t, q, func(context.Context) (int, error) {
		close(started)
		<-gate
		return -1, nil
	})
	<-started
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the queue's Close, even if the test fails early
	return f, release
}

func TestSubmitReturnsTypedFutureAndAwait(t *testing.T) {
	q := newQueue(t, Config{})

	var fi *Future[int] = mustSubmit(t, q, func(context.Context) (int, error) { return 42, nil })
	var fs *Future[string] = mustSubmit(t, q, func(context.Context) (string, error) { return "hi", nil })
	type pair struct{ a, b int }
	var fp *Future[*pair] = mustSubmit(t, q, func(context.Context) (*pair, error) { return &pair{1, 2}, nil })
	fe := mustSubmit(t, q, func(context.Context) (int, error) { return 0, fmt.Errorf("wrapped: %w", errFut) })

	if v, err := fi.Await(context.Background()); v != 42 || err != nil {
		t.Errorf("Future[int].Await = %v, %v; want 42, nil", v, err)
	}
	if v, err := fs.Await(context.Background()); v != "hi" || err != nil {
		t.Errorf("Future[string].Await = %q, %v; want \"hi\", nil", v, err)
	}
	if v, err := fp.Await(context.Background()); err != nil || v == nil || *v != (pair{1, 2}) {
		t.Errorf("Future[*pair].Await = %v, %v; want &{1 2}, nil", v, err)
	}
	v, err := fe.Await(context.Background())
	if v != 0 || !errors.Is(err, errFut) || err.Error() != "wrapped: "+errFut.Error() {
		t.Errorf("failing Await = %v, %v; want 0 and the task's own error", v, err)
	}
	for _, c := range []struct {
		name string
		got  Status
		want Status
	}{{"int", fi.Status(), Succeeded}, {"string", fs.Status(), Succeeded}, {"pair", fp.Status(), Succeeded}, {"failing", fe.Status(), Failed}} {
		if c.got != c.want {
			t.Errorf("%s: Status = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := fe.Attempts(); n != 1 {
		t.Errorf("failing task Attempts = %d, want 1", n)
	}
	// Awaiting again returns the same result.
	if v, err := fi.Await(context.Background()); v != 42 || err != nil {
		t.Errorf("second Await = %v, %v; want 42, nil", v, err)
	}
	q.Close()
	if s := q.Stats(); s.Submitted != 4 || s.Succeeded != 3 || s.Failed != 1 || s.Canceled != 0 {
		t.Errorf("Stats = %+v; want Submitted 4, Succeeded 3, Failed 1", s)
	}
}

func TestResultAndDoneFollowResolution(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	started, gate := make(chan struct{}), make(chan struct{})
	f := mustSubmit(t, q, func(context.Context) (int, error) {
		close(started)
		<-gate
		return 7, nil
	})
	done := f.Done()
	if done != f.Done() {
		t.Error("Done returned different channels")
	}
	<-started
	if v, err := f.Result(); v != 0 || err != ErrNotDone {
		t.Errorf("Result while running = %v, %v; want 0, ErrNotDone", v, err)
	}
	if futIsClosed(done) {
		t.Fatal("Done closed while the task is running")
	}
	if st := f.Status(); st != Running {
		t.Fatalf("Status = %v, want running", st)
	}
	close(gate)
	<-done
	if st := f.Status(); st != Succeeded {
		t.Errorf("Status after Done = %v, want succeeded", st)
	}
	if v, err := f.Result(); v != 7 || err != nil {
		t.Errorf("Result after Done = %v, %v; want 7, nil", v, err)
	}
	if !futIsClosed(f.Done()) {
		t.Error("Done called after resolution returned an open channel")
	}
}

func TestResultNotDoneWhileQueued(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	_, release := futBlocker(t, q)
	f := mustSubmit(t, q, func(context.Context) (string, error) { return "x", nil })
	if v, err := f.Result(); v != "" || !errors.Is(err, ErrNotDone) {
		t.Errorf("Result while queued = %q, %v; want \"\", ErrNotDone", v, err)
	}
	if futIsClosed(f.Done()) {
		t.Error("Done closed while queued")
	}
	release()
	if v, err := f.Await(context.Background()); v != "x" || err != nil {
		t.Errorf("Await = %q, %v", v, err)
	}
}

func TestStatusTransitions(t *testing.T) {
	t.Run("queued-running-succeeded", func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		_, release := futBlocker(t, q)
		started, gate := make(chan struct{}), make(chan struct{})
		f := mustSubmit(t, q, func(context.Context) (int, error) {
			close(started)
			<-gate
			return 1, nil
		})
		if st := f.Status(); st != Queued {
			t.Fatalf("Status behind a busy worker = %v, want queued", st)
		}
		if n := f.Attempts(); n != 0 {
			t.Errorf("Attempts while queued = %d, want 0", n)
		}
		release()
		<-started
		if st := f.Status(); st != Running {
			t.Errorf("Status while running = %v, want running", st)
		}
		if n := f.Attempts(); n != 1 {
			t.Errorf("Attempts while running = %d, want 1", n)
		}
		close(gate)
		<-f.Done()
		if st := f.Status(); st != Succeeded {
			t.Errorf("final Status = %v, want succeeded", st)
		}
	})
	t.Run("failed", func(t *testing.T) {
		q := newQueue(t, Config{})
		f := mustSubmit(t, q, func(context.Context) (int, error) { return 0, errFut })
		<-f.Done()
		if st := f.Status(); st != Failed || !st.Final() {
			t.Errorf("Status = %v, want failed (final)", st)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		_, release := futBlocker(t, q)
		defer release()
		f := mustSubmit(t, q, func(context.Context) (int, error) { return 0, nil })
		f.Cancel()
		if st := f.Status(); st != Canceled || !st.Final() {
			t.Errorf("Status = %v, want canceled (final)", st)
		}
	})
	t.Run("scheduled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue(t, Config{})
			f := mustSubmit(t, q, func(context.Context) (int, error) { return 3, nil }, WithDelay(time.Minute))
			if st := f.Status(); st != Scheduled || st.Final() {
				t.Fatalf("Status of a delayed task = %v, want scheduled", st)
			}
			time.Sleep(time.Minute - time.Nanosecond)
			synctest.Wait()
			if st := f.Status(); st != Scheduled {
				t.Fatalf("Status just before due = %v, want scheduled", st)
			}
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			if v, err := f.Result(); v != 3 || err != nil || f.Status() != Succeeded {
				t.Errorf("after the delay: Result = %v, %v, Status %v; want 3, nil, succeeded", v, err, f.Status())
			}
		})
	})
	t.Run("retrying", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue(t, Config{})
			var calls atomic.Int32
			f := mustSubmit(t, q, func(context.Context) (int, error) {
				if calls.Add(1) == 1 {
					return 0, errFut
				}
				return 9, nil
			}, WithRetry(RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Second)}))
			synctest.Wait()
			if st := f.Status(); st != Retrying {
				t.Fatalf("Status after a failed attempt = %v, want retrying", st)
			}
			if n := f.Attempts(); n != 1 {
				t.Errorf("Attempts while backing off = %d, want 1", n)
			}
			if s := q.Stats(); s.Scheduled != 1 || s.Running != 0 || s.Queued != 0 || s.Retried != 1 {
				t.Errorf("Stats while backing off = %+v; want Scheduled 1, Running 0, Queued 0, Retried 1", s)
			}
			if _, err := f.Result(); err != ErrNotDone {
				t.Errorf("Result while backing off: %v, want ErrNotDone", err)
			}
			time.Sleep(time.Second)
			synctest.Wait()
			if v, err := f.Result(); v != 9 || err != nil || f.Status() != Succeeded || f.Attempts() != 2 {
				t.Errorf("after the retry: %v, %v, %v, attempts %d; want 9, nil, succeeded, 2", v, err, f.Status(), f.Attempts())
			}
		})
	})
}

func TestAttemptsCountsEveryAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{})
		f := mustSubmit(t, q, func(context.Context) (int, error) { return 0, errFut },
			WithRetry(RetryPolicy{MaxAttempts: 4, Backoff: Constant(time.Millisecond)}))
		start := time.Now()
		_, err := f.Await(context.Background())
		if !errors.Is(err, errFut) {
			t.Fatalf("Await err = %v, want errFut", err)
		}
		if n := f.Attempts(); n != 4 {
			t.Errorf("Attempts = %d, want 4", n)
		}
		if d := time.Since(start); d != 3*time.Millisecond {
			t.Errorf("three back-offs took %v, want 3ms", d)
		}
		if s := q.Stats(); s.Retried != 3 || s.Failed != 1 {
			t.Errorf("Stats = %+v; want Retried 3, Failed 1", s)
		}
	})
}

func TestFutureIDIsStableUUID(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	_, release := futBlocker(t, q)
	f1 := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil })
	f2 := mustSubmit(t, q, func(context.Context) (int, error) { return 2, nil })
	id1 := f1.ID()
	u, err := uuid.Parse(id1)
	if err != nil {
		t.Fatalf("ID %q is not a UUID: %v", id1, err)
	}
	if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		t.Errorf("ID %q: version %d variant %v, want a random (v4, RFC 4122) UUID", id1, u.Version(), u.Variant())
	}
	if u.String() != id1 {
		t.Errorf("ID %q is not in canonical form %q", id1, u.String())
	}
	if f1.ID() != id1 {
		t.Error("ID changed between calls")
	}
	if f2.ID() == id1 {
		t.Error("two futures share an ID")
	}
	release()
	if _, err := f1.Await(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f1.ID() != id1 {
		t.Errorf("ID after resolution = %q, want %q", f1.ID(), id1)
	}
}

func TestAwaitContextEndsTaskGoesOn(t *testing.T) {
	q := newQueue(t, Config{})
	started, gate := make(chan struct{}), make(chan struct{})
	var taskCtxErr atomic.Value
	f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
		close(started)
		<-gate
		taskCtxErr.Store(fmt.Sprint(ctx.Err()))
		return 5, nil
	})
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if v, err := f.Await(ctx); v != 0 || err != context.Canceled {
		t.Errorf("Await with a canceled ctx = %v, %v; want 0, context.Canceled", v, err)
	}
	if st := f.Status(); st != Running {
		t.Errorf("Status after the Await gave up = %v, want running", st)
	}
	close(gate)
	if v, err := f.Await(context.Background()); v != 5 || err != nil {
		t.Errorf("later Await = %v, %v; want 5, nil", v, err)
	}
	if got := taskCtxErr.Load(); got != "<nil>" {
		t.Errorf("the task's ctx.Err() = %v, want nil: the awaiter's ctx must not reach the task", got)
	}
}

func TestAwaitTimeoutTaskGoesOn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{})
		f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
			time.Sleep(time.Hour)
			return 11, ctx.Err()
		})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if v, err := f.Await(ctx); v != 0 || err != context.DeadlineExceeded {
			t.Errorf("Await = %v, %v; want 0, context.DeadlineExceeded", v, err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Await returned after %v, want 1s", d)
		}
		if st := f.Status(); st != Running {
			t.Errorf("Status = %v, want running", st)
		}
		if v, err := f.Await(context.Background()); v != 11 || err != nil {
			t.Errorf("later Await = %v, %v; want 11, nil", v, err)
		}
		if d := time.Since(start); d != time.Hour {
			t.Errorf("task finished after %v, want 1h", d)
		}
	})
}

func TestCancelQueuedTaskNeverRuns(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	_, release := futBlocker(t, q)
	var ran atomic.Bool
	f := mustSubmit(t, q, func(context.Context) (int, error) { ran.Store(true); return 1, nil })
	if s := q.Stats(); s.Queued != 1 {
		t.Fatalf("Stats.Queued = %d, want 1", s.Queued)
	}
	if !f.Cancel() {
		t.Fatal("Cancel of a queued task = false, want true")
	}
	// Resolved at once, with the worker still busy.
	if !futIsClosed(f.Done()) {
		t.Fatal("a canceled queued task is not resolved at once")
	}
	if v, err := f.Result(); v != 0 || !errors.Is(err, ErrCanceled) {
		t.Errorf("Result = %v, %v; want 0, ErrCanceled", v, err)
	}
	if st := f.Status(); st != Canceled {
		t.Errorf("Status = %v, want canceled", st)
	}
	if s := q.Stats(); s.Queued != 0 || s.Canceled != 1 {
		t.Errorf("Stats after Cancel = %+v; want Queued 0, Canceled 1", s)
	}
	if f.Cancel() {
		t.Error("second Cancel = true, want false")
	}
	release()
	// A task submitted after it still runs, and the canceled one never does.
	g := mustSubmit(t, q, func(context.Context) (int, error) { return 2, nil })
	if v, err := g.Await(context.Background()); v != 2 || err != nil {
		t.Fatalf("next task: %v, %v", v, err)
	}
	q.Close()
	if ran.Load() {
		t.Error("the canceled task ran")
	}
	if s := q.Stats(); s.Submitted != 3 || s.Succeeded != 2 || s.Canceled != 1 {
		t.Errorf("Stats = %+v; want Submitted 3, Succeeded 2, Canceled 1", s)
	}
}

func TestCancelDelayedTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{})
		var ran atomic.Bool
		f := mustSubmit(t, q, func(context.Context) (int, error) { ran.Store(true); return 1, nil }, WithDelay(time.Hour))
		if s := q.Stats(); s.Scheduled != 1 {
			t.Fatalf("Stats.Scheduled = %d, want 1", s.Scheduled)
		}
		if !f.Cancel() {
			t.Fatal("Cancel = false, want true")
		}
		if s := q.Stats(); s.Scheduled != 0 || s.Canceled != 1 {
			t.Errorf("Stats after Cancel = %+v; want Scheduled 0, Canceled 1", s)
		}
		if !futIsClosed(f.Done()) {
			t.Fatal("not resolved at once")
		}
		if _, err := f.Result(); !errors.Is(err, ErrCanceled) {
			t.Errorf("Result err = %v, want ErrCanceled", err)
		}
		if f.Cancel() {
			t.Error("second Cancel = true")
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if ran.Load() {
			t.Error("the canceled delayed task ran")
		}
		if st := f.Status(); st != Canceled {
			t.Errorf("Status = %v", st)
		}
	})
}

func TestCancelRunningTaskNotRetried(t *testing.T) {
	for _, c := range []struct {
		name    string
		ret     func(ctx context.Context) error
		wantErr []error
	}{
		{"returns ctx.Err", func(ctx context.Context) error { return ctx.Err() }, []error{ErrCanceled, context.Canceled}},
		{"returns own error", func(ctx context.Context) error { return fmt.Errorf("stopped: %w", errFut) }, []error{ErrCanceled, errFut}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, Config{Retry: RetryPolicy{MaxAttempts: 5, Backoff: Constant(0)}})
				started := make(chan struct{}, 5)
				f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
					started <- struct{}{}
					<-ctx.Done()
					return 0, c.ret(ctx)
				}, WithRetry(RetryPolicy{MaxAttempts: 5, Backoff: Constant(time.Second)}))
				<-started
				if !f.Cancel() {
					t.Fatal("Cancel of a running task = false")
				}
				if f.Cancel() {
					t.Error("second Cancel of a running task = true, want false")
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // turns a hang into a failure
				defer cancel()
				_, err := f.Await(ctx)
				for _, want := range c.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("err = %v; want errors.Is %v", err, want)
					}
				}
				time.Sleep(time.Minute) // any retry would be due by now
				synctest.Wait()
				if n := f.Attempts(); n != 1 || len(started) != 0 {
					t.Errorf("Attempts = %d (%d more starts), want 1: a canceled task must not be retried", n, len(started))
				}
				if st := f.Status(); st != Canceled {
					t.Errorf("Status = %v, want canceled", st)
				}
				if s := q.Stats(); s.Retried != 0 || s.Canceled != 1 || s.Failed != 0 {
					t.Errorf("Stats = %+v; want Retried 0, Canceled 1, Failed 0", s)
				}
			})
		})
	}
}

func TestCancelRunningTaskThatSucceedsAnyway(t *testing.T) {
	q := newQueue(t, Config{})
	started := make(chan struct{})
	f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		return 8, nil
	})
	<-started
	if !f.Cancel() {
		t.Fatal("Cancel = false")
	}
	if v, err := f.Await(context.Background()); v != 8 || err != nil {
		t.Errorf("Await = %v, %v; want 8, nil (the task's own result)", v, err)
	}
	if st := f.Status(); st != Succeeded {
		t.Errorf("Status = %v, want succeeded", st)
	}
}

func TestCancelFinishedTask(t *testing.T) {
	q := newQueue(t, Config{})
	ok := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil })
	bad := mustSubmit(t, q, func(context.Context) (int, error) { return 0, errFut })
	for _, f := range []*Future[int]{ok, bad} {
		<-f.Done()
		st := f.Status()
		if f.Cancel() {
			t.Errorf("Cancel of a %v task = true, want false", st)
		}
		if f.Status() != st {
			t.Errorf("Cancel changed the status from %v to %v", st, f.Status())
		}
	}
	if v, err := ok.Result(); v != 1 || err != nil {
		t.Errorf("Result after Cancel = %v, %v", v, err)
	}
	if s := q.Stats(); s.Canceled != 0 {
		t.Errorf("Stats.Canceled = %d, want 0", s.Canceled)
	}
}

func TestAwaitAllResultsInOrder(t *testing.T) {
	q := newQueue(t, Config{Workers: 3})
	gates := []chan struct{}{make(chan struct{}), make(chan struct{}), make(chan struct{})}
	var fs []*Future[int]
	for i := range gates {
		fs = append(fs, mustSubmit(t, q, func(context.Context) (int, error) {
			<-gates[i]
			return (i + 1) * 10, nil
		}))
	}
	// Finish them in reverse order.
	for i := len(fs) - 1; i >= 0; i-- {
		close(gates[i])
		<-fs[i].Done()
	}
	got, err := AwaitAll(context.Background(), fs...)
	if err != nil || fmt.Sprint(got) != "[10 20 30]" {
		t.Errorf("AwaitAll = %v, %v; want [10 20 30], nil", got, err)
	}
	if got, err := AwaitAll[int](context.Background()); err != nil || len(got) != 0 {
		t.Errorf("AwaitAll of nothing = %v, %v; want empty, nil", got, err)
	}
}

func TestAwaitAllWaitsForAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 3})
		var fs []*Future[int]
		for i, d := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second} {
			fs = append(fs, mustSubmit(t, q, func(context.Context) (int, error) {
				time.Sleep(d)
				return i, nil
			}))
		}
		start := time.Now()
		got, err := AwaitAll(context.Background(), fs...)
		if err != nil || fmt.Sprint(got) != "[0 1 2]" {
			t.Errorf("AwaitAll = %v, %v", got, err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("AwaitAll returned after %v, want 3s (the slowest)", d)
		}
	})
}

func TestAwaitAllFirstFailureWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 3})
		errEarly, errLate := errors.New("early"), errors.New("late")
		gate := make(chan struct{})
		slow := mustSubmit(t, q, func(context.Context) (int, error) { <-gate; return 1, nil })
		late := mustSubmit(t, q, func(context.Context) (int, error) { time.Sleep(2 * time.Second); return 0, errLate })
		early := mustSubmit(t, q, func(context.Context) (int, error) { time.Sleep(time.Second); return 0, errEarly })
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // turns a hang into a failure
		defer cancel()
		got, err := AwaitAll(ctx, slow, late, early)
		if got != nil || err != errEarly {
			t.Errorf("AwaitAll = %v, %v; want nil, the earliest error (%v)", got, err, errEarly)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("AwaitAll returned after %v, want 1s", d)
		}
		if st := slow.Status(); st != Running {
			t.Errorf("slow task status = %v; AwaitAll must not wait for it", st)
		}
		close(gate)
		if v, err := slow.Await(context.Background()); v != 1 || err != nil {
			t.Errorf("slow task: %v, %v", v, err)
		}
	})
}

func TestAwaitAllContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{})
		gate := make(chan struct{})
		defer close(gate)
		a := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil })
		b := mustSubmit(t, q, func(context.Context) (int, error) { <-gate; return 2, nil })
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		got, err := AwaitAll(ctx, a, b)
		if got != nil || err != context.DeadlineExceeded {
			t.Errorf("AwaitAll = %v, %v; want nil, context.DeadlineExceeded", got, err)
		}
		if d := time.Since(start); d != time.Minute {
			t.Errorf("returned after %v, want 1m", d)
		}
	})
}

func TestAwaitNilFuture(t *testing.T) {
	q := newQueue(t, Config{})
	a := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil })
	got, err := AwaitAll(context.Background(), a, nil)
	if err == nil || got != nil {
		t.Errorf("AwaitAll with a nil future = %v, %v; want nil, an error", got, err)
	}
	i, v, err := AwaitAny(context.Background(), nil, a)
	if err == nil || i != -1 || v != 0 {
		t.Errorf("AwaitAny with a nil future = %d, %v, %v; want -1, 0, an error", i, v, err)
	}
	i, v, err = AwaitAny[int](context.Background())
	if err == nil || i != -1 || v != 0 {
		t.Errorf("AwaitAny of nothing = %d, %v, %v; want -1, 0, an error", i, v, err)
	}
}

func TestAwaitAnyFirstResolved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 3})
		var fs []*Future[string]
		for i, d := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second} {
			fs = append(fs, mustSubmit(t, q, func(context.Context) (string, error) {
				time.Sleep(d)
				return fmt.Sprint("v", i), nil
			}))
		}
		start := time.Now()
		i, v, err := AwaitAny(context.Background(), fs...)
		if i != 1 || v != "v1" || err != nil {
			t.Errorf("AwaitAny = %d, %q, %v; want 1, \"v1\", nil", i, v, err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("returned after %v, want 1s", d)
		}
		if st := fs[0].Status(); st != Running {
			t.Errorf("others must go on: status %v", st)
		}

		// A failure is a resolution too.
		bad := mustSubmit(t, q, func(context.Context) (string, error) { return "", errFut })
		slow := mustSubmit(t, q, func(context.Context) (string, error) { time.Sleep(time.Hour); return "", nil })
		i, v, err = AwaitAny(context.Background(), slow, bad)
		if i != 1 || v != "" || err != errFut {
			t.Errorf("AwaitAny = %d, %q, %v; want 1, \"\", errFut", i, v, err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		i, v, err = AwaitAny(ctx, slow)
		if i != -1 || v != "" || err != context.DeadlineExceeded {
			t.Errorf("AwaitAny with an ending ctx = %d, %q, %v; want -1, \"\", DeadlineExceeded", i, v, err)
		}
	})
}

func TestPanicBecomesPanicError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		f := mustSubmit(t, q, func(context.Context) (int, error) { panic("kaboom") })
		_, err := f.Await(context.Background())
		var pe *PanicError
		if !errors.As(err, &pe) {
			t.Fatalf("err = %T %v, want *PanicError", err, err)
		}
		if pe.Value != "kaboom" {
			t.Errorf("PanicError.Value = %v, want kaboom", pe.Value)
		}
		if !strings.Contains(string(pe.Stack), "TestPanicBecomesPanicError") {
			t.Errorf("stack does not name the panicking function:\n%s", pe.Stack)
		}
		if !strings.Contains(err.Error(), "kaboom") {
			t.Errorf("Error() = %q, want the panic value in it", err.Error())
		}
		if st := f.Status(); st != Failed {
			t.Errorf("Status = %v, want failed", st)
		}
		// The worker survives and runs the next task.
		g := mustSubmit(t, q, func(context.Context) (int, error) { return 2, nil })
		if v, err := g.Await(context.Background()); v != 2 || err != nil {
			t.Fatalf("next task: %v, %v", v, err)
		}
		synctest.Wait()
		s := q.Stats()
		if s.Workers != 1 || s.Idle != 1 || s.Running != 0 {
			t.Errorf("pool after a panic: %+v; want Workers 1, Idle 1, Running 0", s)
		}
		if s.Panicked != 1 || s.Failed != 1 || s.Succeeded != 1 {
			t.Errorf("Stats = %+v; want Panicked 1, Failed 1, Succeeded 1", s)
		}
	})
}

func TestPanicWithErrorUnwraps(t *testing.T) {
	q := newQueue(t, Config{})
	f := mustSubmit(t, q, func(context.Context) (int, error) { panic(fmt.Errorf("inner: %w", errFut)) })
	_, err := f.Await(context.Background())
	var pe *PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want *PanicError", err)
	}
	if !errors.Is(err, errFut) {
		t.Errorf("errors.Is(%v, errFut) = false; a panic(err) must unwrap to err", err)
	}
	// A retried panicking task keeps its panic as the final error.
	var n atomic.Int32
	g := mustSubmit(t, q, func(context.Context) (int, error) { n.Add(1); panic(errFut) },
		WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: Constant(0)}))
	_, err = g.Await(context.Background())
	if !errors.As(err, &pe) || !errors.Is(err, errFut) || n.Load() != 2 {
		t.Errorf("retried panic: err %v, %d attempts; want *PanicError wrapping errFut, 2 attempts", err, n.Load())
	}
}

func TestGoexitInTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		gate := make(chan struct{})
		f := mustSubmit(t, q, func(context.Context) (int, error) {
			<-gate
			runtime.Goexit()
			return 1, nil
		})
		// Queued behind the task that will call Goexit.
		next := mustSubmit(t, q, func(context.Context) (int, error) { return 2, nil })
		close(gate)
		_, err := f.Await(context.Background())
		if !errors.Is(err, errGoexit) {
			t.Errorf("err = %v, want errGoexit", err)
		}
		if st := f.Status(); st != Failed {
			t.Errorf("Status = %v, want failed", st)
		}
		// The bound only turns a hang into a failure: in the bubble, an hour
		// passes at once when nothing else can happen.
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if v, err := next.Await(ctx); v != 2 || err != nil {
			t.Errorf("task queued behind the Goexit: %v, %v; want 2, nil (it must still run)", v, err)
		}
		after := mustSubmit(t, q, func(context.Context) (int, error) { return 3, nil })
		if v, err := after.Await(context.Background()); v != 3 || err != nil {
			t.Errorf("task submitted after the Goexit: %v, %v", v, err)
		}
		synctest.Wait()
		if s := q.Stats(); s.Workers != 1 || s.Running != 0 || s.Succeeded != 2 || s.Failed != 1 {
			t.Errorf("Stats = %+v; want Workers 1, Running 0, Succeeded 2, Failed 1", s)
		}
		if err := q.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown = %v", err)
		}
	})
}

func TestGoexitDuringShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		gate := make(chan struct{})
		f := mustSubmit(t, q, func(context.Context) (int, error) {
			<-gate
			runtime.Goexit()
			return 1, nil
		})
		next := mustSubmit(t, q, func(context.Context) (int, error) { return 2, nil })
		shut := make(chan error)
		go func() { shut <- q.Shutdown(context.Background()) }()
		synctest.Wait()
		close(gate)
		if err := <-shut; err != nil {
			t.Errorf("Shutdown = %v", err)
		}
		if _, err := f.Result(); !errors.Is(err, errGoexit) {
			t.Errorf("Goexit task: err %v, want errGoexit", err)
		}
		// Shutdown runs every queued task before it returns.
		if v, err := next.Result(); v != 2 || err != nil {
			t.Errorf("task queued behind the Goexit after Shutdown: %v, %v (status %v); want 2, nil", v, err, next.Status())
		}
		if s := q.Stats(); s.Submitted != s.Succeeded+s.Failed+s.Canceled {
			t.Errorf("Stats after Shutdown = %+v; want Submitted = Succeeded + Failed + Canceled", s)
		}
	})
}

func TestGoexitOnlyTask(t *testing.T) {
	q := newQueue(t, Config{Workers: 2})
	f := mustSubmit(t, q, func(context.Context) (int, error) { runtime.Goexit(); return 0, nil })
	if _, err := f.Await(context.Background()); err == nil {
		t.Fatal("Goexit resolved with nil error")
	}
	g := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil })
	if v, err := g.Await(context.Background()); v != 1 || err != nil {
		t.Errorf("after Goexit: %v, %v", v, err)
	}
	if err := q.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
}

// TestDoneRacesResolution: Done and Await, called from several goroutines
// while the task resolves (Await then waits on the channel without
// Queue.mu), all see the resolution, and Done returns one channel.
func TestDoneRacesResolution(t *testing.T) {
	q := newQueue(t, Config{Workers: 4})
	for i := range 2000 {
		f := mustSubmit(t, q, func(context.Context) (int, error) { return i, nil })
		var wg sync.WaitGroup
		chans := make([]<-chan struct{}, 4)
		for g := range 4 {
			wg.Go(func() {
				chans[g] = f.Done()
				if v, err := f.Await(context.Background()); err != nil || v != i {
					t.Errorf("task %d: Await = %v, %v", i, v, err)
				}
				<-chans[g]
			})
		}
		wg.Wait()
		for _, c := range chans[1:] {
			if c != chans[0] {
				t.Fatalf("task %d: Done returned different channels", i)
			}
		}
	}
}
