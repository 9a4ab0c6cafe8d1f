package errandpg

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandgo/errand"
	"github.com/jackc/pgx/v5/pgxpool"
)

// End to end: queues of the core with this Store, against a real
// PostgreSQL.

// awaitWait bounds every wait for a future or a handler in these tests.
const awaitWait = 20 * time.Second

// slowPoll is a poll interval no test waits for: whatever happens within
// awaitWait happened by notification or by the queue's own wake-ups.
const slowPoll = 10 * time.Minute

// durableQueue starts a queue on a Store of pool and returns once the
// queue's listener listens (so no notification it is sent can be lost);
// the queue is closed at cleanup, before the pool.
func durableQueue(t *testing.T, pool *pgxpool.Pool, cfg errand.Config, opts ...Option) *errand.Queue {
	t.Helper()
	s := New(pool, opts...)
	started := make(chan *listener, 1)
	s.onListen = func(l *listener) { started <- l }
	cfg.Store = s
	if cfg.PollInterval == 0 {
		cfg.PollInterval = slowPoll
	}
	q, err := errand.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	select {
	case l := <-started:
		(&testListener{listener: l}).waitState(t, "listening", func(polling bool, _ uint32) bool { return !polling })
	case <-time.After(awaitWait):
		t.Fatal("the queue did not start listening")
	}
	return q
}

func await[T any](t *testing.T, f *errand.Future[T]) (T, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), awaitWait)
	defer cancel()
	v, err := f.Await(ctx)
	if ctx.Err() != nil {
		t.Fatalf("future %s not resolved within %v (status %v)", f.ID(), awaitWait, f.Status())
	}
	return v, err
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(awaitWait):
		t.Fatalf("%s: nothing within %v", what, awaitWait)
		panic("unreachable")
	}
}

func double(_ context.Context, n int) (int, error) { return 2 * n, nil }

// TestQueueRunsStoredTask: the one-argument New as Config.Store, the whole
// path through the core, and pickup by notification (the poll interval is
// ten minutes).
func TestQueueRunsStoredTask(t *testing.T) {
	pool := migratedPool(t)
	k := errand.Define("e2e.double", double)
	// The contract's own spelling must work as is.
	q0, err := errand.New(errand.Config{Store: New(pool)})
	if err != nil {
		t.Fatal(err)
	}
	if err := q0.Close(); err != nil {
		t.Fatal(err)
	}

	q := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{k}, Workers: 4})
	ctx := testCtx(t)

	// Enqueued through the queue.
	f, err := k.Enqueue(ctx, q, 21)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := await(t, f); err != nil || v != 42 {
		t.Fatalf("Await: %v, %v", v, err)
	}
	rec, err := q.Lookup(ctx, f.ID())
	if err != nil || rec.Status != errand.Succeeded || string(rec.Result) != "42" || rec.Attempts != 1 || rec.Kind != "e2e.double" {
		t.Fatalf("Lookup: %+v, %v", rec, err)
	}

	// Enqueued by another process (a committed transaction): only the
	// notification can wake this queue, and only the done notification can
	// resolve the future, within the wait.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // after Commit: a no-op
	id, err := EnqueueTx(ctx, tx, k, 50)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	f2, err := k.Future(q, id)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := await(t, f2); err != nil || v != 100 {
		t.Fatalf("Await: %v, %v", v, err)
	}
	t.Logf("committed to resolved, through NOTIFY both ways: %v", time.Since(start))
}

// TestQueueFutureBeforeCommitIsNotFound: a task of a transaction not yet
// committed does not exist for others.
func TestQueueFutureOfUncommittedTask(t *testing.T) {
	pool := migratedPool(t)
	k := errand.Define("e2e.double", double)
	q := durableQueue(t, pool, errand.Config{})
	ctx := testCtx(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	id, err := EnqueueTx(ctx, tx, k, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Future(q, id); !errors.Is(err, errand.ErrNotFound) {
		t.Fatalf("Future of an uncommitted task: %v, want ErrNotFound", err)
	}
}

func TestQueueRetriesWithStoredBackoff(t *testing.T) {
	pool := migratedPool(t)
	var calls atomic.Int32
	attempts := make(chan int, 10)
	flaky := errand.Define("e2e.flaky", func(ctx context.Context, n int) (int, error) {
		ti, _ := errand.TaskFromContext(ctx)
		attempts <- ti.Attempt
		if calls.Add(1) < 3 {
			return 0, errors.New("not yet")
		}
		return n, nil
	}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3, Backoff: errand.Constant(20 * time.Millisecond)}))
	failed := make(chan errand.Event, 10)
	slow := errand.Define("e2e.slowretry", func(context.Context, int) (int, error) {
		return 0, errors.New("try in an hour")
	}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 2, Backoff: errand.Constant(time.Hour)}))
	// A retry comes due later: only a poll finds it.
	q := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{flaky, slow}, PollInterval: 50 * time.Millisecond,
		OnEvent: func(e errand.Event) {
			if e.Task.Name == "e2e.slowretry" && (e.Kind == errand.EventFailed || e.Kind == errand.EventRetrying || e.Kind == errand.EventSucceeded || e.Kind == errand.EventCanceled) {
				failed <- e
			}
		}})
	ctx := testCtx(t)

	f, err := flaky.Enqueue(ctx, q, 7)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := await(t, f); err != nil || v != 7 {
		t.Fatalf("Await: %v, %v", v, err)
	}
	for want := 1; want <= 3; want++ {
		if got := recv(t, attempts, "attempt"); got != want {
			t.Fatalf("attempt %d ran as attempt %d", want, got)
		}
	}
	if f.Attempts() != 3 {
		t.Fatalf("Attempts() = %d, want 3", f.Attempts())
	}
	if rec, err := q.Lookup(ctx, f.ID()); err != nil || rec.Attempts != 3 || rec.Status != errand.Succeeded || rec.MaxAttempts != 3 {
		t.Fatalf("Lookup: %+v, %v", rec, err)
	}

	// A retry an hour away is stored: the task waits in the database, not
	// in a worker.
	before := dbNow(t, pool)
	fs, err := slow.Enqueue(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, failed, "the first attempt's end")
	if st := fs.Status(); st.Final() {
		t.Fatalf("the future of a task backing off is %v", st)
	}
	// The event comes when the handler returns; the outcome is recorded by
	// the queue's completer, in a batch, and Close records every pending
	// outcome before it returns.
	q.Close()
	recs, err := New(pool).Lookup(ctx, []string{fs.ID()})
	var rec errand.TaskRecord
	if len(recs) == 1 {
		rec = recs[0]
	}
	if err != nil || rec.Status != errand.Retrying || rec.Attempts != 1 || rec.Error != "try in an hour" ||
		rec.RunAt.Before(before.Add(time.Hour)) || rec.RunAt.After(dbNow(t, pool).Add(time.Hour)) {
		t.Fatalf("after a failed attempt with an hour's backoff: %+v, %v", rec, err)
	}
}

func TestQueueKeySingleflight(t *testing.T) {
	pool := migratedPool(t)
	var runs atomic.Int32
	started := make(chan struct{}, 2)
	release := make(chan struct{})
	k := errand.Define("e2e.single", func(_ context.Context, n int) (int, error) {
		runs.Add(1)
		started <- struct{}{}
		<-release
		return n, nil
	})
	q := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{k}})
	ctx := testCtx(t)
	f1, err := k.Enqueue(ctx, q, 1, errand.WithKey("report:7"))
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "start")
	f2, err := k.Enqueue(ctx, q, 2, errand.WithKey("report:7"))
	if err != nil {
		t.Fatal(err)
	}
	if f2.ID() != f1.ID() {
		t.Fatalf("a second Enqueue with the key stored task %s, want the first's %s", f2.ID(), f1.ID())
	}
	close(release)
	for _, f := range []*errand.Future[int]{f1, f2} {
		if v, err := await(t, f); err != nil || v != 1 {
			t.Fatalf("Await: %v, %v; want 1", v, err)
		}
	}
	if runs.Load() != 1 {
		t.Fatalf("ran %d times", runs.Load())
	}
	// Free again once finished.
	f3, err := k.Enqueue(ctx, q, 3, errand.WithKey("report:7"))
	if err != nil || f3.ID() == f1.ID() {
		t.Fatalf("Enqueue after the holder finished: %v, %v", f3, err)
	}
	if v, err := await(t, f3); err != nil || v != 3 {
		t.Fatalf("Await: %v, %v", v, err)
	}
}

// TestQueueFutureFromAnotherQueue: a second queue on the same schema (as
// another process would) re-attaches by id and resolves by notification.
func TestQueueFutureFromAnotherQueue(t *testing.T) {
	pool := migratedPool(t)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	k := errand.Define("e2e.slow", func(_ context.Context, s string) (string, error) {
		started <- struct{}{}
		<-release
		return strings.ToUpper(s), nil
	})
	worker := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{k}})
	watcher := durableQueue(t, pool, errand.Config{}) // runs nothing
	ctx := testCtx(t)

	f, err := k.Enqueue(ctx, worker, "hello")
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "start")
	g, err := k.Future(watcher, f.ID())
	if err != nil {
		t.Fatal(err)
	}
	if g.ID() != f.ID() || g.Status() != errand.Running {
		t.Fatalf("re-attached future: id %s status %v", g.ID(), g.Status())
	}
	close(release)
	if v, err := await(t, g); err != nil || v != "HELLO" {
		t.Fatalf("Await on the other queue: %q, %v", v, err)
	}
	// Once finished, a re-attached future is resolved at once.
	h, err := k.Future(watcher, f.ID())
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Done():
	default:
		t.Fatal("future of a finished task not done")
	}
	if v, err := h.Result(); err != nil || v != "HELLO" || h.Attempts() != 1 {
		t.Fatalf("Result: %q, %v, attempts %d", v, err, h.Attempts())
	}

	other := errand.Define("e2e.other", double)
	if _, err := other.Future(watcher, f.ID()); err == nil || errors.Is(err, errand.ErrNotFound) {
		t.Fatalf("Future of another kind's task: %v", err)
	}
	if _, err := k.Future(watcher, "00000000-0000-4000-8000-000000000000"); !errors.Is(err, errand.ErrNotFound) {
		t.Fatalf("Future of an unknown id: %v", err)
	}
	if _, err := k.Future(watcher, "not-a-uuid"); !errors.Is(err, errand.ErrNotFound) {
		t.Fatalf("Future of a malformed id: %v", err)
	}
}

func TestQueueStoredErrors(t *testing.T) {
	pool := migratedPool(t)
	fails := errand.Define("e2e.fails", func(context.Context, int) (int, error) { return 0, errors.New("boom") })
	panics := errand.Define("e2e.panics", func(context.Context, int) (int, error) { panic("kaboom") })
	q := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{fails, panics}})
	ctx := testCtx(t)

	f, err := fails.Enqueue(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = await(t, f)
	var se *errand.StoredError
	if !errors.As(err, &se) || se.Status != errand.Failed || se.Message != "boom" || se.ID != f.ID() || se.Kind != "e2e.fails" {
		t.Fatalf("Await of a failing task: %#v", err)
	}
	if f.Status() != errand.Failed {
		t.Fatalf("status %v", f.Status())
	}

	p, err := panics.Enqueue(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = await(t, p)
	if !errors.As(err, &se) || se.Status != errand.Failed || !strings.Contains(se.Message, "kaboom") {
		t.Fatalf("Await of a panicking task: %#v", err)
	}

	// Canceled while it waits (an hour away): never runs.
	c, err := fails.Enqueue(ctx, q, 1, errand.WithDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if c.Status() != errand.Scheduled {
		t.Fatalf("delayed stored task: status %v", c.Status())
	}
	if !c.Cancel() {
		t.Fatal("Cancel of a waiting stored task returned false")
	}
	if _, err := await(t, c); !errors.Is(err, errand.ErrCanceled) {
		t.Fatalf("Await of a canceled task: %v", err)
	}
	if rec, err := q.Lookup(ctx, c.ID()); err != nil || rec.Status != errand.Canceled || rec.Attempts != 0 {
		t.Fatalf("Lookup of a canceled task: %+v, %v", rec, err)
	}
}

// TestQueueStopHandsBack: a running stored task is handed back by Close,
// and by a Shutdown whose deadline passed, without spending its attempt;
// another queue then runs it as attempt 1.
func TestQueueStopHandsBack(t *testing.T) {
	for _, mode := range []string{"Close", "Shutdown"} {
		t.Run(mode, func(t *testing.T) {
			pool := migratedPool(t)
			started := make(chan struct{}, 1)
			blocker := errand.Define("e2e.handback", func(ctx context.Context, n int) (int, error) {
				started <- struct{}{}
				<-ctx.Done()
				return 0, ctx.Err()
			}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 2}))
			q1 := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{blocker}})
			ctx := testCtx(t)
			f, err := blocker.Enqueue(ctx, q1, 5)
			if err != nil {
				t.Fatal(err)
			}
			recv(t, started, "start")
			if rec, err := q1.Lookup(ctx, f.ID()); err != nil || rec.Status != errand.Running || rec.Attempts != 1 || rec.Holder == "" {
				t.Fatalf("running: %+v, %v", rec, err)
			}
			switch mode {
			case "Close":
				if err := q1.Close(); err != nil {
					t.Fatal(err)
				}
			case "Shutdown":
				sctx, cancel := context.WithCancel(ctx)
				cancel()
				if err := q1.Shutdown(sctx); !errors.Is(err, context.Canceled) {
					t.Fatalf("Shutdown: %v", err)
				}
				if err := q1.Close(); err != nil { // waits for the attempt to return
					t.Fatal(err)
				}
			}
			if _, err := await(t, f); !errors.Is(err, errand.ErrClosed) {
				t.Fatalf("future on the closed queue: %v, want ErrClosed", err)
			}
			s := New(pool)
			recs, err := s.Lookup(ctx, []string{f.ID()})
			if err != nil || len(recs) != 1 || recs[0].Status != errand.Queued || recs[0].Attempts != 0 || recs[0].Holder != "" {
				t.Fatalf("after %s: %+v, %v; want queued with 0 attempts", mode, recs, err)
			}

			attempt := make(chan int, 1)
			finisher := errand.Define("e2e.handback", func(ctx context.Context, n int) (int, error) {
				ti, _ := errand.TaskFromContext(ctx)
				attempt <- ti.Attempt
				return n, nil
			})
			q2 := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{finisher}, PollInterval: 50 * time.Millisecond})
			g, err := finisher.Future(q2, f.ID())
			if err != nil {
				t.Fatal(err)
			}
			if v, err := await(t, g); err != nil || v != 5 {
				t.Fatalf("Await on the second queue: %v, %v", v, err)
			}
			if a := recv(t, attempt, "attempt"); a != 1 {
				t.Fatalf("the handed-back task ran as attempt %d, want 1", a)
			}
		})
	}
}

// TestQueueStartsOverBacklog: a queue started when tasks already wait
// runs them at once, not a poll interval later.
func TestQueueStartsOverBacklog(t *testing.T) {
	pool := migratedPool(t)
	k := errand.Define("e2e.backlog", double)
	ctx := testCtx(t)
	var ids []string
	for i := range 3 {
		nt, err := k.NewTask(i)
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := New(pool).Enqueue(ctx, nt)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	q := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{k}})
	for i, id := range ids {
		f, err := k.Future(q, id)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := await(t, f); err != nil || v != 2*i {
			t.Fatalf("Await: %v, %v", v, err)
		}
	}
}

// TestQueueShutdownLetsStoredTaskFinish: a graceful Shutdown waits for a
// running stored task and records its outcome.
func TestQueueShutdownLetsStoredTaskFinish(t *testing.T) {
	pool := migratedPool(t)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	k := errand.Define("e2e.drain", func(_ context.Context, n int) (int, error) {
		started <- struct{}{}
		<-release
		return n + 1, nil
	})
	q := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{k}})
	ctx := testCtx(t)
	f, err := k.Enqueue(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	recv(t, started, "start")
	done := make(chan error, 1)
	go func() { done <- q.Shutdown(ctx) }()
	close(release)
	if err := recv(t, done, "Shutdown"); err != nil {
		t.Fatal(err)
	}
	recs, err := New(pool).Lookup(ctx, []string{f.ID()})
	if err != nil || len(recs) != 1 || recs[0].Status != errand.Succeeded || string(recs[0].Result) != "2" {
		t.Fatalf("after a graceful Shutdown: %+v, %v", recs, err)
	}
}

// TestQueueLeaseLossCancelsAttempt: when another process takes the lease
// (here: the token changes under the queue, as recovery and a re-claim
// would), the heartbeat cancels the attempt and its outcome is not written.
func TestQueueLeaseLossCancelsAttempt(t *testing.T) {
	pool := migratedPool(t)
	started := make(chan string, 1)
	canceled := make(chan error, 1)
	k := errand.Define("e2e.lease", func(ctx context.Context, n int) (int, error) {
		ti, _ := errand.TaskFromContext(ctx)
		started <- ti.ID
		<-ctx.Done()
		canceled <- context.Cause(ctx)
		return n, nil // a late success: must be refused
	})
	q := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{k}, Lease: time.Second})
	ctx := testCtx(t)
	f, err := k.Enqueue(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	id := recv(t, started, "start")
	if id != f.ID() {
		t.Fatalf("TaskFromContext id %s, want %s", id, f.ID())
	}
	mustExec(t, pool, `UPDATE errand_tasks SET lease_token = gen_random_uuid(), leased_by = 'thief' WHERE id = $1`, id)
	start := time.Now()
	recv(t, canceled, "cancellation")
	t.Logf("lease loss noticed after %v (Lease 1s, heartbeat every 333ms)", time.Since(start))
	rec, err := q.Lookup(ctx, id)
	if err != nil || rec.Status != errand.Running || rec.Holder != "thief" || rec.Result != nil {
		t.Fatalf("after lease loss: %+v, %v; want still running under the thief", rec, err)
	}
}

// TestQueueStoredSchedule: a stored schedule registered by two queues fires
// once per due time.
func TestQueueStoredSchedule(t *testing.T) {
	pool := migratedPool(t)
	ran := make(chan string, 100)
	k := errand.Define("e2e.tick", func(ctx context.Context, s string) (int, error) {
		ran <- s
		return 0, nil
	})
	ctx := testCtx(t)
	var qs []*errand.Queue
	for i := range 2 {
		q := durableQueue(t, pool, errand.Config{Kinds: []errand.Runner{k}, PollInterval: 50 * time.Millisecond})
		if err := k.Schedule(ctx, q, "ticker", errand.Every(time.Second), fmt.Sprint("from ", i)); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	for range 3 {
		if s := recv(t, ran, "a run"); s != "from 1" {
			t.Fatalf("run with args %q, want the last registration's", s)
		}
	}
	if err := qs[0].Unschedule(ctx, "ticker"); err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := pool.Query(ctx, `SELECT created_at FROM errand_tasks WHERE kind = 'e2e.tick' ORDER BY created_at`)
	if err != nil {
		t.Fatal(err)
	}
	var times []time.Time
	for rows.Next() {
		var at time.Time
		if err := rows.Scan(&at); err != nil {
			t.Fatal(err)
		}
		times = append(times, at)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(times) < 3 {
		t.Fatalf("%d runs stored", len(times))
	}
	for i := 1; i < len(times); i++ {
		if gap := times[i].Sub(times[i-1]); gap < 800*time.Millisecond {
			t.Fatalf("runs %d and %d stored %v apart: a due time fired twice (%v)", i-1, i, gap, times)
		}
	}
}

// TestQueuePollsWithoutNotifications: with notifications off (behind a
// transaction pooler), the queue runs stored tasks and resolves futures by
// polling alone.
func TestQueuePollsWithoutNotifications(t *testing.T) {
	pool := migratedPool(t)
	k := errand.Define("e2e.polled", double)
	q, err := errand.New(errand.Config{Store: New(pool, WithNotifications(false)), Kinds: []errand.Runner{k},
		PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	ctx := testCtx(t)
	nt, err := k.NewTask(4)
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := New(pool).Enqueue(ctx, nt) // not through q: nothing wakes it
	if err != nil {
		t.Fatal(err)
	}
	f, err := k.Future(q, id)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := await(t, f); err != nil || v != 8 {
		t.Fatalf("Await: %v, %v", v, err)
	}
}
