package errand

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestIntakeUsedWhileWorkersBusy: with the only worker busy, a future with
// no options waits in the intake, not in pending, and still counts as
// queued and submitted; with options, or once a worker is parked, Submit
// takes the lock.
func TestIntakeUsedWhileWorkersBusy(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	gate := make(chan struct{})
	holdWorker(t, q, gate)
	f := mustSubmit(t, q, func(context.Context) (int, error) { return 7, nil })
	if n := ringLen(q); n != 1 {
		t.Fatalf("%d tasks in the intake's ring, want the future submitted while every worker is busy", n)
	}
	g := mustSubmit(t, q, func(context.Context) (int, error) { return 8, nil }, WithName("g"))
	if n := ringLen(q); n != 0 {
		t.Fatalf("a submission with options left %d tasks in the ring (its task would overtake them)", n)
	}
	expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 2, Submitted: 3})
	close(gate)
	for i, fut := range []*Future[int]{f, g} {
		if v, err := fut.Await(context.Background()); err != nil || v != 7+i {
			t.Fatalf("future %d: %v, %v", i, v, err)
		}
	}
	// The worker parks in the critical section that resolves g: Stats waits
	// for it.
	if st := q.Stats(); st.Idle != 1 || !q.want.Load() {
		t.Fatalf("want is %v with %d workers parked, want true with 1", q.want.Load(), st.Idle)
	}
}

// TestIntakeCancelBeforeSplice: a future canceled while it waits in the
// intake resolves at once, never runs, and leaves the counts exact.
func TestIntakeCancelBeforeSplice(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	gate := make(chan struct{})
	holdWorker(t, q, gate)
	var ran atomic.Bool
	f := mustSubmit(t, q, func(context.Context) (int, error) { ran.Store(true); return 1, nil })
	if n := ringLen(q); n != 1 {
		t.Fatalf("%d tasks in the intake's ring, want the future", n)
	}
	if !f.Cancel() {
		t.Fatal("Cancel = false for a waiting task")
	}
	if _, err := f.Result(); !errors.Is(err, ErrCanceled) {
		t.Fatalf("Result = %v, want ErrCanceled", err)
	}
	expectStats(t, q, Stats{Workers: 1, Running: 1, Submitted: 2, Canceled: 1})
	close(gate)
	if err := q.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Fatal("a canceled task ran")
	}
	expectClosedStats(t, q)
}

// TestIntakeNoLostWakeup: bursts of futures separated by idle spells, so
// that workers park while producers push, each burst awaited with a deadline
// that only a lost wake-up (a task left in the intake with every worker
// parked) can reach. The window is a few instructions wide, so this is a
// stress test; TestIntakeSubmitAsWorkerParks opens it deterministically.
func TestIntakeNoLostWakeup(t *testing.T) {
	q := newQueue(t, Config{Workers: 3, IdleTimeout: time.Hour}) // no reaper to rescue a lost task
	one := func(context.Context) (int, error) { return 1, nil }
	for round := range 2000 {
		n := 1 + round%7
		var wg sync.WaitGroup
		fs := make([]*Future[int], 2*n)
		for p := range 2 {
			wg.Go(func() {
				for i := range n {
					fs[p*n+i] = mustSubmit(t, q, one)
				}
			})
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := AwaitAll(ctx, fs...)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v (a task was left in the intake)", round, err)
		}
	}
}

// TestIntakeSubmitRacesClose: producers submit futures while the queue is
// shut down (or closed). Every Submit either returns ErrClosed, and its task
// never runs, or returns a future that has resolved by the time Shutdown or
// Close returns; the counts add up.
func TestIntakeSubmitRacesClose(t *testing.T) {
	for round := range 200 {
		q, err := New(Config{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		var ran, accepted atomic.Int64
		var mu sync.Mutex
		var fs []*Future[int]
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				<-start
				for i := 0; ; i++ {
					if i == 1_000_000 {
						t.Error("Submit never returned ErrClosed")
						return
					}
					f, err := Submit(context.Background(), q, func(context.Context) (int, error) { ran.Add(1); return 1, nil })
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Submit: %v", err)
						return
					}
					accepted.Add(1)
					mu.Lock()
					fs = append(fs, f)
					mu.Unlock()
				}
			})
		}
		close(start)
		for accepted.Load() < 50 {
			// let the producers get going, so that the close lands among them
			if err := q.Go(context.Background(), func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
		stopRound(t, q, round)
		wg.Wait()
		succeeded := int64(0)
		for _, f := range fs {
			if !f.Status().Final() {
				t.Fatalf("round %d: an accepted future is %v after the queue closed", round, f.Status())
			}
			if _, err := f.Result(); err == nil {
				succeeded++
			} else if round%2 == 0 || !errors.Is(err, ErrClosed) {
				t.Fatalf("round %d: future: %v", round, err)
			}
		}
		if got := ran.Load(); got != succeeded {
			t.Fatalf("round %d: %d tasks ran, %d futures succeeded", round, got, succeeded)
		}
		st := expectClosedStats(t, q)
		if st.Submitted < uint64(accepted.Load()) {
			t.Fatalf("round %d: Stats.Submitted %d < %d accepted futures", round, st.Submitted, accepted.Load())
		}
	}
}

// TestIntakeSubmitAsWorkerParks: a future pushed into the intake after the
// last busy worker found nothing to do, but before it parked (so the
// producer saw no parked worker and took no lock), is run by that worker at
// once, not when the idle reaper next looks.
func TestIntakeSubmitAsWorkerParks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1, IdleTimeout: time.Hour})
		pushed := make(chan *Future[int], 1)
		var once sync.Once
		q.testBeforePark = func() {
			once.Do(func() {
				if q.want.Load() {
					t.Error("want is true while the only worker is busy")
				}
				f, err := Submit(context.Background(), q, func(context.Context) (int, error) { return 2, nil })
				if err != nil {
					t.Errorf("Submit: %v", err)
				}
				pushed <- f
			})
		}
		if v, err := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil }).Await(context.Background()); err != nil || v != 1 {
			t.Fatalf("first task: %v, %v", v, err)
		}
		f := <-pushed
		if f == nil {
			t.FailNow()
		}
		synctest.Wait() // every goroutine of the queue is idle
		if v, err := f.Result(); err != nil || v != 2 {
			t.Fatalf("the future pushed as the worker parked: %v, %v (left in the intake)", v, err)
		}
	})
}

// TestIntakeCloseDropsAccepted: Close resolves a future still in the intake
// with ErrClosed, and it never runs, though the worker that was busy returns
// (to its canceled context) before Close does.
func TestIntakeCloseDropsAccepted(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	holdWorker(t, q, make(chan struct{}))
	var ran atomic.Bool
	f := mustSubmit(t, q, func(context.Context) (int, error) { ran.Store(true); return 1, nil })
	if n := ringLen(q); n != 1 {
		t.Fatalf("%d tasks in the intake's ring, want the future", n)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Result = %v, want ErrClosed", err)
	}
	if ran.Load() {
		t.Fatal("a task in the intake ran after Close")
	}
	expectClosedStats(t, q)
}

// ringLen returns how many tasks wait in q's intake ring.
func ringLen(q *Queue) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.ring.tail.Load()&^intakeClosed - q.ring.head
}

// TestIntakeGoRacesClose: producers call Go (plain tasks, which take the
// locked path and drain the ring) as the queue is shut down or closed. A Go that
// returned nil ran (Shutdown) or was counted canceled (Close); one that
// returned ErrClosed did not run; the counts are exact.
func TestIntakeGoRacesClose(t *testing.T) {
	for round := range 200 {
		q, err := New(Config{Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		var ran, accepted atomic.Int64
		task := func(context.Context) error { ran.Add(1); return nil }
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					if i == 1_000_000 {
						t.Error("Go never returned ErrClosed")
						return
					}
					err := q.Go(context.Background(), task)
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Go: %v", err)
						return
					}
					accepted.Add(1)
				}
			})
		}
		for accepted.Load() < 100 {
			runtime.Gosched() // let the producers get going, so that the close lands among them
		}
		stopRound(t, q, round)
		wg.Wait()
		st := expectClosedStats(t, q)
		if st.Submitted != uint64(accepted.Load()) || st.Succeeded != uint64(ran.Load()) {
			t.Fatalf("round %d: %d accepted, %d ran; Stats %+v", round, accepted.Load(), ran.Load(), st)
		}
		if round%2 == 0 && st.Canceled != 0 {
			t.Fatalf("round %d: Shutdown dropped %d accepted tasks", round, st.Canceled)
		}
		if err := q.Go(context.Background(), task); !errors.Is(err, ErrClosed) {
			t.Fatalf("round %d: Go after close = %v", round, err)
		}
	}
}

// stopRound shuts q down in even rounds and closes it in odd ones.
func stopRound(t *testing.T, q *Queue, round int) {
	t.Helper()
	stop := q.Close
	if round%2 == 0 {
		stop = func() error { return q.Shutdown(context.Background()) }
	}
	if err := stop(); err != nil {
		t.Fatalf("round %d: close: %v", round, err)
	}
}
