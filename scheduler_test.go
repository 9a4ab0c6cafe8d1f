package errand

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestDelayedRunsAtDueTime: a task submitted WithDelay or WithRunAt waits in
// the scheduler (no worker, status Scheduled, Stats.Scheduled) and starts at
// exactly its due time, not a nanosecond earlier.
func TestDelayedRunsAtDueTime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after time.Duration
		opt   func(t0 time.Time) Option
		goFn  bool
	}{
		{"WithDelay", 3 * time.Second, func(time.Time) Option { return WithDelay(3 * time.Second) }, false},
		{"WithDelay 1ns", time.Nanosecond, func(time.Time) Option { return WithDelay(time.Nanosecond) }, false},
		{"WithRunAt", 90 * time.Minute, func(t0 time.Time) Option { return WithRunAt(t0.Add(90 * time.Minute)) }, false},
		{"Go WithDelay", 250 * time.Millisecond, func(time.Time) Option { return WithDelay(250 * time.Millisecond) }, true},
		{"Go WithRunAt", 48 * time.Hour, func(t0 time.Time) Option { return WithRunAt(t0.Add(48 * time.Hour)) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, Config{Workers: 2})
				t0 := time.Now()
				var started atomic.Pointer[time.Time]
				body := func() { now := time.Now(); started.Store(&now) }
				var f *Future[int]
				if tc.goFn {
					if err := q.Go(context.Background(), func(context.Context) error { body(); return nil }, tc.opt(t0)); err != nil {
						t.Fatal(err)
					}
				} else {
					f = mustSubmit(t, q, func(context.Context) (int, error) { body(); return 1, nil }, tc.opt(t0))
					if st := f.Status(); st != Scheduled {
						t.Fatalf("status %v, want scheduled", st)
					}
				}
				expectStats(t, q, Stats{Scheduled: 1, Submitted: 1})
				time.Sleep(tc.after - time.Nanosecond)
				synctest.Wait()
				if p := started.Load(); p != nil {
					t.Fatalf("started at +%v, want +%v", p.Sub(t0), tc.after)
				}
				expectStats(t, q, Stats{Scheduled: 1, Submitted: 1})
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				p := started.Load()
				if p == nil || !p.Equal(t0.Add(tc.after)) {
					t.Fatalf("started at %v, want +%v", p, tc.after)
				}
				if f != nil {
					if v, err := f.Result(); v != 1 || err != nil || f.Status() != Succeeded {
						t.Fatalf("Result() = %d, %v (%v)", v, err, f.Status())
					}
				}
				expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 1, Succeeded: 1})
			})
		})
	}
}

// TestDelayedRunAtNotInFuture: WithRunAt at or before now enters the queue
// at once; WithDelay(0) is no delay.
func TestDelayedRunAtNotInFuture(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  func(t0 time.Time) Option
	}{
		{"an hour ago", func(t0 time.Time) Option { return WithRunAt(t0.Add(-time.Hour)) }},
		{"long before the queue", func(t0 time.Time) Option { return WithRunAt(t0.AddDate(-10, 0, 0)) }},
		{"now", func(t0 time.Time) Option { return WithRunAt(t0) }},
		{"WithDelay(0)", func(time.Time) Option { return WithDelay(0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				time.Sleep(time.Minute) // the queue is not born at the bubble's epoch
				q := newQueue(t, Config{Workers: 1})
				t0 := time.Now()
				gate := make(chan struct{})
				var start time.Time
				f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
					start = time.Now()
					<-gate
					return 0, nil
				}, tc.opt(t0))
				if st := f.Status(); st != Running {
					t.Fatalf("status right after Submit: %v, want running", st)
				}
				expectStats(t, q, Stats{Workers: 1, Running: 1, Submitted: 1})
				close(gate)
				if _, err := f.Await(context.Background()); err != nil || !start.Equal(t0) {
					t.Fatalf("Await = %v, started at +%v; want nil, +0", err, start.Sub(t0))
				}
			})
		})
	}
}

// TestDelayedOrderByDueTime: many delayed tasks start in order of due time,
// in submission order among equal due times, each exactly when due.
func TestDelayedOrderByDueTime(t *testing.T) {
	for _, order := range []Order{OrderFIFO, OrderPriority} {
		t.Run(map[Order]string{OrderFIFO: "FIFO", OrderPriority: "Priority"}[order], func(t *testing.T) {
			seed := uint64(time.Now().UnixNano())
			t.Logf("seed %d", seed)
			synctest.Test(t, func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 3))
				q := newQueue(t, Config{Workers: 1, Order: order})
				t0 := time.Now()
				const n = 300
				type sub struct {
					id  int
					due time.Duration
				}
				subs := make([]sub, n)
				var log startLog
				starts := make([]time.Time, n)
				for i := range subs {
					due := time.Duration(1+r.IntN(20)) * 100 * time.Millisecond
					subs[i] = sub{i, due}
					opt := WithDelay(due)
					if i%2 == 1 {
						opt = WithRunAt(t0.Add(due))
					}
					body := func() { starts[i] = time.Now(); log.add(i) }
					var err error
					if i%3 == 0 {
						err = q.Go(context.Background(), func(context.Context) error { body(); return nil }, opt)
					} else {
						_, err = Submit(context.Background(), q, func(context.Context) (int, error) { body(); return i, nil }, opt)
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				expectStats(t, q, Stats{Scheduled: n, Submitted: n})
				time.Sleep(2 * time.Second)
				synctest.Wait()
				expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: n, Succeeded: n})
				slices.SortStableFunc(subs, func(a, b sub) int { return int(a.due - b.due) })
				want := make([]int, n)
				for i, s := range subs {
					want[i] = s.id
					if !starts[s.id].Equal(t0.Add(s.due)) {
						t.Errorf("task %d started at +%v, want +%v", s.id, starts[s.id].Sub(t0), s.due)
					}
				}
				if got := log.get(); !slices.Equal(got, want) {
					t.Fatalf("start order:\n got %v\nwant %v", got, want)
				}
			})
		})
	}
}

// TestDelayedCancel: canceling a delayed task takes it out of the scheduler
// at once (Stats.Scheduled drops, the future resolves with ErrCanceled) and
// it never runs, whether it was due first or in the middle; the others still
// run exactly on time.
func TestDelayedCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		t0 := time.Now()
		var mu sync.Mutex
		ran := map[int]time.Duration{}
		fs := make([]*Future[int], 5)
		for i := range fs {
			fs[i] = mustSubmit(t, q, func(context.Context) (int, error) {
				mu.Lock()
				ran[i] = time.Since(t0)
				mu.Unlock()
				return i, nil
			}, WithDelay(time.Duration(i+1)*time.Second))
		}
		expectStats(t, q, Stats{Scheduled: 5, Submitted: 5})
		for k, i := range []int{0, 2} {
			if !fs[i].Cancel() {
				t.Fatalf("Cancel() of delayed task %d = false", i)
			}
			expectStats(t, q, Stats{Scheduled: 4 - k, Submitted: 5, Canceled: uint64(k + 1)})
			select {
			case <-fs[i].Done():
			default:
				t.Fatalf("task %d not resolved by Cancel", i)
			}
			if _, err := fs[i].Result(); !errors.Is(err, ErrCanceled) || fs[i].Status() != Canceled {
				t.Fatalf("task %d: %v (%v), want ErrCanceled (canceled)", i, err, fs[i].Status())
			}
			if fs[i].Cancel() {
				t.Fatalf("second Cancel() of task %d = true", i)
			}
		}
		time.Sleep(5 * time.Second) // the last is due at 5s; the idle worker stays 1s more
		synctest.Wait()
		want := map[int]time.Duration{1: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second}
		mu.Lock()
		defer mu.Unlock()
		if len(ran) != len(want) {
			t.Fatalf("ran %v, want %v", ran, want)
		}
		for i, at := range want {
			if ran[i] != at {
				t.Fatalf("ran %v, want %v", ran, want)
			}
		}
		for i := range fs {
			if fs[i].Attempts() != map[bool]int{true: 0, false: 1}[i == 0 || i == 2] {
				t.Fatalf("task %d: %d attempts", i, fs[i].Attempts())
			}
		}
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 5, Succeeded: 3, Canceled: 2})
	})
}

// TestDelayedNoGoroutineEach: 10,000 delayed tasks wait in the scheduler
// without a goroutine each (nor a worker), and all run when due.
func TestDelayedNoGoroutineEach(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := runtime.NumGoroutine()
		const n, workers = 10000, 4
		q := newQueue(t, Config{Workers: workers})
		var ran atomic.Int32
		var fs []*Future[int]
		for i := range n {
			d := WithDelay(time.Duration(1+i%1000) * time.Millisecond)
			if i%2 == 0 {
				if err := q.Go(context.Background(), func(context.Context) error { ran.Add(1); return nil }, d); err != nil {
					t.Fatal(err)
				}
			} else {
				fs = append(fs, mustSubmit(t, q, func(context.Context) (int, error) { ran.Add(1); return i, nil }, d))
			}
		}
		if extra := runtime.NumGoroutine() - base; extra >= 10 {
			t.Fatalf("%d goroutines for %d delayed tasks, want fewer than 10", extra, n)
		}
		expectStats(t, q, Stats{Scheduled: n, Submitted: n})
		peak := 0
		for range 1000 {
			time.Sleep(time.Millisecond)
			peak = max(peak, runtime.NumGoroutine()-base)
		}
		synctest.Wait()
		if peak > workers+2 {
			t.Fatalf("up to %d goroutines while the tasks came due, want at most %d", peak, workers+2)
		}
		if got := ran.Load(); got != n {
			t.Fatalf("%d tasks ran, want %d", got, n)
		}
		if _, err := AwaitAll(context.Background(), fs...); err != nil {
			t.Fatal(err)
		}
		st := q.Stats()
		if st.Scheduled != 0 || st.Queued != 0 || st.Running != 0 || st.Submitted != n || st.Succeeded != n {
			t.Fatalf("Stats %+v", st)
		}
	})
}

// TestDelayedInvalidOptions: a negative delay or a zero run-at time is an
// error, and nothing is submitted.
func TestDelayedInvalidOptions(t *testing.T) {
	q := newQueue(t, Config{})
	for _, opt := range []Option{WithDelay(-time.Nanosecond), WithRunAt(time.Time{})} {
		if _, err := Submit(context.Background(), q, func(context.Context) (int, error) { return 0, nil }, opt); err == nil {
			t.Fatal("Submit with an invalid delay = nil error")
		}
		if err := q.Go(context.Background(), func(context.Context) error { return nil }, opt); err == nil {
			t.Fatal("Go with an invalid delay = nil error")
		}
	}
	expectStats(t, q, Stats{})
}

// TestDelayedPlainGo: a Go task with only WithDelay (and WithPriority) waits
// as a bare timer entry: no allocation, counted in Stats.Scheduled, run at its
// time by its priority, and dropped as Canceled by Shutdown.
func TestDelayedPlainGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1, Order: OrderPriority})
		ctx := context.Background()
		var order []int
		var mu sync.Mutex
		run := func(n int) func(context.Context) error {
			return func(context.Context) error {
				mu.Lock()
				order = append(order, n)
				mu.Unlock()
				return nil
			}
		}
		start := time.Now()
		for i, p := range []int{1, 5, 3} {
			if err := q.Go(ctx, run(i), WithDelay(time.Second), WithPriority(p)); err != nil {
				t.Fatal(err)
			}
		}
		fn := run(9)
		allocs := testing.AllocsPerRun(100, func() {
			if err := q.Go(ctx, fn, WithDelay(time.Hour)); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("a delayed plain Go allocates %v times, want 0", allocs)
		}
		if s := q.Stats(); s.Scheduled != 104 || s.Workers != 0 {
			t.Fatalf("Stats = %+v, want 104 scheduled and no worker", s)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !slices.Equal(order, []int{1, 2, 0}) || time.Since(start) != time.Second {
			t.Fatalf("ran %v by %v, want [1 2 0] (by priority) at 1s", order, time.Since(start))
		}
		if err := q.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if s := q.Stats(); s.Submitted != 104 || s.Succeeded != 3 || s.Canceled != 101 || s.Scheduled != 0 {
			t.Fatalf("Stats after Shutdown = %+v, want 3 succeeded and 101 canceled", s)
		}
	})
}
