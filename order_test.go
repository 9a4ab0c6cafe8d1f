package errand

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// startLog records the order in which task bodies start.
type startLog struct {
	mu  sync.Mutex
	ids []int
}

func (l *startLog) add(id int) {
	l.mu.Lock()
	l.ids = append(l.ids, id)
	l.mu.Unlock()
}

func (l *startLog) get() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// holdWorker submits a task that holds a worker until gate is closed (or its
// context ends), and checks that it is running.
func holdWorker(t testing.TB, q *Queue, gate <-chan struct{}) *Future[int] {
	t.Helper()
	f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
		select {
		case <-gate:
			return 0, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	if st := f.Status(); st != Running {
		t.Fatalf("gate task: status %v, want running", st)
	}
	return f
}

// TestOrderFIFO: with one worker busy, 100 tasks submitted one after another
// (futures, plain Go tasks and Go tasks with options mixed) start in exactly
// the order they were submitted.
func TestOrderFIFO(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	gate := make(chan struct{})
	holdWorker(t, q, gate)
	var log startLog
	const n = 100
	var fs []*Future[int]
	for i := range n {
		var err error
		switch i % 3 {
		case 0:
			var f *Future[int]
			f, err = Submit(context.Background(), q, func(context.Context) (int, error) { log.add(i); return i, nil },
				WithPriority(n-i)) // recorded but ignored under OrderFIFO
			fs = append(fs, f)
		case 1:
			err = q.Go(context.Background(), func(context.Context) error { log.add(i); return nil })
		case 2:
			err = q.Go(context.Background(), func(context.Context) error { log.add(i); return nil }, WithPriority(i))
		}
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: n, Submitted: n + 1})
	close(gate)
	if err := q.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	if got := log.get(); !slices.Equal(got, want) {
		t.Fatalf("start order:\n got %v\nwant %v", got, want)
	}
	if _, err := AwaitAll(context.Background(), fs...); err != nil {
		t.Fatal(err)
	}
	expectStats(t, q, Stats{Submitted: n + 1, Succeeded: n + 1})
}

// TestOrderFIFODeep: past yieldDepth waiting tasks, where a submission yields
// its P after adding its task, submitting still never blocks (the one worker
// is held throughout), the counts stay exact and the tasks start in the
// order they were submitted.
func TestOrderFIFODeep(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	gate := make(chan struct{})
	holdWorker(t, q, gate)
	var log startLog
	n := 3*yieldDepth + 7
	var fs []*Future[int]
	for i := range n {
		var err error
		if i%2 == 0 {
			var f *Future[int]
			f, err = Submit(context.Background(), q, func(context.Context) (int, error) { log.add(i); return i, nil })
			fs = append(fs, f)
		} else {
			err = q.Go(context.Background(), func(context.Context) error { log.add(i); return nil })
		}
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: n, Submitted: uint64(n) + 1})
	close(gate)
	if err := q.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	got := log.get()
	if len(got) != n {
		t.Fatalf("%d tasks started, want %d", len(got), n)
	}
	for i, id := range got {
		if id != i {
			t.Fatalf("start %d is task %d, want %d", i, id, i)
		}
	}
	if _, err := AwaitAll(context.Background(), fs...); err != nil {
		t.Fatal(err)
	}
	expectStats(t, q, Stats{Submitted: uint64(n) + 1, Succeeded: uint64(n) + 1})
}

// TestOrderPriority: with one worker busy, 100 tasks with random priorities
// start by priority, highest first, and in submission order among equals.
func TestOrderPriority(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 7))
	q := newQueue(t, Config{Workers: 1, Order: OrderPriority})
	gate := make(chan struct{})
	holdWorker(t, q, gate)
	var log startLog
	const n = 100
	type sub struct{ id, prio int }
	subs := make([]sub, n)
	for i := range n {
		p := r.IntN(9) - 4 // many ties, negative priorities too
		subs[i] = sub{i, p}
		var err error
		switch i % 3 {
		case 0:
			_, err = Submit(context.Background(), q, func(context.Context) (int, error) { log.add(i); return i, nil }, WithPriority(p))
		case 1:
			err = q.Go(context.Background(), func(context.Context) error { log.add(i); return nil }, WithPriority(p))
		case 2:
			err = q.Go(context.Background(), func(context.Context) error { log.add(i); return nil }, WithPriority(p), WithName("x"))
		}
		if err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
	}
	// A plain Go task has priority 0.
	if err := q.Go(context.Background(), func(context.Context) error { log.add(n); return nil }); err != nil {
		t.Fatal(err)
	}
	subs = append(subs, sub{n, 0})
	expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: n + 1, Submitted: n + 2})
	close(gate)
	if err := q.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	slices.SortStableFunc(subs, func(a, b sub) int { return b.prio - a.prio })
	want := make([]int, len(subs))
	for i, s := range subs {
		want[i] = s.id
	}
	if got := log.get(); !slices.Equal(got, want) {
		t.Fatalf("start order:\n got %v\nwant %v", got, want)
	}
	expectStats(t, q, Stats{Submitted: n + 2, Succeeded: n + 2})
}

// TestOrderPriorityDelayedCompetes: under OrderPriority a delayed task, once
// due, competes by its priority: a high one jumps ahead of lower-priority
// tasks that were queued before it, a low one waits behind them.
func TestOrderPriorityDelayedCompetes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1, Order: OrderPriority})
		gate := make(chan struct{})
		holdWorker(t, q, gate)
		var log startLog
		task := func(id int) func(context.Context) (int, error) {
			return func(context.Context) (int, error) { log.add(id); return id, nil }
		}
		// Submission order: 0..5. 0 and 5 are delayed.
		mustSubmit(t, q, task(0), WithPriority(5), WithDelay(10*time.Millisecond))
		mustSubmit(t, q, task(1), WithPriority(1))
		mustSubmit(t, q, task(2), WithPriority(1))
		mustSubmit(t, q, task(3), WithPriority(2))
		mustSubmit(t, q, task(4), WithPriority(1))
		mustSubmit(t, q, task(5), WithPriority(0), WithRunAt(time.Now().Add(10*time.Millisecond)))
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 4, Scheduled: 2, Submitted: 7})
		time.Sleep(10 * time.Millisecond)
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 6, Submitted: 7})
		close(gate)
		synctest.Wait()
		if got, want := log.get(), []int{0, 3, 1, 2, 4, 5}; !slices.Equal(got, want) {
			t.Fatalf("start order %v, want %v", got, want)
		}
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 7, Succeeded: 7})
	})
}

// TestOrderCanceledQueuedSkipped: a queued task canceled through its future
// resolves at once, never runs, stops counting in Stats.Queued, and the
// others keep their order.
func TestOrderCanceledQueuedSkipped(t *testing.T) {
	for _, order := range []Order{OrderFIFO, OrderPriority} {
		t.Run(map[Order]string{OrderFIFO: "FIFO", OrderPriority: "Priority"}[order], func(t *testing.T) {
			q := newQueue(t, Config{Workers: 1, Order: order})
			gate := make(chan struct{})
			holdWorker(t, q, gate)
			var log startLog
			const n = 10
			fs := make([]*Future[int], n)
			for i := range fs {
				fs[i] = mustSubmit(t, q, func(context.Context) (int, error) { log.add(i); return i, nil })
			}
			expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: n, Submitted: n + 1})
			canceled := []int{0, 4, 5, 9}
			for k, i := range canceled {
				if !fs[i].Cancel() {
					t.Fatalf("Cancel() of queued task %d = false", i)
				}
				select {
				case <-fs[i].Done():
				default:
					t.Fatalf("task %d: Done not closed after Cancel", i)
				}
				if _, err := fs[i].Result(); !errors.Is(err, ErrCanceled) || fs[i].Status() != Canceled || fs[i].Attempts() != 0 {
					t.Fatalf("task %d: Result() error %v, status %v, %d attempts; want ErrCanceled, canceled, 0",
						i, err, fs[i].Status(), fs[i].Attempts())
				}
				if fs[i].Cancel() {
					t.Fatalf("second Cancel() of task %d = true", i)
				}
				expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: n - k - 1, Submitted: n + 1, Canceled: uint64(k + 1)})
			}
			// A new task lands behind the live ones.
			late := mustSubmit(t, q, func(context.Context) (int, error) { log.add(n); return n, nil })
			expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: n - len(canceled) + 1, Submitted: n + 2, Canceled: 4})
			close(gate)
			if _, err := late.Await(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := q.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, want := log.get(), []int{1, 2, 3, 6, 7, 8, n}; !slices.Equal(got, want) {
				t.Fatalf("start order %v, want %v", got, want)
			}
			expectStats(t, q, Stats{Submitted: n + 2, Succeeded: n + 2 - 4, Canceled: 4})
		})
	}
}
