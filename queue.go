package errand

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Order is the order in which waiting tasks reach workers.
type Order int

const (
	// OrderFIFO runs tasks in the order they entered the queue. The default.
	OrderFIFO Order = iota
	// OrderPriority runs the highest WithPriority first, FIFO among equals.
	// It costs a heap operation (O(log n)) per task instead of a ring push.
	OrderPriority
)

// FullPolicy says what Submit and Go do when Config.Capacity tasks are waiting.
type FullPolicy int

const (
	// Block waits until there is room or the submitting context ends, whose
	// error is then returned. The default. A task's own submissions into its
	// queue never block on capacity (they are admitted over the bound), so a
	// task that fans out into its own full queue cannot deadlock it.
	Block FullPolicy = iota
	// Reject returns ErrQueueFull at once.
	Reject
)

// Config configures a Queue. The zero value is valid: GOMAXPROCS workers,
// an unbounded FIFO queue, no timeouts, no retries, no logging.
type Config struct {
	// Workers is the most tasks running at once. Workers start on demand and
	// exit after IdleTimeout. Defaults to runtime.GOMAXPROCS(0).
	Workers int

	// Capacity is the most tasks waiting for a worker (queued, not delayed or
	// backing off). 0, the default, means unbounded. It bounds submissions:
	// delayed tasks, retries and recurring runs that come due enter the queue
	// even when it is full (they were accepted already), and so do a task's
	// own submissions.
	Capacity int

	// Order is OrderFIFO (the default) or OrderPriority.
	Order Order

	// OnFull is what a submission does when Capacity is reached: Block (the
	// default) or Reject.
	OnFull FullPolicy

	// IdleTimeout is how long an idle worker waits for work before it exits.
	// Defaults to 1s.
	IdleTimeout time.Duration

	// Timeout bounds each attempt unless the task sets WithTimeout. 0, the
	// default, means none.
	Timeout time.Duration

	// Retry is the retry policy of tasks without WithRetry. The zero value,
	// the default, means no retries.
	Retry RetryPolicy

	// Logger receives errand's logs, with structured attributes (task id,
	// name, attempt, duration, error): failed and panicked Go tasks and
	// failing schedules at Error; retries and tasks dropped by Close at Warn;
	// Shutdown and Close at Info; every attempt at Debug, if the logger
	// enables Debug when New is called (plain Go tasks then lose their
	// allocation-free path). nil, the default, logs nothing.
	Logger *slog.Logger

	// Middleware wraps every attempt of every task, the first outermost.
	// Defaults to none.
	Middleware []Middleware

	// OnEvent receives every lifecycle transition of every task, in order,
	// on one goroutine the queue owns (so it may call Stats, but should not
	// block: events wait in memory while it runs). nil, the default, turns
	// events off, which saves the time of building them.
	OnEvent func(Event)

	// Store keeps the tasks of named kinds (Define) so that every process
	// sharing it can run them and none is lost when a process dies: see
	// Store, and errandpg for PostgreSQL. nil, the default, keeps them in
	// memory and runs them here, like closures. With a Store, New starts
	// the goroutines that claim, heartbeat, listen and keep house (four; a
	// fifth records outcomes in batches with a BatchCompleter store),
	// and Shutdown and Close hand leases back.
	Store Store

	// Kinds are the named kinds this queue claims from the Store and runs,
	// besides every kind it enqueues or schedules (unless OnlyKinds), so
	// that a program behaves the same with a Store as without. Ignored
	// without a Store. Defaults to none.
	Kinds []Runner

	// OnlyKinds makes a queue with a Store run the kinds in Kinds and no
	// others: a producer-only process (a web tier whose tasks run in
	// worker processes) sets it and leaves Kinds empty. Ignored without a
	// Store. Defaults to false.
	OnlyKinds bool

	// Lease is how long a claimed stored task stays leased to this process
	// without a heartbeat; heartbeats renew it every Lease/3. A process that
	// dies loses its tasks to others this long after its last heartbeat. It
	// is separate from the task's timeout. Ignored without a Store.
	// Defaults to 30s; at least 1s.
	Lease time.Duration

	// PollInterval is how often, with a Store, the queue looks for due work
	// and for finished futures without being told, fires due schedules and
	// recovers expired leases. Notifications (Store.Listen) make pickup
	// faster than this; polling covers work that comes due later and
	// stores that cannot notify. Ignored without a Store. Defaults to 1s.
	PollInterval time.Duration
}

// Defaults of the durable fields of Config.
const (
	defaultLease        = 30 * time.Second
	defaultPollInterval = time.Second
)

// defaultIdleTimeout is Config.IdleTimeout's default.
const defaultIdleTimeout = time.Second

type queueState int

const (
	stateOpen     queueState = iota
	stateDraining            // Shutdown: no intake; queued tasks still run
	stateClosed              // no intake; nothing more runs
)

// Queue is an in-process task queue with a bounded pool of workers. Create
// one with New; it is safe for concurrent use. Its zero value is not usable.
// Shut it down with Shutdown or Close: after that Submit and Go return
// ErrClosed, and every future has resolved.
type Queue struct {
	cfg     Config
	handler Handler          // the composed middleware; nil when there is none
	now     func() time.Time // the clock seam; time.Now (testing/synctest fakes it)
	epoch   time.Time
	// plainFast: plain Go tasks run on base, with no task struct, unless
	// they fail (no timeout, no middleware, no events to give them one).
	plainFast bool
	debug     bool       // Config.Logger enabled Debug at New: log every attempt
	base      attemptCtx // the context of plain tasks; canceled by Close
	baseTask  task       // stands for the plain tasks in base

	mu          sync.Mutex
	state       queueState
	max         int // current worker bound (Resize)
	workers     int // live worker goroutines
	running     int
	idle        []*worker   // parked workers, most recent last
	reaper      *time.Timer // lets idle workers go after IdleTimeout (reap)
	reaperArmed bool
	all         map[*worker]struct{}
	pending     pending
	tombs       int // canceled tasks still in pending
	waiters     []*roomWaiter
	granted     int // room promised to woken waiters that have not yet taken it
	keys        map[string]*task
	recurring   map[*Recurring]struct{}
	named       map[string]*task      // live tasks of named kinds, by id (Kind.Future)
	namedSched  map[string]*Recurring // in-memory schedules of named kinds, by id (Kind.Schedule)
	stats       Stats
	sched       scheduler
	drained     chan struct{} // closed once closing and no worker is left
	wg          sync.WaitGroup

	idMu   sync.Mutex
	idRand *mrand.ChaCha8

	events eventLoop

	dur *durable // with a Config.Store; nil otherwise

	// ring and want: Submit without Queue.mu while the workers are busy
	// (intake.go). ring is nil where a submit needs the lock: with a
	// Capacity to enforce, or events or middleware to stamp its time.
	ring *intakeRing
	want atomic.Bool

	testBeforePark func() // test seam: runs under mu as a worker is about to park
}

// New returns a Queue configured by cfg, or an error that names the first
// invalid field. It starts no goroutine: workers start with the first task.
func New(cfg Config) (*Queue, error) {
	switch {
	case cfg.Workers < 0:
		return nil, fmt.Errorf("errand: Config.Workers is %d, want 0 (default) or more", cfg.Workers)
	case cfg.Capacity < 0:
		return nil, fmt.Errorf("errand: Config.Capacity is %d, want 0 (unbounded) or more", cfg.Capacity)
	case cfg.Order != OrderFIFO && cfg.Order != OrderPriority:
		return nil, fmt.Errorf("errand: Config.Order is %d, want OrderFIFO or OrderPriority", cfg.Order)
	case cfg.OnFull != Block && cfg.OnFull != Reject:
		return nil, fmt.Errorf("errand: Config.OnFull is %d, want Block or Reject", cfg.OnFull)
	case cfg.IdleTimeout < 0:
		return nil, fmt.Errorf("errand: Config.IdleTimeout is %v, want 0 (default) or more", cfg.IdleTimeout)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("errand: Config.Timeout is %v, want 0 (none) or more", cfg.Timeout)
	}
	if err := cfg.Retry.validate(); err != nil {
		return nil, fmt.Errorf("errand: Config.Retry: %s", trimPrefix(err))
	}
	for i, m := range cfg.Middleware {
		if m == nil {
			return nil, fmt.Errorf("errand: Config.Middleware[%d] is nil", i)
		}
	}
	if err := checkDurable(&cfg); err != nil {
		return nil, err
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	cfg.Middleware = append([]Middleware(nil), cfg.Middleware...)
	q := &Queue{
		cfg:     cfg,
		now:     time.Now,
		max:     cfg.Workers,
		all:     make(map[*worker]struct{}),
		drained: make(chan struct{}),
	}
	q.epoch = q.now()
	q.baseTask.q = q
	q.base = attemptCtx{t: &q.baseTask, values: context.Background()}
	q.pending.priority = cfg.Order == OrderPriority
	q.want.Store(true) // no worker yet: the pool may grow
	q.events.q = q
	if len(cfg.Middleware) > 0 {
		var h Handler = func(ctx context.Context, ti TaskInfo) error { return ti.t.impl.call(ctx) }
		for i := len(cfg.Middleware) - 1; i >= 0; i-- {
			h = cfg.Middleware[i](h)
		}
		q.handler = h
	}
	q.debug = cfg.Logger != nil && cfg.Logger.Enabled(context.Background(), slog.LevelDebug)
	q.plainFast = q.handler == nil && cfg.Timeout == 0 && cfg.OnEvent == nil && !q.debug
	if cfg.Capacity == 0 && !q.tracking() {
		q.ring = newIntakeRing()
	}
	if cfg.Store != nil {
		q.dur = newDurable(q)
	}
	return q, nil
}

// Submit adds fn to q and returns a future of its result. ctx bounds only the
// wait for room in the queue (Config.Capacity with Block); its values reach
// the task, its cancellation does not, unless WithLinkedContext is given: work
// submitted from an HTTP handler outlives the request.
//
// It returns ErrClosed after Shutdown or Close, ErrQueueFull (Reject) or
// ctx's error (Block) when the queue is full, and an error for a nil fn or an
// invalid option. With WithKey it may return the future of an earlier task.
// A Submit costs one allocation, the Future and its task (144 bytes for a
// Future[int]; while it waits it is linked into the queue through itself);
// a first attempt without a timeout runs on the task as its context. With no
// options, while every worker is busy, it takes no lock: one
// compare-and-swap on a ring the workers drain (intake.go; not on a queue
// with a Capacity, OnEvent or Middleware). Measured (bench/,
// 2-core AMD EPYC): 0.2-0.4 µs per task to submit a million and await each
// (0.6-1.1x a hand-written pool of result channels, 3.3-5.4x faster than
// pond's ResultPool), 0.8-0.9 µs for a submit-and-await round trip from
// parallel goroutines (BenchmarkAwait; an Await that waits makes a 96-byte
// channel). Safe for concurrent use.
func Submit[T any](ctx context.Context, q *Queue, fn func(context.Context) (T, error), opts ...Option) (*Future[T], error) {
	if err := checkArgs(q, ctx, fn == nil); err != nil {
		return nil, err
	}
	o, err := parseOptions(opts, new(taskOptions))
	if err != nil {
		return nil, err
	}
	f := &Future[T]{fn: fn}
	f.t.impl = f
	if o == nil && q.ring != nil && q.submitIntake(ctx, &f.t) {
		return f, nil
	}
	prev, err := q.submit(ctx, &f.t, o)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		pf, ok := prev.impl.(*Future[T])
		if !ok {
			return nil, fmt.Errorf("%w: key %q", ErrKeyConflict, o.key)
		}
		return pf, nil
	}
	return f, nil
}

// Go adds fn to q to run and be forgotten: no future. An error it returns, or
// a panic, is logged through Config.Logger and counted in Stats. ctx is as for
// Submit. With WithKey, Go adds nothing and returns nil while a task with that
// key is waiting or running.
//
// A plain task (no options but WithPriority, WithDelay and WithRunAt, and no
// Config.OnEvent, Config.Middleware or Config.Timeout) costs no allocation:
// it waits as 32 bytes in the queue, or as a 48-byte entry of the timer heap
// while delayed, and runs on a context shared by the queue's plain tasks,
// canceled by Close, that carries the submitting context's values (a context
// with values costs a 24-byte allocation when it runs, and one at Go if it can
// be canceled). Only if it fails does it get a task struct, for its retries
// and its log line. Measured (bench/, 2-core AMD EPYC): about 100-140 ns per
// task through 4 workers, 110-170 ns through 64 (1.2-1.4x a bare channel
// pool in most runs, up to 2x in some; 3x faster than pond, ants and
// workerpool), with no allocation; a delayed one takes about 130-220 ns and
// 50 bytes to add. Safe for concurrent use.
func (q *Queue) Go(ctx context.Context, fn func(context.Context) error, opts ...Option) error {
	if err := checkArgs(q, ctx, fn == nil); err != nil {
		return err
	}
	if q.cfg.OnEvent == nil {
		if len(opts) == 0 {
			return q.goPlain(ctx, fn, 0, 0, false)
		}
		if o, plain := plainOptions(opts); plain {
			at, delayed := q.dueAt(&o)
			return q.goPlain(ctx, fn, o.priority, at, delayed)
		}
	}
	var to taskOptions
	o, err := parseOptions(opts, &to)
	if err != nil {
		return err
	}
	_, err = q.submit(ctx, newGoTask(fn), o)
	return err
}

// goPlain submits a plain task: no task struct, just fn and the submitter's
// values, in the queue or (delayed) in the timer heap.
func (q *Queue) goPlain(ctx context.Context, fn func(context.Context) error, prio int, at int64, delayed bool) error {
	values := q.valuesOf(ctx)
	q.lockYielding()
	if q.state != stateOpen {
		q.mu.Unlock()
		return ErrClosed
	}
	if delayed {
		q.stats.Submitted++
		q.sched.pushEntryLocked(q, timerEntry{at: at, fn: fn, v: values, prio: prio})
		q.mu.Unlock()
		return nil
	}
	if err := q.waitRoomLocked(ctx, nil); err != nil {
		q.mu.Unlock()
		return err
	}
	q.stats.Submitted++
	q.dispatchLocked(item{fn: fn, v: values}, prio)
	deep := q.pending.len() >= yieldDepth
	q.mu.Unlock()
	if deep {
		runtime.Gosched()
	}
	return nil
}

// yieldDepth is how many tasks waiting make a plain Go yield its P
// (runtime.Gosched) once it has added its task. It never blocks and changes
// no order: it lets the workers run. A producer that outruns the workers on
// every CPU would otherwise grow the queue by the million, each slot cold in
// memory (and freshly faulted in) by the time a worker reads it, where a
// queue this deep stays in the caches and in the ring's spare segments. A
// queue that seldom holds this many tasks never yields. Submit does not
// yield: while every worker is busy it takes no lock at all (intake.go), and
// yielding there measured slower.
const yieldDepth = 1024

// plainOptions reports whether opts hold nothing but what a plain task can
// carry (valid priorities, delays and run times), and what they add up to.
func plainOptions(opts []Option) (o taskOptions, plain bool) {
	for _, opt := range opts {
		switch {
		case opt.kind == optPriority,
			opt.kind == optDelay && opt.n >= 0,
			opt.kind == optRunAt && !opt.t.IsZero():
		default:
			return o, false
		}
	}
	return o, o.parse(opts) == nil
}

// dueAt returns when a task with options o comes due on the queue clock,
// and whether that is in the future.
func (q *Queue) dueAt(o *taskOptions) (int64, bool) {
	switch {
	case o.delay > 0:
		return q.clock() + int64(o.delay), true
	case !o.runAt.IsZero():
		at := int64(o.runAt.Sub(q.epoch))
		return at, at > q.clock()
	}
	return 0, false
}

var errNilQueue = errors.New("errand: nil *Queue")

func checkArgs(q *Queue, ctx context.Context, nilFn bool) error {
	switch {
	case q == nil:
		return errNilQueue
	case ctx == nil:
		return errors.New("errand: nil context.Context")
	case nilFn:
		return errors.New("errand: nil task function")
	}
	return nil
}

// parseOptions returns what opts add up to, nil for none.
func parseOptions(opts []Option, o *taskOptions) (*taskOptions, error) {
	if len(opts) == 0 {
		return nil, nil
	}
	return o, o.parse(opts)
}

// submit accepts t, set up with its function, under the options o (nil for
// none). If o has a key in use by a live task it returns that task instead.
func (q *Queue) submit(ctx context.Context, t *task, o *taskOptions) (*task, error) {
	t.q = q
	t.heapIdx = -1
	t.parent = valuesOnly(ctx)
	var at int64
	delayed := false
	if o != nil {
		t.prio = o.priority
		if o.name != "" || o.key != "" || o.hasTimeout || o.retry != nil || o.linked {
			t.ext = &taskExt{name: o.name, key: o.key, timeout: o.timeout, hasTimeout: o.hasTimeout, retry: o.retry}
		}
		at, delayed = q.dueAt(o)
	}

	q.mu.Lock()
	if q.state != stateOpen {
		q.mu.Unlock()
		return nil, ErrClosed
	}
	if !delayed {
		if err := q.waitRoomLocked(ctx, o); err != nil {
			q.mu.Unlock()
			return nil, err
		}
	}
	if o != nil && o.key != "" {
		if prev := q.keys[o.key]; prev != nil {
			q.mu.Unlock()
			return prev, nil
		}
		if q.keys == nil {
			q.keys = make(map[string]*task)
		}
		q.keys[o.key] = t
	}
	q.stats.Submitted++
	if q.tracking() {
		t.lazyLocked().mark = q.clock()
	}
	if delayed {
		t.status.Store(int32(Scheduled))
		q.emitLocked(Event{Kind: EventSubmitted, Due: q.timeAt(at)}, t)
		q.sched.pushLocked(q, t, at)
	} else {
		t.status.Store(int32(Queued))
		q.emitLocked(Event{Kind: EventSubmitted}, t)
		q.dispatchLocked(taskItem(t), t.prio)
	}
	q.mu.Unlock()

	if o != nil && o.linked {
		stop := context.AfterFunc(ctx, func() { q.cancel(t, stopCanceled) })
		q.mu.Lock()
		if Status(t.status.Load()).Final() {
			q.mu.Unlock()
			stop()
		} else {
			t.ext.unlink = stop
			q.mu.Unlock()
		}
	}
	return nil, nil
}

// tracking reports whether tasks need timestamps and ids for events or
// middleware.
func (q *Queue) tracking() bool { return q.cfg.OnEvent != nil || q.handler != nil }

// clock reads the queue's monotonic clock, in nanoseconds since New.
func (q *Queue) clock() int64 { return int64(q.now().Sub(q.epoch)) }

// timeAt converts a queue-clock reading to a time.Time.
func (q *Queue) timeAt(ns int64) time.Time { return q.epoch.Add(time.Duration(ns)) }

// newID returns a random (version 4) UUID from a ChaCha8 generator that the
// queue seeds from crypto/rand on first use: ~40ns instead of a read of
// crypto/rand per id, with the same 122 unpredictable bits.
func (q *Queue) newID() string {
	var id uuid.UUID
	q.idMu.Lock()
	if q.idRand == nil {
		var seed [32]byte
		_, _ = rand.Read(seed[:]) // never fails (crypto/rand)
		q.idRand = mrand.NewChaCha8(seed)
	}
	_, _ = q.idRand.Read(id[:]) // never fails
	q.idMu.Unlock()
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id.String()
}

// roomWaiter is a submission blocked on Capacity. wakeWaiterLocked grants it
// a place (counted in Queue.granted until it takes it) and closes ch;
// beginCloseLocked closes ch without a grant.
type roomWaiter struct {
	ch      chan struct{}
	granted bool
}

// liveQueuedLocked is the number of tasks waiting for a worker, those in the
// intake's ring included (it drains the ring into pending to count them).
func (q *Queue) liveQueuedLocked() int {
	q.drainIntakeLocked()
	return q.pending.len() - q.tombs
}

// hasRoomLocked reports whether one more task may wait for a worker.
func (q *Queue) hasRoomLocked() bool {
	return q.liveQueuedLocked()+q.granted < q.cfg.Capacity
}

// waitRoomLocked returns once the queue has room for one more waiting task,
// or with ErrQueueFull, ErrClosed or ctx's error. Blocked submissions are
// admitted in the order they arrived. It may release q.mu while it waits; it
// returns with q.mu held.
func (q *Queue) waitRoomLocked(ctx context.Context, o *taskOptions) error {
	if q.cfg.Capacity == 0 || (len(q.waiters) == 0 && q.hasRoomLocked()) {
		return nil
	}
	if ctx.Value(queueKey{}) == q {
		return nil // a task's own submission: never blocks, never rejected for room
	}
	if q.cfg.OnFull == Reject {
		q.rejectLocked(o, ErrQueueFull)
		return ErrQueueFull
	}
	w := &roomWaiter{ch: make(chan struct{})}
	q.waiters = append(q.waiters, w)
	q.mu.Unlock()
	select {
	case <-w.ch:
		q.mu.Lock()
		if w.granted {
			q.granted-- // the place is ours; the caller fills it under this lock
		}
		if q.state != stateOpen {
			q.wakeWaiterLocked()
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		q.mu.Lock()
		if w.granted {
			q.granted-- // give the place back, to the next in line
			q.wakeWaiterLocked()
		} else if i := slices.Index(q.waiters, w); i >= 0 {
			q.waiters = slices.Delete(q.waiters, i, i+1)
		}
		if q.state != stateOpen {
			return ErrClosed
		}
		q.rejectLocked(o, ctx.Err())
		return ctx.Err()
	}
}

// wakeWaiterLocked grants room to blocked submissions, first come first
// served, while there is room. Call it whenever a waiting place frees up.
func (q *Queue) wakeWaiterLocked() {
	for len(q.waiters) > 0 && q.hasRoomLocked() {
		w := q.waiters[0]
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
		w.granted = true
		q.granted++
		close(w.ch)
	}
}

func (q *Queue) rejectLocked(o *taskOptions, err error) {
	q.stats.Rejected++
	if q.cfg.OnEvent != nil {
		e := Event{Kind: EventRejected, Err: err, Time: q.now()}
		if o != nil {
			e.Task.Name, e.Task.Priority = o.name, o.priority
		}
		q.events.push(e)
	}
}

// cancel cancels t: a waiting task is settled at once and never runs; a
// running one has its context canceled.
func (q *Queue) cancel(t *task, reason stopReason) bool {
	if t.ext != nil && t.ext.stored {
		return q.cancelStored(t)
	}
	q.mu.Lock()
	switch Status(t.status.Load()) {
	case Scheduled, Retrying:
		q.sched.removeLocked(t)
		q.finishLocked(t, Canceled, canceledError(t.err), nil)
	case Queued:
		q.tombs++
		q.finishLocked(t, Canceled, ErrCanceled, nil)
		q.wakeWaiterLocked()
	case Running:
		if t.stopping() != stopNone {
			q.mu.Unlock()
			return false
		}
		t.setStopping(reason)
		t.cancelRunLocked()
		q.mu.Unlock()
		return true
	default:
		q.mu.Unlock()
		return false
	}
	q.mu.Unlock()
	q.settle(t)
	return true
}

// attemptEnd describes the attempt whose end finishes or retries a task.
type attemptEnd struct {
	took     time.Duration
	panicked bool
}

// finishLocked records t's final state and counts it. ran is the attempt
// that ended it, nil if it ended while waiting. The caller calls q.settle(t)
// after releasing q.mu.
func (q *Queue) finishLocked(t *task, st Status, err error, ran *attemptEnd) {
	t.err = err
	t.status.Store(int32(st))
	kind := EventSucceeded
	switch st {
	case Succeeded:
		q.stats.Succeeded++
	case Failed:
		q.stats.Failed++
		kind = EventFailed
	case Canceled:
		q.stats.Canceled++
		kind = EventCanceled
	}
	if t.ext != nil {
		if t.ext.key != "" && q.keys[t.ext.key] == t {
			delete(q.keys, t.ext.key)
		}
		if t.ext.indexed {
			delete(q.named, t.lazy.id)
		}
	}
	if q.cfg.OnEvent != nil {
		e := Event{Kind: kind, Err: err}
		if ran != nil {
			e.Ran, e.Duration, e.Panicked = true, ran.took, ran.panicked
		}
		q.emitLocked(e, t)
	}
	t.publishLocked()
}

// settle finishes what finishLocked began, without q.mu: it releases a
// linked context and logs a failed Go task.
func (q *Queue) settle(t *task) {
	if t.ext != nil && t.ext.unlink != nil {
		t.ext.unlink()
	}
	if Status(t.status.Load()) == Failed && !t.isFuture() {
		q.logTaskError(t)
	}
}

func (q *Queue) logTaskError(t *task) {
	l := q.cfg.Logger
	if l == nil {
		return
	}
	attrs := []any{slog.String("task", t.ID()), slog.Int("attempts", int(t.attempts.Load())), slog.Any("error", t.err)}
	if n := t.name(); n != "" {
		attrs = append(attrs, slog.String("name", n))
	}
	var pe *PanicError
	if errors.As(t.err, &pe) {
		attrs = append(attrs, slog.String("stack", string(pe.Stack)))
		l.Error("errand: task panicked", attrs...)
		return
	}
	l.Error("errand: task failed", attrs...)
}

// Stats is a snapshot of a queue's counts. The gauges (Workers to Scheduled)
// are the state at the moment of the call; the counters only grow. Once the
// queue is closed, Submitted = Succeeded + Failed + Canceled.
type Stats struct {
	Workers   int // live worker goroutines
	Idle      int // workers waiting for a task
	Queued    int // tasks waiting for a worker
	Running   int // tasks running
	Scheduled int // tasks waiting in the scheduler: delayed, or backing off before a retry

	Submitted uint64 // tasks accepted
	Succeeded uint64 // tasks whose last attempt returned nil
	Failed    uint64 // tasks whose last attempt returned an error
	Canceled  uint64 // tasks canceled, or dropped by Shutdown or Close
	Rejected  uint64 // submissions refused for want of room (never accepted, not in Submitted)
	Retried   uint64 // attempts that failed and were scheduled again
	Panicked  uint64 // attempts that panicked
	Skipped   uint64 // recurring runs skipped because the previous run was still waiting or running
}

// Stats returns the queue's counts. It is exact: every number is read at one
// instant under the queue's lock. Safe for concurrent use, also from OnEvent.
func (q *Queue) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.drainIntakeLocked() // counts the ring's tasks as submitted
	s := q.stats
	s.Workers, s.Idle, s.Running = q.workers, len(q.idle), q.running
	s.Queued, s.Scheduled = q.liveQueuedLocked(), q.sched.len()-len(q.recurring)
	return s
}

// valuesOf returns what a plain task keeps of its submitting context: nil for
// context.Background and context.TODO, which carry nothing, or else a context
// with ctx's values and no cancellation.
func (q *Queue) valuesOf(ctx context.Context) context.Context {
	// Interfaces of different dynamic types compare unequal without looking
	// at the values, so this cannot panic on an incomparable context type.
	if ctx == context.Background() || ctx == context.TODO() {
		return nil
	}
	return valuesOnly(ctx)
}
