package errand

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// expectClosedStats checks the invariants of a closed queue: no gauge above
// zero and every accepted task counted once in a final state.
func expectClosedStats(t testing.TB, q *Queue) Stats {
	t.Helper()
	st := q.Stats()
	if st.Workers != 0 || st.Idle != 0 || st.Queued != 0 || st.Running != 0 || st.Scheduled != 0 {
		t.Fatalf("gauges after close: %+v, want all 0", st)
	}
	if st.Submitted != st.Succeeded+st.Failed+st.Canceled {
		t.Fatalf("Submitted %d != Succeeded %d + Failed %d + Canceled %d", st.Submitted, st.Succeeded, st.Failed, st.Canceled)
	}
	return st
}

// expectResolved fails unless f has resolved with status st and an error
// that is want (errors.Is; nil: no error).
func expectResolved[T any](t testing.TB, name string, f *Future[T], st Status, want error) {
	t.Helper()
	select {
	case <-f.Done():
	default:
		t.Fatalf("%s: not resolved", name)
	}
	_, err := f.Result()
	if f.Status() != st || (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
		t.Fatalf("%s: %v with %v; want %v with %v", name, f.Status(), err, st, want)
	}
}

// TestShutdownDrains: Shutdown stops intake at once (Submit, Go and Resize
// return ErrClosed), runs every queued task, waits for them, and returns
// nil with nothing left.
func TestShutdownDrains(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 2})
		gate := make(chan struct{})
		var ran atomic.Int32
		var fs []*Future[int]
		for i := range 20 {
			if i%2 == 0 {
				fs = append(fs, mustSubmit(t, q, func(context.Context) (int, error) { <-gate; ran.Add(1); return i, nil }))
			} else if err := q.Go(context.Background(), func(context.Context) error { <-gate; ran.Add(1); return nil }); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan error, 1)
		go func() { done <- q.Shutdown(context.Background()) }()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v with tasks left to run", err)
		default:
		}
		expectStats(t, q, Stats{Workers: 2, Running: 2, Queued: 18, Submitted: 20})
		if _, err := Submit(context.Background(), q, func(context.Context) (int, error) { return 0, nil }); err != ErrClosed {
			t.Fatalf("Submit during Shutdown = %v, want ErrClosed", err)
		}
		if err := q.Go(context.Background(), func(context.Context) error { return nil }); err != ErrClosed {
			t.Fatalf("Go during Shutdown = %v, want ErrClosed", err)
		}
		if err := q.Go(context.Background(), func(context.Context) error { return nil }, WithDelay(time.Second)); err != ErrClosed {
			t.Fatalf("Go(WithDelay) during Shutdown = %v, want ErrClosed", err)
		}
		if err := q.Resize(5); err != ErrClosed {
			t.Fatalf("Resize during Shutdown = %v, want ErrClosed", err)
		}
		close(gate)
		if err := <-done; err != nil {
			t.Fatalf("Shutdown = %v, want nil", err)
		}
		if got := ran.Load(); got != 20 {
			t.Fatalf("%d tasks ran, want 20", got)
		}
		for i, f := range fs {
			expectResolved(t, "future", f, Succeeded, nil)
			if v, _ := f.Result(); v != 2*i {
				t.Fatalf("future %d = %d", i, v)
			}
		}
		expectStats(t, q, Stats{Submitted: 20, Succeeded: 20})
		// After Shutdown: still closed.
		if _, err := Submit(context.Background(), q, func(context.Context) (int, error) { return 0, nil }); err != ErrClosed {
			t.Fatalf("Submit after Shutdown = %v, want ErrClosed", err)
		}
		if err := q.Go(context.Background(), func(context.Context) error { return nil }, WithName("x")); err != ErrClosed {
			t.Fatalf("Go after Shutdown = %v, want ErrClosed", err)
		}
		if err := q.Resize(1); err != ErrClosed {
			t.Fatalf("Resize after Shutdown = %v, want ErrClosed", err)
		}
		expectStats(t, q, Stats{Submitted: 20, Succeeded: 20})
	})
}

// TestShutdownIdleQueue: Shutdown of a queue that never ran a task, or whose
// workers are idle, returns nil at once.
func TestShutdownIdleQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fresh := newQueue(t, Config{})
		if err := fresh.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown of a fresh queue = %v", err)
		}
		expectStats(t, fresh, Stats{})

		q := newQueue(t, Config{Workers: 3})
		gate := make(chan struct{}) // hold each task until all three have their own worker
		for range 3 {
			mustSubmit(t, q, func(context.Context) (int, error) { <-gate; return 0, nil })
		}
		close(gate)
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 3, Idle: 3, Submitted: 3, Succeeded: 3})
		t0 := time.Now()
		if err := q.Shutdown(context.Background()); err != nil || time.Since(t0) != 0 {
			t.Fatalf("Shutdown = %v after %v, want nil at once", err, time.Since(t0))
		}
		expectStats(t, q, Stats{Submitted: 3, Succeeded: 3})
	})
}

// TestShutdownResolvesWaitingForTime: delayed tasks and tasks backing off
// before a retry resolve with ErrClosed at Shutdown (a backing-off one keeps
// its last error) and never run again.
func TestShutdownResolvesWaitingForTime(t *testing.T) {
	for _, how := range []string{"Shutdown", "Close"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, Config{Workers: 1})
				var runs atomic.Int32
				delayed := mustSubmit(t, q, func(context.Context) (int, error) { runs.Add(1); return 0, nil }, WithDelay(time.Minute))
				if err := q.Go(context.Background(), func(context.Context) error { runs.Add(1); return nil }, WithDelay(time.Second)); err != nil {
					t.Fatal(err)
				}
				var attempts atomic.Int32
				backingOff := mustSubmit(t, q, func(context.Context) (int, error) {
					attempts.Add(1)
					return 0, errTransient
				}, WithRetry(RetryPolicy{MaxAttempts: 5, Backoff: Constant(time.Minute)}))
				synctest.Wait()
				expectStats(t, q, Stats{Workers: 1, Idle: 1, Scheduled: 3, Submitted: 3, Retried: 1})
				if backingOff.Status() != Retrying {
					t.Fatalf("status %v, want retrying", backingOff.Status())
				}
				t0 := time.Now()
				if how == "Shutdown" {
					if err := q.Shutdown(context.Background()); err != nil {
						t.Fatalf("Shutdown = %v", err)
					}
				} else if err := q.Close(); err != nil {
					t.Fatalf("Close = %v", err)
				}
				if time.Since(t0) != 0 {
					t.Fatalf("%s waited %v for delayed tasks, want no wait", how, time.Since(t0))
				}
				expectResolved(t, "delayed", delayed, Canceled, ErrClosed)
				expectResolved(t, "backing off", backingOff, Canceled, ErrClosed)
				if _, err := backingOff.Result(); !errors.Is(err, errTransient) {
					t.Fatalf("backing-off task's error %v does not wrap its last attempt's error", err)
				}
				time.Sleep(time.Hour)
				synctest.Wait()
				if runs.Load() != 0 || attempts.Load() != 1 || backingOff.Attempts() != 1 || delayed.Attempts() != 0 {
					t.Fatalf("ran after %s: delayed %d, retrying %d attempts", how, runs.Load(), attempts.Load())
				}
				expectStats(t, q, Stats{Submitted: 3, Canceled: 3, Retried: 1})
			})
		})
	}
}

// TestShutdownContextExpires: when Shutdown's context ends with a task still
// running, the task's context is canceled, the queued tasks resolve with
// ErrClosed, and Shutdown returns the context's error without waiting for the
// running task; Close then waits for it, and every future has resolved.
func TestShutdownContextExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		hold := make(chan struct{})
		var sawCancel atomic.Value
		var canceledAt atomic.Int64
		t0 := time.Now()
		running := mustSubmit(t, q, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			canceledAt.Store(int64(time.Since(t0)))
			sawCancel.Store(ctx.Err())
			<-hold // ignore the cancellation for a while
			return 0, ctx.Err()
		})
		var queuedRuns atomic.Int32
		var queued []*Future[int]
		for range 3 {
			queued = append(queued, mustSubmit(t, q, func(context.Context) (int, error) { queuedRuns.Add(1); return 0, nil }))
		}
		if err := q.Go(context.Background(), func(context.Context) error { queuedRuns.Add(1); return nil }); err != nil {
			t.Fatal(err)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := q.Shutdown(ctx)
		if err != context.DeadlineExceeded || time.Since(t0) != 5*time.Second {
			t.Fatalf("Shutdown = %v after %v; want context.DeadlineExceeded after 5s", err, time.Since(t0))
		}
		synctest.Wait()
		if got := sawCancel.Load(); got != context.Canceled || time.Duration(canceledAt.Load()) != 5*time.Second {
			t.Fatalf("running task saw %v at +%v; want context.Canceled at +5s", got, time.Duration(canceledAt.Load()))
		}
		for _, f := range queued {
			expectResolved(t, "queued", f, Canceled, ErrClosed)
		}
		if st := running.Status(); st != Running {
			t.Fatalf("running task: %v, want still running", st)
		}
		expectStats(t, q, Stats{Workers: 1, Running: 1, Submitted: 5, Canceled: 4})

		closed := make(chan error, 1)
		go func() { closed <- q.Close() }()
		synctest.Wait()
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v while a task was running", err)
		default:
		}
		close(hold)
		if err := <-closed; err != nil {
			t.Fatalf("Close = %v", err)
		}
		expectResolved(t, "running", running, Canceled, ErrClosed)
		if queuedRuns.Load() != 0 {
			t.Fatalf("%d dropped tasks ran", queuedRuns.Load())
		}
		expectStats(t, q, Stats{Submitted: 5, Canceled: 5})
		// Shutdown again waits the same way: nothing left, nil.
		if err := q.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown after Close = %v", err)
		}
	})
}

// TestCloseCancelsRunningAndWaits: Close cancels the running tasks' contexts,
// drops the queued ones (futures with ErrClosed, Go tasks counted as
// canceled, none run) and returns only after the running tasks returned.
func TestCloseCancelsRunningAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 2})
		var returned atomic.Int32
		var running []*Future[int]
		for range 2 {
			running = append(running, mustSubmit(t, q, func(ctx context.Context) (int, error) {
				<-ctx.Done()
				time.Sleep(time.Second) // still winding down when Close is called
				returned.Add(1)
				return 0, ctx.Err()
			}))
		}
		var dropped atomic.Int32
		var queued []*Future[int]
		for i := range 9 {
			switch i % 3 {
			case 0:
				queued = append(queued, mustSubmit(t, q, func(context.Context) (int, error) { dropped.Add(1); return 0, nil }))
			case 1:
				if err := q.Go(context.Background(), func(context.Context) error { dropped.Add(1); return nil }); err != nil {
					t.Fatal(err)
				}
			case 2:
				if err := q.Go(context.Background(), func(context.Context) error { dropped.Add(1); return nil }, WithName("named")); err != nil {
					t.Fatal(err)
				}
			}
		}
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 2, Running: 2, Queued: 9, Submitted: 11})
		t0 := time.Now()
		if err := q.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if returned.Load() != 2 || time.Since(t0) != time.Second {
			t.Fatalf("Close returned after %v with %d of 2 running tasks returned", time.Since(t0), returned.Load())
		}
		for _, f := range running {
			expectResolved(t, "running", f, Canceled, ErrClosed)
			if f.Attempts() != 1 {
				t.Fatalf("running task: %d attempts", f.Attempts())
			}
		}
		for _, f := range queued {
			expectResolved(t, "queued", f, Canceled, ErrClosed)
			if f.Attempts() != 0 {
				t.Fatalf("dropped task: %d attempts", f.Attempts())
			}
		}
		if dropped.Load() != 0 {
			t.Fatalf("%d dropped tasks ran", dropped.Load())
		}
		expectStats(t, q, Stats{Submitted: 11, Canceled: 11})
		if err := q.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		if _, err := Submit(context.Background(), q, func(context.Context) (int, error) { return 0, nil }); err != ErrClosed {
			t.Fatalf("Submit after Close = %v, want ErrClosed", err)
		}
		if err := q.Go(context.Background(), func(context.Context) error { return nil }); err != ErrClosed {
			t.Fatalf("Go after Close = %v, want ErrClosed", err)
		}
		if err := q.Resize(3); err != ErrClosed {
			t.Fatalf("Resize after Close = %v, want ErrClosed", err)
		}
		expectStats(t, q, Stats{Submitted: 11, Canceled: 11})
	})
}

// TestCloseTaskSucceedsAnyway: a running task that returns nil although Close
// canceled its context has succeeded.
func TestCloseTaskSucceedsAnyway(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 9, nil
		})
		synctest.Wait()
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		expectResolved(t, "task", f, Succeeded, nil)
		if v, _ := f.Result(); v != 9 {
			t.Fatalf("Result() = %d, want 9", v)
		}
		expectStats(t, q, Stats{Submitted: 1, Succeeded: 1})
	})
}

// TestCloseShutdownConcurrent: Close and Shutdown called together from
// several goroutines, and again afterwards, all return nil once the queue
// has stopped; the counts add up.
func TestCloseShutdownConcurrent(t *testing.T) {
	q := newQueue(t, Config{Workers: 4})
	started := make(chan struct{}, 4)
	var fs []*Future[int]
	for i := range 50 {
		fs = append(fs, mustSubmit(t, q, func(ctx context.Context) (int, error) {
			if i < 4 {
				started <- struct{}{}
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return i, nil
		}))
		if err := q.Go(context.Background(), func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		<-started
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			if i%2 == 0 {
				errs <- q.Close()
			} else {
				errs <- q.Shutdown(context.Background())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Close/Shutdown = %v, want nil", err)
		}
	}
	if err := q.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown after = %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("Close after = %v", err)
	}
	for _, f := range fs {
		select {
		case <-f.Done():
		default:
			t.Fatal("a future is not resolved after Close")
		}
		if _, err := f.Result(); err == ErrNotDone || !f.Status().Final() {
			t.Fatalf("future: %v, %v", err, f.Status())
		}
	}
	st := expectClosedStats(t, q)
	if st.Submitted != 100 || st.Failed != 0 {
		t.Fatalf("Stats %+v: want 100 submitted, none failed", st)
	}
}

// TestShutdownContextAlreadyDone: Shutdown with a context that has already
// ended still stops intake, cancels what runs and drops what waits.
func TestShutdownContextAlreadyDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		r := mustSubmit(t, q, func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() })
		w := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := q.Shutdown(ctx); err != context.Canceled {
			t.Fatalf("Shutdown = %v, want context.Canceled", err)
		}
		expectResolved(t, "queued", w, Canceled, ErrClosed)
		if _, err := r.Await(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("running task: %v, want ErrClosed", err)
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		expectStats(t, q, Stats{Submitted: 2, Canceled: 2})
	})
}
