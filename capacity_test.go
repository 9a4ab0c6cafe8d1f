package errand

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// submitVia submits a task that records id in log, by one of the three
// submission paths: Submit, a plain Go, or a Go with an option.
func submitVia(ctx context.Context, q *Queue, via string, log *startLog, id int) error {
	switch via {
	case "Submit":
		_, err := Submit(ctx, q, func(context.Context) (int, error) { log.add(id); return id, nil })
		return err
	case "Go":
		return q.Go(ctx, func(context.Context) error { log.add(id); return nil })
	case "GoWithOption":
		return q.Go(ctx, func(context.Context) error { log.add(id); return nil }, WithName("capacity"))
	}
	panic("unknown path " + via)
}

var submitPaths = []string{"Submit", "Go", "GoWithOption"}

// TestCapacityReject: with Capacity 2 and Reject, a third waiting task is
// refused at once with ErrQueueFull by every submission path and counted in
// Stats.Rejected; delayed tasks take no room, and a canceled queued task
// gives its room back.
func TestCapacityReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1, Capacity: 2, OnFull: Reject})
		gate := make(chan struct{})
		holdWorker(t, q, gate)
		var log startLog
		a := mustSubmit(t, q, func(context.Context) (int, error) { log.add(1); return 1, nil })
		mustSubmit(t, q, func(context.Context) (int, error) { log.add(2); return 2, nil })
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 2, Submitted: 3})

		t0 := time.Now()
		for i, via := range submitPaths {
			if err := submitVia(context.Background(), q, via, &log, 100+i); err != ErrQueueFull {
				t.Fatalf("%s into a full queue = %v, want ErrQueueFull", via, err)
			}
		}
		if !time.Now().Equal(t0) {
			t.Fatalf("rejecting took %v, want no time", time.Since(t0))
		}
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 2, Submitted: 3, Rejected: 3})

		// A delayed task does not wait for a worker, so it takes no room.
		mustSubmit(t, q, func(context.Context) (int, error) { log.add(3); return 3, nil }, WithDelay(time.Hour))
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 2, Scheduled: 1, Submitted: 4, Rejected: 3})

		// Canceling a queued task frees its room.
		if !a.Cancel() {
			t.Fatal("Cancel() = false")
		}
		mustSubmit(t, q, func(context.Context) (int, error) { log.add(4); return 4, nil })
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 2, Scheduled: 1, Submitted: 5, Canceled: 1, Rejected: 3})
		if err := submitVia(context.Background(), q, "Go", &log, 5); err != ErrQueueFull {
			t.Fatalf("Go into a full queue = %v, want ErrQueueFull", err)
		}

		// A worker taking a task frees its room.
		close(gate)
		synctest.Wait()
		if err := submitVia(context.Background(), q, "Go", &log, 6); err != nil {
			t.Fatalf("Go once the queue has room = %v", err)
		}
		synctest.Wait()
		if got, want := log.get(), []int{2, 4, 6}; !slices.Equal(got, want) {
			t.Fatalf("ran %v, want %v", got, want)
		}
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Scheduled: 1, Submitted: 6, Succeeded: 4, Canceled: 1, Rejected: 4})
	})
}

// TestCapacityBlockWaitsForRoom: with Block, a submission into a full queue
// returns only once a task has left the queue (taken by a worker, or
// canceled), by every submission path.
func TestCapacityBlockWaitsForRoom(t *testing.T) {
	for _, via := range submitPaths {
		for _, room := range []string{"worker takes a task", "queued task canceled"} {
			t.Run(via+"/"+room, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					q := newQueue(t, Config{Workers: 1, Capacity: 2})
					release := make(chan struct{})
					var g poolGauge
					holdWorker(t, q, release)
					a := mustSubmit(t, q, blockingTask(&g, release, 1))
					mustSubmit(t, q, blockingTask(&g, release, 2))
					expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 2, Submitted: 3})

					var log startLog
					returned := make(chan error, 1)
					go func() { returned <- submitVia(context.Background(), q, via, &log, 3) }()
					synctest.Wait()
					select {
					case err := <-returned:
						t.Fatalf("%s returned %v while the queue was full", via, err)
					default:
					}
					expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 2, Submitted: 3})

					canceled := uint64(0)
					if room == "worker takes a task" {
						release <- struct{}{} // the gate task ends; task a starts
					} else {
						a.Cancel()
						canceled = 1
					}
					synctest.Wait()
					select {
					case err := <-returned:
						if err != nil {
							t.Fatalf("%s = %v once there was room, want nil", via, err)
						}
					default:
						t.Fatalf("%s still blocked once there was room", via)
					}
					running := 1
					expectStats(t, q, Stats{Workers: 1, Running: running, Queued: 2, Submitted: 4,
						Succeeded: 1 - canceled, Canceled: canceled})
					close(release)
					synctest.Wait()
					if got := log.get(); !slices.Equal(got, []int{3}) {
						t.Fatalf("the admitted task ran %v times", len(got))
					}
				})
			})
		}
	}
}

// TestCapacityBlockContextEnds: a blocked submission whose context ends
// returns the context's error at that moment, is counted as Rejected, and
// leaves no trace: later room goes to others.
func TestCapacityBlockContextEnds(t *testing.T) {
	for _, via := range submitPaths {
		for _, end := range []string{"deadline", "cancel"} {
			t.Run(via+"/"+end, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					q := newQueue(t, Config{Workers: 1, Capacity: 1})
					gate := make(chan struct{})
					holdWorker(t, q, gate)
					var log startLog
					mustSubmit(t, q, func(context.Context) (int, error) { log.add(1); return 1, nil })

					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					wantErr := context.DeadlineExceeded
					if end == "cancel" {
						wantErr = context.Canceled
						time.AfterFunc(3*time.Second, cancel)
					}
					t0 := time.Now()
					type result struct {
						err error
						at  time.Duration
					}
					returned := make(chan result, 1)
					go func() {
						err := submitVia(ctx, q, via, &log, 2)
						returned <- result{err, time.Since(t0)}
					}()
					synctest.Wait()
					expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 1, Submitted: 2})
					r := <-returned
					wantAt := 5 * time.Second
					if end == "cancel" {
						wantAt = 3 * time.Second
					}
					if r.err != wantErr || r.at != wantAt {
						t.Fatalf("%s = %v after %v; want %v after %v", via, r.err, r.at, wantErr, wantAt)
					}
					expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 1, Submitted: 2, Rejected: 1})

					close(gate)
					synctest.Wait()
					if err := submitVia(context.Background(), q, via, &log, 3); err != nil {
						t.Fatal(err)
					}
					synctest.Wait()
					if got, want := log.get(), []int{1, 3}; !slices.Equal(got, want) {
						t.Fatalf("ran %v, want %v", got, want)
					}
					expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 3, Succeeded: 3, Rejected: 1})
				})
			})
		}
	}
}

// TestCapacityBlockFIFO: submitters blocked on a full queue are admitted in
// the order they started waiting.
func TestCapacityBlockFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1, Capacity: 1})
		gate := make(chan struct{})
		holdWorker(t, q, gate)
		var log startLog
		mustSubmit(t, q, func(context.Context) (int, error) { log.add(0); return 0, nil })
		const n = 6
		errs := make(chan error, n)
		for i := 1; i <= n; i++ {
			go func() { errs <- submitVia(context.Background(), q, submitPaths[i%3], &log, i) }()
			synctest.Wait() // i is waiting before i+1 starts to
		}
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 1, Submitted: 2})
		close(gate)
		synctest.Wait()
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if got, want := log.get(), []int{0, 1, 2, 3, 4, 5, 6}; !slices.Equal(got, want) {
			t.Fatalf("ran %v, want %v", got, want)
		}
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: n + 2, Succeeded: n + 2})
	})
}

// TestCapacityBlockedSubmittersAtClose: Shutdown or Close while submitters
// are blocked on a full queue makes them return ErrClosed at once; they are
// not counted as rejected or submitted, and nothing hangs.
func TestCapacityBlockedSubmittersAtClose(t *testing.T) {
	for _, how := range []string{"Shutdown", "Close"} {
		t.Run(how, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, Config{Workers: 1, Capacity: 2})
				gate := make(chan struct{})
				holdWorker(t, q, gate)
				var log startLog
				a := mustSubmit(t, q, func(context.Context) (int, error) { log.add(1); return 1, nil })
				b := mustSubmit(t, q, func(context.Context) (int, error) { log.add(2); return 2, nil })
				const n = 6
				errs := make(chan error, n)
				for i := range n {
					go func() { errs <- submitVia(context.Background(), q, submitPaths[i%3], &log, 10+i) }()
				}
				synctest.Wait()
				expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 2, Submitted: 3})

				closed := make(chan error, 1)
				if how == "Shutdown" {
					go func() { closed <- q.Shutdown(context.Background()) }()
				} else {
					go func() { closed <- q.Close() }()
				}
				synctest.Wait()
				for range n {
					select {
					case err := <-errs:
						if err != ErrClosed {
							t.Fatalf("blocked submission = %v, want ErrClosed", err)
						}
					default:
						t.Fatal("a blocked submission is still blocked after " + how)
					}
				}
				if how == "Shutdown" {
					select {
					case err := <-closed:
						t.Fatalf("Shutdown returned %v while a task was running", err)
					default:
					}
					close(gate)
					synctest.Wait()
				}
				if err := <-closed; err != nil {
					t.Fatalf("%s = %v, want nil", how, err)
				}
				if how == "Shutdown" {
					if got, want := log.get(), []int{1, 2}; !slices.Equal(got, want) {
						t.Fatalf("ran %v, want %v", got, want)
					}
					expectStats(t, q, Stats{Submitted: 3, Succeeded: 3})
				} else {
					if got := log.get(); len(got) != 0 {
						t.Fatalf("ran %v after Close, want nothing", got)
					}
					for _, f := range []*Future[int]{a, b} {
						if _, err := f.Result(); !errors.Is(err, ErrClosed) {
							t.Fatalf("queued task dropped by Close: %v, want ErrClosed", err)
						}
					}
					expectStats(t, q, Stats{Submitted: 3, Canceled: 3})
				}
			})
		})
	}
}

// TestCapacityNestedSubmitNoDeadlock: a task that submits into its own full
// queue is never blocked (nor rejected): its submissions are admitted over
// the bound at once, also through a context derived from its own, and run.
func TestCapacityNestedSubmitNoDeadlock(t *testing.T) {
	for _, policy := range []FullPolicy{Block, Reject} {
		t.Run(map[FullPolicy]string{Block: "Block", Reject: "Reject"}[policy], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, Config{Workers: 1, Capacity: 1, OnFull: policy})
				var ran atomic.Int32
				ready := make(chan struct{})
				type nested struct {
					fs       []*Future[int]
					err      error
					took     time.Duration
					inFlight Stats
				}
				out := make(chan nested, 1)
				outer := mustSubmit(t, q, func(ctx context.Context) (int, error) {
					<-ready
					var n nested
					t0 := time.Now()
					inner := func(v int) func(context.Context) (int, error) {
						return func(context.Context) (int, error) { ran.Add(1); return v, nil }
					}
					type key struct{}
					derived, cancel := context.WithTimeout(context.WithValue(ctx, key{}, 1), time.Hour)
					defer cancel()
					for i, c := range []context.Context{ctx, derived} {
						f, err := Submit(c, q, inner(i))
						if err != nil {
							n.err = err
							break
						}
						n.fs = append(n.fs, f)
						if err := q.Go(c, func(context.Context) error { ran.Add(1); return nil }); err != nil {
							n.err = err
							break
						}
						if err := q.Go(c, func(context.Context) error { ran.Add(1); return nil }, WithPriority(1)); err != nil {
							n.err = err
							break
						}
					}
					n.took = time.Since(t0)
					n.inFlight = q.Stats()
					out <- n
					return 0, nil
				})
				// Fill the queue while the outer task runs.
				mustSubmit(t, q, func(context.Context) (int, error) { ran.Add(1); return 0, nil })
				expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 1, Submitted: 2})
				close(ready)
				synctest.Wait()
				n := <-out
				if n.err != nil || n.took != 0 {
					t.Fatalf("nested submissions: %v after %v; want nil at once", n.err, n.took)
				}
				if want := (Stats{Workers: 1, Running: 1, Queued: 7, Submitted: 8}); n.inFlight != want {
					t.Fatalf("Stats while nested tasks wait:\n got %+v\nwant %+v", n.inFlight, want)
				}
				if _, err := outer.Result(); err != nil {
					t.Fatal(err)
				}
				if _, err := AwaitAll(context.Background(), n.fs...); err != nil {
					t.Fatal(err)
				}
				if got := ran.Load(); got != 7 {
					t.Fatalf("%d queued tasks ran, want 7", got)
				}
				expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 8, Succeeded: 8})
			})
		})
	}
}
