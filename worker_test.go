package errand

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// poolGauge tracks how many task bodies run at once and the most that ever did.
type poolGauge struct{ cur, peak atomic.Int64 }

func (g *poolGauge) enter() {
	n := g.cur.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

func (g *poolGauge) exit() { g.cur.Add(-1) }

// expectStats fails the test unless q's stats are exactly want.
func expectStats(t testing.TB, q *Queue, want Stats) {
	t.Helper()
	if got := q.Stats(); got != want {
		t.Fatalf("Stats:\n got %+v\nwant %+v", got, want)
	}
}

// blockingTask returns a task that holds its worker until it receives from
// release (or its context ends), counted by g.
func blockingTask(g *poolGauge, release <-chan struct{}, v int) func(context.Context) (int, error) {
	return func(ctx context.Context) (int, error) {
		g.enter()
		defer g.exit()
		select {
		case <-release:
			return v, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// TestWorkersBoundedPool: with Workers: N and more blocking tasks than that,
// exactly N run at once and the rest wait; as each finishes the next starts,
// and the gauges in Stats are exact at every step. The workers then exit
// exactly IdleTimeout after they went idle, and a later task still runs.
func TestWorkersBoundedPool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, total = 3, 10
		q := newQueue(t, Config{Workers: n, IdleTimeout: 2 * time.Second})
		var g poolGauge
		release := make(chan struct{})
		fs := make([]*Future[int], total)
		for i := range total {
			fs[i] = mustSubmit(t, q, blockingTask(&g, release, i))
		}
		synctest.Wait()
		expectStats(t, q, Stats{Workers: n, Running: n, Queued: total - n, Submitted: total})
		if got := g.cur.Load(); got != n {
			t.Fatalf("%d tasks running, want %d", got, n)
		}
		for done := 1; done <= total; done++ {
			release <- struct{}{}
			synctest.Wait()
			running := min(n, total-done)
			expectStats(t, q, Stats{
				Workers: n, Idle: n - running, Running: running, Queued: max(total-done-n, 0),
				Submitted: total, Succeeded: uint64(done),
			})
			if got := g.cur.Load(); got != int64(running) {
				t.Fatalf("after %d done: %d tasks running, want %d", done, got, running)
			}
		}
		if got := g.peak.Load(); got != n {
			t.Fatalf("at most %d tasks ran at once, want exactly %d", got, n)
		}
		for i, f := range fs {
			if v, err := f.Result(); v != i || err != nil {
				t.Fatalf("future %d: Result() = %d, %v; want %d, nil", i, v, err, i)
			}
		}

		// Idle workers exit exactly IdleTimeout after they parked.
		time.Sleep(2*time.Second - time.Nanosecond)
		synctest.Wait()
		expectStats(t, q, Stats{Workers: n, Idle: n, Submitted: total, Succeeded: total})
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		expectStats(t, q, Stats{Submitted: total, Succeeded: total})

		// The pool starts again on demand.
		f := mustSubmit(t, q, func(context.Context) (int, error) { return 42, nil })
		if v, err := f.Await(context.Background()); v != 42 || err != nil {
			t.Fatalf("Await after the pool emptied = %d, %v; want 42, nil", v, err)
		}
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: total + 1, Succeeded: total + 1})
	})
}

// TestWorkersStartOnDemand: New starts no goroutine; each task starts a
// worker only while none is idle and the bound allows; an idle worker is
// reused; workers exit IdleTimeout (default 1s) after they last went idle.
func TestWorkersStartOnDemand(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  time.Duration
		idle time.Duration
	}{
		{"default IdleTimeout", 0, time.Second},
		{"IdleTimeout 5s", 5 * time.Second, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := runtime.NumGoroutine()
				q := newQueue(t, Config{Workers: 4, IdleTimeout: tc.cfg})
				if got := runtime.NumGoroutine(); got > base {
					t.Fatalf("New started %d goroutines, want 0", got-base)
				}
				expectStats(t, q, Stats{})

				var g poolGauge
				release := make(chan struct{})
				a := mustSubmit(t, q, blockingTask(&g, release, 1))
				expectStats(t, q, Stats{Workers: 1, Running: 1, Submitted: 1})
				if st := a.Status(); st != Running {
					t.Fatalf("first task's status = %v, want running (a worker starts at once)", st)
				}
				b := mustSubmit(t, q, blockingTask(&g, release, 2))
				expectStats(t, q, Stats{Workers: 2, Running: 2, Submitted: 2})
				close(release)
				synctest.Wait()
				expectStats(t, q, Stats{Workers: 2, Idle: 2, Submitted: 2, Succeeded: 2})
				for _, f := range []*Future[int]{a, b} {
					if _, err := f.Result(); err != nil {
						t.Fatalf("Result() = %v", err)
					}
				}

				// Sequential tasks reuse an idle worker: no new one starts.
				for i := range 5 {
					f := mustSubmit(t, q, func(context.Context) (int, error) { return i, nil })
					if v, err := f.Await(context.Background()); v != i || err != nil {
						t.Fatalf("Await = %d, %v", v, err)
					}
					synctest.Wait()
					expectStats(t, q, Stats{Workers: 2, Idle: 2, Submitted: uint64(3 + i), Succeeded: uint64(3 + i)})
				}

				// A worker that works again restarts its idle clock.
				time.Sleep(tc.idle / 2)
				f := mustSubmit(t, q, func(context.Context) (int, error) { return 0, nil })
				if _, err := f.Await(context.Background()); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				// One worker parked at 0, the other at idle/2.
				time.Sleep(tc.idle/2 - time.Nanosecond)
				synctest.Wait()
				expectStats(t, q, Stats{Workers: 2, Idle: 2, Submitted: 8, Succeeded: 8})
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 8, Succeeded: 8})
				time.Sleep(tc.idle/2 - time.Nanosecond)
				synctest.Wait()
				expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 8, Succeeded: 8})
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				expectStats(t, q, Stats{Submitted: 8, Succeeded: 8})
				if got := runtime.NumGoroutine(); got > base {
					t.Fatalf("%d goroutines left after the workers exited, want 0", got-base)
				}

				// And a new task still runs.
				f = mustSubmit(t, q, func(context.Context) (int, error) { return 7, nil })
				if v, err := f.Await(context.Background()); v != 7 || err != nil {
					t.Fatalf("Await = %d, %v; want 7, nil", v, err)
				}
			})
		})
	}
}

// TestResizeUpStartsWorkersForWaitingTasks: growing the pool starts workers
// for queued tasks at once, before Resize returns.
func TestResizeUpStartsWorkersForWaitingTasks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		var g poolGauge
		release := make(chan struct{})
		fs := make([]*Future[int], 6)
		for i := range fs {
			fs[i] = mustSubmit(t, q, blockingTask(&g, release, i))
		}
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 5, Submitted: 6})
		if err := q.Resize(4); err != nil {
			t.Fatalf("Resize(4) = %v", err)
		}
		expectStats(t, q, Stats{Workers: 4, Running: 4, Queued: 2, Submitted: 6})
		synctest.Wait()
		if got := g.cur.Load(); got != 4 {
			t.Fatalf("%d tasks running after Resize(4), want 4", got)
		}
		for i := range fs[:4] {
			if st := fs[i].Status(); st != Running {
				t.Fatalf("task %d: status %v, want running", i, st)
			}
		}
		close(release)
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 4, Idle: 4, Submitted: 6, Succeeded: 6})
		if got := g.peak.Load(); got != 4 {
			t.Fatalf("peak concurrency %d, want 4", got)
		}
		// Growing with nothing waiting starts nothing.
		if err := q.Resize(8); err != nil {
			t.Fatal(err)
		}
		expectStats(t, q, Stats{Workers: 4, Idle: 4, Submitted: 6, Succeeded: 6})
	})
}

// TestResizeDown: shrinking lets running tasks finish; busy workers leave as
// they finish until the new bound holds, and from then on at most that many
// tasks run. Idle workers above the bound leave at once.
func TestResizeDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 4})
		var g poolGauge
		release := make(chan struct{})
		const total = 9
		fs := make([]*Future[int], total)
		for i := range fs {
			fs[i] = mustSubmit(t, q, blockingTask(&g, release, i))
		}
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 4, Running: 4, Queued: 5, Submitted: total})
		if err := q.Resize(2); err != nil {
			t.Fatalf("Resize(2) = %v", err)
		}
		synctest.Wait()
		// Nothing running is interrupted.
		expectStats(t, q, Stats{Workers: 4, Running: 4, Queued: 5, Submitted: total})
		for i := range fs[:4] {
			if st := fs[i].Status(); st != Running {
				t.Fatalf("task %d: status %v after Resize(2), want running", i, st)
			}
		}
		steps := []Stats{
			{Workers: 3, Running: 3, Queued: 5, Succeeded: 1},
			{Workers: 2, Running: 2, Queued: 5, Succeeded: 2},
			{Workers: 2, Running: 2, Queued: 4, Succeeded: 3},
			{Workers: 2, Running: 2, Queued: 3, Succeeded: 4},
			{Workers: 2, Running: 2, Queued: 2, Succeeded: 5},
			{Workers: 2, Running: 2, Queued: 1, Succeeded: 6},
			{Workers: 2, Running: 2, Queued: 0, Succeeded: 7},
			{Workers: 2, Idle: 1, Running: 1, Succeeded: 8},
			{Workers: 2, Idle: 2, Succeeded: 9},
		}
		for i, want := range steps {
			release <- struct{}{}
			synctest.Wait()
			want.Submitted = total
			expectStats(t, q, want)
			if got := g.cur.Load(); got != int64(want.Running) {
				t.Fatalf("step %d: %d tasks running, want %d", i, got, want.Running)
			}
			if i == 1 {
				g.peak.Store(g.cur.Load()) // the bound holds from here on: measure the peak anew
			}
		}
		if got := g.peak.Load(); got != 2 {
			t.Fatalf("after the pool shrank, up to %d tasks ran at once, want 2", got)
		}
		for i, f := range fs {
			if v, err := f.Result(); v != i || err != nil {
				t.Fatalf("future %d: %d, %v", i, v, err)
			}
		}

		// Idle workers above the bound leave at once.
		if err := q.Resize(1); err != nil {
			t.Fatal(err)
		}
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: total, Succeeded: total})

		for _, n := range []int{0, -1} {
			if err := q.Resize(n); err == nil {
				t.Fatalf("Resize(%d) = nil, want an error", n)
			}
		}
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: total, Succeeded: total})
	})
}

// TestResizeStorm: while 10,000 tasks flow from several goroutines, another
// resizes the pool at random; every task runs exactly once, never more at
// once than the largest bound.
func TestResizeStorm(t *testing.T) {
	const total, submitters, maxWorkers = 10000, 4, 8
	q := newQueue(t, Config{Workers: 3})
	runs := make([]atomic.Int32, total)
	var g poolGauge
	var wg sync.WaitGroup
	wg.Add(total)
	body := func(i int) func(context.Context) error {
		return func(context.Context) error {
			g.enter()
			runs[i].Add(1)
			g.exit()
			wg.Done()
			return nil
		}
	}

	stop := make(chan struct{})
	stormDone := make(chan int)
	go func() {
		r := rand.New(rand.NewPCG(1, 2))
		resizes := 0
		for {
			select {
			case <-stop:
				stormDone <- resizes
				return
			default:
			}
			if err := q.Resize(1 + r.IntN(maxWorkers)); err != nil {
				t.Errorf("Resize: %v", err)
			}
			resizes++
			runtime.Gosched()
		}
	}()

	futures := make([]*Future[int], total)
	var sub sync.WaitGroup
	for s := range submitters {
		sub.Go(func() {
			for i := s; i < total; i += submitters {
				var err error
				switch i % 3 {
				case 0:
					fn := body(i)
					futures[i], err = Submit(context.Background(), q, func(ctx context.Context) (int, error) { return i, fn(ctx) })
				case 1:
					err = q.Go(context.Background(), body(i))
				case 2:
					err = q.Go(context.Background(), body(i), WithName("storm"))
				}
				if err != nil {
					t.Errorf("task %d: %v", i, err)
					wg.Done()
				}
			}
		})
	}
	sub.Wait()
	wg.Wait()
	close(stop)
	resizes := <-stormDone
	if err := q.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	for i := range runs {
		if n := runs[i].Load(); n != 1 {
			t.Errorf("task %d ran %d times, want 1", i, n)
		}
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		if v, err := f.Result(); v != i || err != nil {
			t.Errorf("future %d: %d, %v", i, v, err)
		}
	}
	if p := g.peak.Load(); p < 1 || p > maxWorkers {
		t.Errorf("peak concurrency %d, want 1..%d", p, maxWorkers)
	}
	expectStats(t, q, Stats{Submitted: total, Succeeded: total})
	t.Logf("%d resizes", resizes)
}

// TestTimeoutPerAttempt: WithTimeout and Config.Timeout bound each attempt:
// the task's context reports context.DeadlineExceeded exactly at the
// deadline, which Deadline reports; a context derived from it follows it;
// WithTimeout(0) removes Config.Timeout.
func TestTimeoutPerAttempt(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		opts []Option
		want time.Duration // 0: no deadline
	}{
		{"WithTimeout", Config{}, []Option{WithTimeout(2 * time.Second)}, 2 * time.Second},
		{"Config.Timeout", Config{Timeout: 3 * time.Second}, nil, 3 * time.Second},
		{"WithTimeout overrides Config.Timeout", Config{Timeout: 3 * time.Second}, []Option{WithTimeout(time.Second)}, time.Second},
		{"WithTimeout(0) removes Config.Timeout", Config{Timeout: 3 * time.Second}, []Option{WithTimeout(0)}, 0},
		{"no timeout", Config{}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, tc.cfg)
				type seen struct {
					start, end, deadline time.Time
					hasDeadline          bool
					err, derivedErr      error
				}
				var s seen
				f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
					s.start = time.Now()
					s.deadline, s.hasDeadline = ctx.Deadline()
					derived, cancel := context.WithTimeout(ctx, 100*time.Hour)
					defer cancel()
					select {
					case <-derived.Done():
					case <-time.After(10 * time.Hour):
					}
					s.end, s.err, s.derivedErr = time.Now(), ctx.Err(), derived.Err()
					return 1, s.err
				}, tc.opts...)
				v, err := f.Await(context.Background())
				if tc.want == 0 {
					if s.hasDeadline {
						t.Fatalf("ctx.Deadline() = %v, true; want none", s.deadline)
					}
					if s.err != nil || s.end.Sub(s.start) != 10*time.Hour {
						t.Fatalf("the task's context ended with %v after %v; want never", s.err, s.end.Sub(s.start))
					}
					if v != 1 || err != nil || f.Status() != Succeeded {
						t.Fatalf("Await = %d, %v (%v); want 1, nil (succeeded)", v, err, f.Status())
					}
					return
				}
				if !s.hasDeadline || !s.deadline.Equal(s.start.Add(tc.want)) {
					t.Fatalf("ctx.Deadline() = %v, %v; want %v, true", s.deadline, s.hasDeadline, s.start.Add(tc.want))
				}
				if got := s.end.Sub(s.start); got != tc.want {
					t.Fatalf("the context ended after %v, want %v", got, tc.want)
				}
				if s.err != context.DeadlineExceeded || !errors.Is(s.derivedErr, context.DeadlineExceeded) {
					t.Fatalf("ctx.Err() = %v, derived ctx.Err() = %v; want context.DeadlineExceeded", s.err, s.derivedErr)
				}
				if !errors.Is(err, context.DeadlineExceeded) || f.Status() != Failed || f.Attempts() != 1 {
					t.Fatalf("Await = %v (%v, %d attempts); want context.DeadlineExceeded (failed, 1)", err, f.Status(), f.Attempts())
				}
				expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 1, Failed: 1})
			})
		})
	}
}

// TestTimeoutFreshPerRetry: each retry attempt gets a fresh timeout.
func TestTimeoutFreshPerRetry(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		opts []Option
	}{
		{"WithTimeout", Config{}, []Option{WithTimeout(2 * time.Second)}},
		{"Config.Timeout", Config{Timeout: 2 * time.Second}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, tc.cfg)
				t0 := time.Now()
				var starts, ends, deadlines []time.Time
				opts := append([]Option{WithRetry(RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Second)})}, tc.opts...)
				f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
					starts = append(starts, time.Now())
					d, _ := ctx.Deadline()
					deadlines = append(deadlines, d)
					<-ctx.Done()
					ends = append(ends, time.Now())
					return 0, ctx.Err()
				}, opts...)
				_, err := f.Await(context.Background())
				if !errors.Is(err, context.DeadlineExceeded) || f.Attempts() != 3 {
					t.Fatalf("Await = %v after %d attempts; want context.DeadlineExceeded after 3", err, f.Attempts())
				}
				for i, at := range []time.Duration{0, 3 * time.Second, 6 * time.Second} {
					if !starts[i].Equal(t0.Add(at)) {
						t.Errorf("attempt %d started at +%v, want +%v", i+1, starts[i].Sub(t0), at)
					}
					if !deadlines[i].Equal(starts[i].Add(2*time.Second)) || !ends[i].Equal(deadlines[i]) {
						t.Errorf("attempt %d: deadline +%v, ended +%v; want both +%v",
							i+1, deadlines[i].Sub(t0), ends[i].Sub(t0), at+2*time.Second)
					}
				}
				synctest.Wait()
				expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 1, Failed: 1, Retried: 2})
			})
		})
	}
}

// TestTimeoutTinyRacesNothing: an attempt timeout so short that it fires
// while the attempt is being set up must not race with the setup (run with
// -race). The tasks ignore their contexts and all succeed.
func TestTimeoutTinyRacesNothing(t *testing.T) {
	q := newQueue(t, Config{Workers: 4})
	const n = 2000
	var wg sync.WaitGroup
	wg.Add(n)
	var fs []*Future[int]
	for i := range n {
		if i%2 == 0 {
			fs = append(fs, mustSubmit(t, q, func(context.Context) (int, error) { wg.Done(); return i, nil }, WithTimeout(time.Nanosecond)))
		} else if err := q.Go(context.Background(), func(context.Context) error { wg.Done(); return nil }, WithTimeout(time.Nanosecond)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if err := q.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		if v, err := f.Result(); v != 2*i || err != nil {
			t.Fatalf("future %d: %d, %v", i, v, err)
		}
	}
	expectStats(t, q, Stats{Submitted: n, Succeeded: n})
}
