package errandtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandgo/errand"
	"github.com/google/uuid"
)

// Timing of the suite. Real time is unavoidable against a database: waits
// go through futures and channels bounded by waitFor, never sleeps.
const (
	waitFor      = 15 * time.Second       // the longest any one wait may take
	suiteLease   = 2 * time.Second        // Config.Lease
	suitePoll    = 20 * time.Millisecond  // Config.PollInterval
	suiteBackoff = 100 * time.Millisecond // the retry backoff measured
	suiteDelay   = 300 * time.Millisecond // WithDelay and WithRunAt measured
)

// RunQueueSuite runs errand's behaviour suite for named kinds (Define)
// against the store newStore returns, one subtest per behaviour: typed
// results through the codec, codec failures, handler errors, permanent
// errors, retries with backoff, priorities, delays, unique keys, timeouts,
// cancellation, re-attached futures, producer and consumer queues,
// Lookup, recurring schedules, Shutdown and Close. newStore is called once per subtest with the
// subtest's *testing.T and should return an empty store (it may register
// cleanups on t); returning nil runs the subtest without a Store, in
// memory, so the same suite proves that both modes behave alike. With a
// store, some subtests start a second queue on the same store, as a
// second process would.
//
// Each subtest builds its own queues (Lease 2s, PollInterval 20ms, so a
// store that cannot notify is still fast) and closes them. The suite waits
// on futures and channels, never on sleeps, each wait bounded by 15s; it
// takes a few seconds in all. A store author calls it from a test:
//
//	func TestQueueSuite(t *testing.T) {
//		errandtest.RunQueueSuite(t, func(t *testing.T) errand.Store { return newTestStore(t) })
//	}
func RunQueueSuite(t *testing.T, newStore func(t *testing.T) errand.Store) {
	t.Helper()
	if newStore == nil {
		t.Fatal("errandtest.RunQueueSuite: nil newStore")
	}
	for _, c := range suiteCases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newStore(t))
		})
	}
}

var suiteCases = []struct {
	name string
	run  func(*testing.T, errand.Store)
}{
	{"EnqueueAwait", testEnqueueAwait},
	{"CodecErrors", testCodecErrors},
	{"HandlerError", testHandlerError},
	{"PermanentNotRetried", testPermanent},
	{"RetryBackoff", testRetryBackoff},
	{"Priorities", testPriorities},
	{"Delays", testDelays},
	{"KeySingleflight", testKeySingleflight},
	{"Timeout", testTimeout},
	{"Cancel", testCancel},
	{"FutureReattach", testFutureReattach},
	{"NewTask", testNewTask},
	{"ProducerConsumer", testProducerConsumer},
	{"Lookup", testLookup},
	{"Schedule", testSchedule},
	{"ShutdownWaits", testShutdownWaits},
	{"CloseResolvesFutures", testCloseResolves},
}

// newSuiteQueue returns a queue on s with the suite's timing, and closes it
// when the test ends.
func newSuiteQueue(t *testing.T, s errand.Store, cfg errand.Config) *errand.Queue {
	t.Helper()
	cfg.Store = s
	cfg.Lease = suiteLease
	cfg.PollInterval = suitePoll
	cfg.Order = errand.OrderPriority
	if cfg.Workers == 0 {
		cfg.Workers = 4
	}
	q, err := errand.New(cfg)
	if err != nil {
		t.Fatalf("errand.New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// bg returns a context for one call that may wait, bounded by waitFor.
func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

func enqueue[A, R any](t *testing.T, k *errand.Kind[A, R], q *errand.Queue, args A, opts ...errand.Option) *errand.Future[R] {
	t.Helper()
	f, err := k.Enqueue(bg(t), q, args, opts...)
	if err != nil {
		t.Fatalf("%s.Enqueue(%v): %v", k.Name(), args, err)
	}
	return f
}

// awaitDone waits for f to resolve and returns its result.
func awaitDone[R any](t *testing.T, f *errand.Future[R]) (R, error) {
	t.Helper()
	select {
	case <-f.Done():
	case <-time.After(waitFor):
		t.Fatalf("future %s: not resolved after %v (status %v)", f.ID(), waitFor, f.Status())
	}
	return f.Result()
}

// awaitOK waits for f to succeed and returns its value.
func awaitOK[R any](t *testing.T, f *errand.Future[R]) R {
	t.Helper()
	v, err := awaitDone(t, f)
	if err != nil {
		t.Fatalf("future %s: %v, want success", f.ID(), err)
	}
	return v
}

// recv receives from ch within waitFor.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitFor):
		t.Fatalf("no %s after %v", what, waitFor)
		panic("unreachable")
	}
}

// lookup is Queue.Lookup within waitFor.
func lookup(t *testing.T, q *errand.Queue, id string) errand.TaskRecord {
	t.Helper()
	rec, err := q.Lookup(bg(t), id)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", id, err)
	}
	return rec
}

// gated is a kind for ordering tests: the task named "blocker" holds its
// worker until open is closed (or its context ends); every task reports
// its name on started when it starts and appends it to ran when it ends.
type gated struct {
	kind    *errand.Kind[string, string]
	open    chan struct{}
	started chan string
	mu      sync.Mutex
	ran     []string
}

func newGated(name string, opts ...errand.Option) *gated {
	g := &gated{open: make(chan struct{}), started: make(chan string, 64)}
	g.kind = errand.Define(name, func(ctx context.Context, s string) (string, error) {
		g.started <- s
		if s == "blocker" {
			select {
			case <-g.open:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		g.mu.Lock()
		g.ran = append(g.ran, s)
		g.mu.Unlock()
		return "ran " + s, nil
	}, opts...)
	return g
}

// block enqueues the blocker and waits until it runs.
func (g *gated) block(t *testing.T, q *errand.Queue) *errand.Future[string] {
	t.Helper()
	f := enqueue(t, g.kind, q, "blocker")
	if s := recv(t, g.started, "start of the blocker"); s != "blocker" {
		t.Fatalf("%q started first, want the blocker", s)
	}
	return f
}

func (g *gated) order() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.ran...)
}

type greetArgs struct {
	Name string            `json:"name"`
	N    int               `json:"n"`
	Tags []string          `json:"tags"`
	Meta map[string]string `json:"meta"`
}

type greeting struct {
	Text    string   `json:"text"`
	Sum     int      `json:"sum"`
	Tags    []string `json:"tags"`
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Attempt int      `json:"attempt"`
}

// testEnqueueAwait: struct arguments and results make the codec round trip,
// and the handler sees its task's id (the future's), name and attempt.
func testEnqueueAwait(t *testing.T, s errand.Store) {
	k := errand.Define("errandtest.greet", func(ctx context.Context, a greetArgs) (greeting, error) {
		info, ok := errand.TaskFromContext(ctx)
		if !ok {
			return greeting{}, errand.Permanent(errors.New("no task in the context"))
		}
		return greeting{Text: "hello " + a.Name + " " + a.Meta["lang"], Sum: a.N * 2, Tags: a.Tags,
			ID: info.ID, Name: info.Name, Attempt: info.Attempt}, nil
	})
	q := newSuiteQueue(t, s, errand.Config{Kinds: []errand.Runner{k}})
	f := enqueue(t, k, q, greetArgs{Name: "ann", N: 21, Tags: []string{"a", "b"}, Meta: map[string]string{"lang": "go"}})
	got := awaitOK(t, f)
	want := greeting{Text: "hello ann go", Sum: 42, Tags: []string{"a", "b"}, ID: f.ID(), Name: "errandtest.greet", Attempt: 1}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("result = %+v, want %+v", got, want)
	}
	if f.Status() != errand.Succeeded || f.Attempts() != 1 {
		t.Fatalf("status %v after %d attempts, want succeeded after 1", f.Status(), f.Attempts())
	}
	if _, err := uuid.Parse(f.ID()); err != nil {
		t.Fatalf("ID %q is not a UUID: %v", f.ID(), err)
	}
}

// testCodecErrors: arguments that cannot be encoded fail at Enqueue; a
// result that cannot be encoded fails the task once, without retries.
func testCodecErrors(t *testing.T, s errand.Store) {
	var argRuns, resultRuns atomic.Int32
	badArgs := errand.Define("errandtest.chan-args", func(context.Context, chan int) (int, error) {
		argRuns.Add(1)
		return 0, nil
	})
	badResult := errand.Define("errandtest.chan-result", func(context.Context, int) (chan int, error) {
		resultRuns.Add(1)
		return make(chan int), nil
	}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3, Backoff: errand.Constant(time.Millisecond)}))
	q := newSuiteQueue(t, s, errand.Config{})
	if f, err := badArgs.Enqueue(bg(t), q, make(chan int)); err == nil || !strings.Contains(err.Error(), "encoding the arguments") {
		t.Fatalf("Enqueue(chan) = %v, %v; want an encoding error", f, err)
	}
	f := enqueue(t, badResult, q, 1)
	if _, err := awaitDone(t, f); err == nil || !strings.Contains(err.Error(), "encoding the result") {
		t.Fatalf("result that cannot be encoded: %v, want an encoding error", err)
	}
	if n := resultRuns.Load(); n != 1 || f.Attempts() != 1 || f.Status() != errand.Failed {
		t.Fatalf("result that cannot be encoded: %d runs, %d attempts, status %v; want 1 failed attempt", n, f.Attempts(), f.Status())
	}
	if n := argRuns.Load(); n != 0 {
		t.Fatalf("the kind whose arguments failed to encode ran %d times", n)
	}
}

// testHandlerError: a handler's error fails the future with its message:
// the error itself in memory, a *errand.StoredError with a Store.
func testHandlerError(t *testing.T, s errand.Store) {
	boom := errors.New("errandtest: boom")
	k := errand.Define("errandtest.boom", func(context.Context, int) (int, error) { return 0, boom })
	q := newSuiteQueue(t, s, errand.Config{})
	f := enqueue(t, k, q, 1)
	_, err := awaitDone(t, f)
	if err == nil || err.Error() != boom.Error() {
		t.Fatalf("Await error = %v, want %q", err, boom)
	}
	if f.Status() != errand.Failed || f.Attempts() != 1 {
		t.Fatalf("status %v after %d attempts, want failed after 1", f.Status(), f.Attempts())
	}
	if s == nil {
		if !errors.Is(err, boom) {
			t.Fatalf("in memory: Await error %#v does not wrap the handler's error", err)
		}
		return
	}
	var se *errand.StoredError
	if !errors.As(err, &se) || se.ID != f.ID() || se.Kind != k.Name() || se.Status != errand.Failed || se.Message != boom.Error() {
		t.Fatalf("with a Store: Await error %#v, want a *errand.StoredError of the failed task", err)
	}
	if errors.Is(err, errand.ErrCanceled) {
		t.Fatal("a failed stored task's error reports ErrCanceled")
	}
}

// testPermanent: a Permanent error is not retried whatever the policy.
func testPermanent(t *testing.T, s errand.Store) {
	var runs atomic.Int32
	k := errand.Define("errandtest.permanent", func(context.Context, int) (int, error) {
		runs.Add(1)
		return 0, errand.Permanent(errors.New("errandtest: bad input"))
	}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 5, Backoff: errand.Constant(time.Millisecond)}))
	q := newSuiteQueue(t, s, errand.Config{})
	f := enqueue(t, k, q, 1)
	if _, err := awaitDone(t, f); err == nil || err.Error() != "errandtest: bad input" {
		t.Fatalf("Await error = %v, want the permanent error's message", err)
	}
	if n := runs.Load(); n != 1 || f.Attempts() != 1 {
		t.Fatalf("%d runs, %d attempts; want 1", n, f.Attempts())
	}
}

// attemptLog is what a retried handler saw of each attempt.
type attemptLog struct {
	id         string
	attempt    int
	start, end time.Time
}

// testRetryBackoff: a failing task is retried with its backoff between
// attempts, each attempt numbered in its context under the same task id;
// once the attempts are spent the last error fails it.
func testRetryBackoff(t *testing.T, s errand.Store) {
	var mu sync.Mutex
	logs := map[string][]attemptLog{}
	k := errand.Define("errandtest.flaky", func(ctx context.Context, succeedAt int) (int, error) {
		start := time.Now()
		info, _ := errand.TaskFromContext(ctx)
		defer func() {
			mu.Lock()
			logs[info.ID] = append(logs[info.ID], attemptLog{id: info.ID, attempt: info.Attempt, start: start, end: time.Now()})
			mu.Unlock()
		}()
		if info.Attempt < succeedAt {
			return 0, fmt.Errorf("errandtest: flaky attempt %d", info.Attempt)
		}
		return info.Attempt, nil
	}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3, Backoff: errand.Constant(suiteBackoff)}))
	q := newSuiteQueue(t, s, errand.Config{})
	ok := enqueue(t, k, q, 3)     // fails twice, then succeeds
	spent := enqueue(t, k, q, 10) // fails all 3 attempts
	if got := awaitOK(t, ok); got != 3 || ok.Attempts() != 3 {
		t.Fatalf("retried task: result %d after %d attempts, want 3 after 3", got, ok.Attempts())
	}
	if _, err := awaitDone(t, spent); err == nil || err.Error() != "errandtest: flaky attempt 3" || spent.Attempts() != 3 {
		t.Fatalf("task failing every attempt: %v after %d attempts; want the third attempt's error after 3", err, spent.Attempts())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range []string{ok.ID(), spent.ID()} {
		l := logs[f]
		if len(l) != 3 {
			t.Fatalf("task %s ran %d attempts, want 3", f, len(l))
		}
		for i, a := range l {
			if a.attempt != i+1 || a.id != f {
				t.Fatalf("attempt %d of %s saw attempt %d of task %q", i+1, f, a.attempt, a.id)
			}
			if i > 0 {
				if gap := a.start.Sub(l[i-1].end); gap < suiteBackoff*9/10 {
					t.Fatalf("attempt %d of %s started %v after the previous ended, want the %v backoff", a.attempt, f, gap, suiteBackoff)
				}
			}
		}
	}
}

// testPriorities: with one worker busy, waiting tasks start by priority,
// highest first.
func testPriorities(t *testing.T, s errand.Store) {
	g := newGated("errandtest.prio")
	q := newSuiteQueue(t, s, errand.Config{Workers: 1})
	blocker := g.block(t, q)
	fs := []*errand.Future[string]{
		enqueue(t, g.kind, q, "low", errand.WithPriority(1)),
		enqueue(t, g.kind, q, "high", errand.WithPriority(10)),
		enqueue(t, g.kind, q, "default"),
		enqueue(t, g.kind, q, "mid", errand.WithPriority(5)),
	}
	close(g.open)
	awaitOK(t, blocker)
	for _, f := range fs {
		awaitOK(t, f)
	}
	if got, want := g.order(), []string{"blocker", "high", "mid", "low", "default"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ran in the order %q, want %q", got, want)
	}
}

// testDelays: WithDelay and WithRunAt tasks do not start before their time.
func testDelays(t *testing.T, s errand.Store) {
	k := errand.Define("errandtest.when", func(context.Context, int) (time.Time, error) { return time.Now(), nil })
	q := newSuiteQueue(t, s, errand.Config{})
	before := time.Now()
	delayed := enqueue(t, k, q, 1, errand.WithDelay(suiteDelay))
	at := enqueue(t, k, q, 2, errand.WithRunAt(before.Add(suiteDelay)))
	now := enqueue(t, k, q, 3)
	for name, f := range map[string]*errand.Future[time.Time]{"WithDelay": delayed, "WithRunAt": at} {
		if ran := awaitOK(t, f); ran.Sub(before) < suiteDelay {
			t.Errorf("%s(%v) task ran %v after Enqueue", name, suiteDelay, ran.Sub(before))
		}
	}
	if ran := awaitOK(t, now); ran.Before(before) {
		t.Fatalf("undelayed task ran at %v, before it was enqueued at %v", ran, before)
	}
}

// testKeySingleflight: while a task with a key waits, enqueueing the key
// again returns that task; once it has finished the key is free.
func testKeySingleflight(t *testing.T, s errand.Store) {
	g := newGated("errandtest.key")
	q := newSuiteQueue(t, s, errand.Config{Workers: 1})
	blocker := g.block(t, q)
	first := enqueue(t, g.kind, q, "first", errand.WithKey("errandtest-key"))
	second := enqueue(t, g.kind, q, "second", errand.WithKey("errandtest-key"))
	other := enqueue(t, g.kind, q, "other", errand.WithKey("errandtest-other"))
	if first.ID() != second.ID() {
		t.Fatalf("the same key while waiting gave tasks %s and %s, want one", first.ID(), second.ID())
	}
	if other.ID() == first.ID() {
		t.Fatal("another key gave the same task")
	}
	close(g.open)
	awaitOK(t, blocker)
	for _, f := range []*errand.Future[string]{first, second} {
		if got := awaitOK(t, f); got != "ran first" {
			t.Fatalf("keyed future = %q, want the first task's result", got)
		}
	}
	awaitOK(t, other)
	again := enqueue(t, g.kind, q, "again", errand.WithKey("errandtest-key"))
	if again.ID() == first.ID() {
		t.Fatal("the key was still held after its task finished")
	}
	if got := awaitOK(t, again); got != "ran again" {
		t.Fatalf("task after the key was freed = %q", got)
	}
	if got, want := g.order(), []string{"blocker", "first", "other", "again"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ran %q, want %q", got, want)
	}
}

// testTimeout: WithTimeout ends the handler's context with
// DeadlineExceeded, and the task fails.
func testTimeout(t *testing.T, s errand.Store) {
	seen := make(chan error, 1)
	k := errand.Define("errandtest.slow", func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		seen <- ctx.Err()
		return 0, ctx.Err()
	})
	q := newSuiteQueue(t, s, errand.Config{})
	start := time.Now()
	f := enqueue(t, k, q, 1, errand.WithTimeout(100*time.Millisecond))
	if err := recv(t, seen, "end of the handler's context"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("handler's context ended with %v, want DeadlineExceeded", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("timed out after %v, before the 100ms timeout", took)
	}
	_, err := awaitDone(t, f)
	if err == nil || !strings.Contains(err.Error(), context.DeadlineExceeded.Error()) || f.Status() != errand.Failed {
		t.Fatalf("timed-out task: %v, status %v; want failed with the deadline error", err, f.Status())
	}
}

// testCancel: Future.Cancel of a waiting task resolves it with ErrCanceled
// and it never runs; of a running task, it cancels the handler's context.
func testCancel(t *testing.T, s errand.Store) {
	g := newGated("errandtest.cancel")
	q := newSuiteQueue(t, s, errand.Config{Workers: 1})
	blocker := g.block(t, q)
	waiting := enqueue(t, g.kind, q, "waiting")
	delayed := enqueue(t, g.kind, q, "delayed", errand.WithDelay(time.Hour))
	for _, f := range []*errand.Future[string]{waiting, delayed} {
		if !f.Cancel() {
			t.Fatalf("Cancel of waiting task %s = false", f.ID())
		}
		if _, err := awaitDone(t, f); !errors.Is(err, errand.ErrCanceled) || f.Status() != errand.Canceled {
			t.Fatalf("canceled task: %v, status %v; want ErrCanceled", err, f.Status())
		}
		if f.Cancel() {
			t.Fatal("a second Cancel reported true")
		}
		if s != nil {
			if rec := lookup(t, q, f.ID()); rec.Status != errand.Canceled || rec.Attempts != 0 {
				t.Fatalf("stored canceled task: status %v, %d attempts", rec.Status, rec.Attempts)
			}
		}
	}
	// The running blocker: its context is canceled.
	if !blocker.Cancel() {
		t.Fatal("Cancel of the running task = false")
	}
	if _, err := awaitDone(t, blocker); !errors.Is(err, errand.ErrCanceled) || blocker.Status() != errand.Canceled {
		t.Fatalf("canceled running task: %v, status %v; want ErrCanceled", err, blocker.Status())
	}
	// The worker is free: a task enqueued now runs, and the canceled
	// waiting task never did.
	awaitOK(t, enqueue(t, g.kind, q, "after"))
	if got, want := g.order(), []string{"after"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ran %q, want %q", got, want)
	}
}

// testFutureReattach: Kind.Future finds a task by id (with a Store, from
// another queue on the store too, and after it finished); an unknown id is
// ErrNotFound and another kind's id an error.
func testFutureReattach(t *testing.T, s errand.Store) {
	g := newGated("errandtest.attach")
	other := errand.Define("errandtest.attach-other", func(context.Context, string) (string, error) { return "", nil })
	q := newSuiteQueue(t, s, errand.Config{Workers: 1})
	blocker := g.block(t, q)
	f := enqueue(t, g.kind, q, "target")
	again, err := g.kind.Future(q, f.ID())
	if err != nil || again.ID() != f.ID() {
		t.Fatalf("Future(%s) = %v, %v", f.ID(), again, err)
	}
	if _, err := g.kind.Future(q, uuid.NewString()); !errors.Is(err, errand.ErrNotFound) {
		t.Fatalf("Future(unknown id) error = %v, want ErrNotFound", err)
	}
	if _, err := other.Future(q, f.ID()); err == nil {
		t.Fatal("Future of another kind's task: no error")
	}
	var elsewhere *errand.Future[string]
	var q2 *errand.Queue
	if s != nil {
		// Another process sharing the store, running nothing itself.
		q2 = newSuiteQueue(t, s, errand.Config{OnlyKinds: true})
		if elsewhere, err = g.kind.Future(q2, f.ID()); err != nil || elsewhere.ID() != f.ID() {
			t.Fatalf("Future(%s) from a second queue = %v, %v", f.ID(), elsewhere, err)
		}
		if st := elsewhere.Status(); st != errand.Queued {
			t.Fatalf("re-attached future of a waiting task: status %v, want queued", st)
		}
	}
	close(g.open)
	awaitOK(t, blocker)
	for _, h := range []*errand.Future[string]{f, again, elsewhere} {
		if h == nil {
			continue
		}
		if got := awaitOK(t, h); got != "ran target" || h.Attempts() != 1 {
			t.Fatalf("future %s = %q after %d attempts, want %q after 1", h.ID(), got, h.Attempts(), "ran target")
		}
	}
	if s == nil {
		if _, err := g.kind.Future(q, f.ID()); !errors.Is(err, errand.ErrNotFound) {
			t.Fatalf("in memory, Future of a finished task: %v, want ErrNotFound", err)
		}
		return
	}
	// A finished stored task re-attaches already resolved, from either queue.
	for _, qq := range []*errand.Queue{q, q2} {
		late, err := g.kind.Future(qq, f.ID())
		if err != nil {
			t.Fatalf("Future of a finished stored task: %v", err)
		}
		if got, err := late.Result(); err != nil || got != "ran target" || late.Status() != errand.Succeeded || late.Attempts() != 1 {
			t.Fatalf("re-attached finished future: %q, %v, status %v, %d attempts", got, err, late.Status(), late.Attempts())
		}
		select {
		case <-late.Done():
		default:
			t.Fatal("re-attached finished future: Done is not closed")
		}
	}
}

// testNewTask: Kind.NewTask builds the stored form of a task, which a
// Store's own Enqueue (as in a transaction) stores and a queue with the
// kind in Config.Kinds runs.
func testNewTask(t *testing.T, s errand.Store) {
	k := errand.Define("errandtest.newtask", func(_ context.Context, a greetArgs) (string, error) { return "hi " + a.Name, nil },
		errand.WithRetry(errand.RetryPolicy{MaxAttempts: 4}), errand.WithTimeout(time.Minute))
	nt, err := k.NewTask(greetArgs{Name: "bo"}, errand.WithPriority(3), errand.WithKey("nk"), errand.WithDelay(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := uuid.Parse(nt.ID); err != nil || nt.Kind != k.Name() || nt.Priority != 3 || nt.Key != "nk" ||
		nt.Delay != time.Second || nt.MaxAttempts != 4 || nt.Timeout != time.Minute {
		t.Fatalf("NewTask = %+v", nt)
	}
	var a greetArgs
	if err := json.Unmarshal(nt.Args, &a); err != nil || a.Name != "bo" {
		t.Fatalf("NewTask Args %s do not decode: %v", nt.Args, err)
	}
	bad := errand.Define("errandtest.newtask-chan", func(context.Context, chan int) (int, error) { return 0, nil })
	if _, err := bad.NewTask(make(chan int)); err == nil {
		t.Fatal("NewTask(chan): no error")
	}
	if _, err := k.NewTask(greetArgs{}, errand.WithLinkedContext()); err == nil {
		t.Fatal("NewTask(WithLinkedContext): no error")
	}
	if s == nil {
		return
	}
	nt, err = k.NewTask(greetArgs{Name: "cy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, existing, err := s.Enqueue(bg(t), nt); err != nil || existing {
		t.Fatalf("Store.Enqueue(NewTask) = existing %v, %v", existing, err)
	}
	q := newSuiteQueue(t, s, errand.Config{Kinds: []errand.Runner{k}})
	f, err := k.Future(q, nt.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := awaitOK(t, f); got != "hi cy" {
		t.Fatalf("stored NewTask ran to %q", got)
	}
}

// testProducerConsumer: with a Store, a queue with OnlyKinds and no Kinds
// only produces: the task it enqueues runs in the queue whose Kinds has
// the kind, and the producer's future gets the result. Without a Store
// OnlyKinds is ignored and the task runs in the producer.
func testProducerConsumer(t *testing.T, s errand.Store) {
	const name = "errandtest.remote"
	inProducer := errand.Define(name, func(_ context.Context, n int) (int, error) {
		if s == nil {
			return n * 2, nil
		}
		return 0, errand.Permanent(errors.New("errandtest: ran in the producer"))
	})
	producer := newSuiteQueue(t, s, errand.Config{OnlyKinds: true})
	f := enqueue(t, inProducer, producer, 21)
	if s != nil {
		inConsumer := errand.Define(name, func(_ context.Context, n int) (int, error) { return n * 2, nil })
		newSuiteQueue(t, s, errand.Config{Kinds: []errand.Runner{inConsumer}, OnlyKinds: true})
	}
	if got := awaitOK(t, f); got != 42 {
		t.Fatalf("result = %d, want 42", got)
	}
}

// testLookup: Queue.Lookup reports a task's fields while it waits and
// runs; with a Store, also once finished.
func testLookup(t *testing.T, s errand.Store) {
	g := newGated("errandtest.lookup")
	q := newSuiteQueue(t, s, errand.Config{Workers: 1})
	blocker := g.block(t, q)
	f := enqueue(t, g.kind, q, "looked-up", errand.WithPriority(7), errand.WithKey("lk"),
		errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3}))
	rec := lookup(t, q, f.ID())
	if rec.ID != f.ID() || rec.Kind != g.kind.Name() || rec.Status != errand.Queued || rec.Priority != 7 ||
		rec.Attempts != 0 || rec.MaxAttempts != 3 || rec.Key != "lk" {
		t.Fatalf("Lookup of a waiting task = %+v", rec)
	}
	run := lookup(t, q, blocker.ID())
	if run.Status != errand.Running || run.Attempts != 1 || run.MaxAttempts != 1 || run.Kind != g.kind.Name() {
		t.Fatalf("Lookup of a running task = %+v", run)
	}
	if _, err := q.Lookup(bg(t), uuid.NewString()); !errors.Is(err, errand.ErrNotFound) {
		t.Fatalf("Lookup(unknown id) error = %v, want ErrNotFound", err)
	}
	if s != nil {
		if string(rec.Args) != `"looked-up"` || rec.Created.IsZero() || rec.RunAt.IsZero() || !rec.Started.IsZero() {
			t.Fatalf("stored waiting task = %+v", rec)
		}
		if run.Holder == "" || run.Started.IsZero() {
			t.Fatalf("stored running task has no holder or start: %+v", run)
		}
	}
	close(g.open)
	awaitOK(t, blocker)
	awaitOK(t, f)
	if s == nil {
		if _, err := q.Lookup(bg(t), f.ID()); !errors.Is(err, errand.ErrNotFound) {
			t.Fatalf("in memory, Lookup of a finished task: %v, want ErrNotFound", err)
		}
		return
	}
	done := lookup(t, q, f.ID())
	if done.Status != errand.Succeeded || done.Attempts != 1 || string(done.Result) != `"ran looked-up"` ||
		done.Finished.IsZero() || done.Error != "" || done.Key != "lk" || done.Priority != 7 {
		t.Fatalf("Lookup of a finished stored task = %+v", done)
	}
}

type tickArgs struct {
	Label string `json:"label"`
}

// testSchedule: Kind.Schedule runs the kind at each due time with its
// arguments, never two runs at once (a long run makes due times pass,
// which coalesce instead of piling up), until Unschedule.
func testSchedule(t *testing.T, s errand.Store) {
	const every = 100 * time.Millisecond
	var inflight, maxInflight, count atomic.Int32
	var mu sync.Mutex
	var starts []time.Time
	runs := make(chan struct{}, 1000)
	k := errand.Define("errandtest.tick", func(ctx context.Context, a tickArgs) (int, error) {
		if a.Label != "tick" {
			return 0, errand.Permanent(errors.New("errandtest: wrong arguments " + a.Label))
		}
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := maxInflight.Load(); n > m && !maxInflight.CompareAndSwap(m, n); m = maxInflight.Load() {
		}
		mu.Lock()
		starts = append(starts, time.Now())
		mu.Unlock()
		if count.Add(1) == 1 {
			// The first run is slow: due times pass while it runs.
			select {
			case <-time.After(3 * every):
			case <-ctx.Done():
			}
		}
		runs <- struct{}{}
		return 0, nil
	})
	marker := errand.Define("errandtest.tick-marker", func(context.Context, int) (int, error) { return 0, nil })
	q := newSuiteQueue(t, s, errand.Config{Kinds: []errand.Runner{k}})
	if err := k.Schedule(bg(t), q, "errandtest-ticks", errand.Every(every), tickArgs{Label: "tick"}); err != nil {
		t.Fatalf("Schedule: %v", err)
	}
	for i := range 3 {
		recv(t, runs, fmt.Sprintf("scheduled run %d", i+1))
	}
	if err := q.Unschedule(bg(t), "errandtest-ticks"); err != nil {
		t.Fatalf("Unschedule: %v", err)
	}
	after := count.Load()
	// A marker due after several more intervals: by the time it has run the
	// schedule would have fired again had it not been removed.
	awaitOK(t, enqueue(t, marker, q, 0, errand.WithDelay(4*every)))
	if n := count.Load(); n > after+1 {
		t.Fatalf("%d runs after Unschedule, want at most the one already fired", n-after)
	}
	if m := maxInflight.Load(); m != 1 {
		t.Fatalf("%d runs of the schedule overlapped", m)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < every/2 {
			t.Fatalf("run %d started %v after run %d: missed due times did not coalesce", i+1, gap, i)
		}
	}
}

// signal is a slog.Handler that closes ch on the first record with
// message msg: a test's hook on the queue's own progress.
type signal struct {
	msg  string
	ch   chan struct{}
	once *sync.Once
}

func newSignal(msg string) signal {
	return signal{msg: msg, ch: make(chan struct{}), once: new(sync.Once)}
}

func (h signal) Enabled(context.Context, slog.Level) bool { return true }
func (h signal) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h signal) WithGroup(string) slog.Handler            { return h }
func (h signal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}

// testShutdownWaits: Shutdown lets a running task finish (its context is
// not canceled) and returns once it has; its future reports its result.
func testShutdownWaits(t *testing.T, s errand.Store) {
	var shutDown atomic.Bool
	open := make(chan struct{})
	started := make(chan struct{}, 1)
	type seen struct {
		ctxErr        error
		afterShutdown bool
	}
	report := make(chan seen, 1)
	k := errand.Define("errandtest.drain", func(ctx context.Context, _ int) (string, error) {
		started <- struct{}{}
		select {
		case <-open:
		case <-ctx.Done():
		}
		report <- seen{ctx.Err(), shutDown.Load()}
		return "drained", nil
	})
	sig := newSignal("errand: shutting down")
	q := newSuiteQueue(t, s, errand.Config{Logger: slog.New(sig)})
	f := enqueue(t, k, q, 1)
	recv(t, started, "start of the task")
	errc := make(chan error, 1)
	go func() {
		err := q.Shutdown(bg(t))
		shutDown.Store(true)
		errc <- err
	}()
	recv(t, sig.ch, "Shutdown")
	if _, err := k.Enqueue(bg(t), q, 2); !errors.Is(err, errand.ErrClosed) {
		t.Fatalf("Enqueue during Shutdown: %v, want ErrClosed", err)
	}
	close(open)
	if r := recv(t, report, "end of the task"); r.ctxErr != nil || r.afterShutdown {
		t.Fatalf("running task during Shutdown: context error %v, Shutdown returned before it ended: %v", r.ctxErr, r.afterShutdown)
	}
	if err := recv(t, errc, "return of Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got, err := awaitDone(t, f); err != nil || got != "drained" {
		t.Fatalf("future of the task Shutdown waited for: %q, %v; want its result", got, err)
	}
	if s != nil {
		if rec := lookup(t, q, f.ID()); rec.Status != errand.Succeeded || rec.Attempts != 1 {
			t.Fatalf("stored task after Shutdown: status %v, %d attempts; want succeeded after 1", rec.Status, rec.Attempts)
		}
	}
}

// testCloseResolves: Close cancels the running task's context and resolves
// every future with ErrClosed; with a Store the tasks stay stored, the
// running one handed back without spending its attempt.
func testCloseResolves(t *testing.T, s errand.Store) {
	g := newGated("errandtest.close")
	q := newSuiteQueue(t, s, errand.Config{Workers: 1})
	blocker := g.block(t, q)
	queued := enqueue(t, g.kind, q, "queued")
	delayed := enqueue(t, g.kind, q, "delayed", errand.WithDelay(time.Hour))
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, f := range []*errand.Future[string]{blocker, queued, delayed} {
		select {
		case <-f.Done():
		default:
			t.Fatalf("future %s unresolved after Close (status %v)", f.ID(), f.Status())
		}
		if _, err := f.Result(); !errors.Is(err, errand.ErrClosed) {
			t.Fatalf("future %s after Close: %v, want ErrClosed", f.ID(), err)
		}
	}
	if _, err := g.kind.Enqueue(bg(t), q, "late"); !errors.Is(err, errand.ErrClosed) {
		t.Fatalf("Enqueue after Close: %v, want ErrClosed", err)
	}
	if got := g.order(); len(got) != 0 {
		t.Fatalf("tasks ran to completion despite Close: %q", got)
	}
	if s == nil {
		return
	}
	for f, want := range map[*errand.Future[string]]errand.Status{blocker: errand.Queued, queued: errand.Queued, delayed: errand.Scheduled} {
		if rec := lookup(t, q, f.ID()); rec.Status != want || rec.Attempts != 0 {
			t.Fatalf("stored task after Close: status %v, %d attempts; want %v, 0", rec.Status, rec.Attempts, want)
		}
	}
}
