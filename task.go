package errand

import (
	"context"
	"runtime"
	"slices"
	"sync/atomic"
	"time"
)

// Status is where a task is in its life. The first four are waiting or
// running states; the last three are final.
type Status int32

const (
	Scheduled Status = iota + 1 // delayed: waiting in the scheduler for its time
	Queued                      // waiting for a worker
	Running                     // an attempt is running
	Retrying                    // an attempt failed; waiting in the scheduler for the next
	Succeeded                   // final: the last attempt returned nil
	Failed                      // final: the last attempt returned an error
	Canceled                    // final: canceled, or dropped because the queue closed
)

var statusNames = [...]string{"", "scheduled", "queued", "running", "retrying", "succeeded", "failed", "canceled"}

// String returns the status in lower case, e.g. "running".
func (s Status) String() string {
	if s > 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Final reports whether s is a final state: Succeeded, Failed or Canceled.
func (s Status) Final() bool { return s >= Succeeded }

// task is one unit of work: 128 bytes. Its mutable fields are guarded by
// Queue.mu unless noted. A Future embeds it, so a future and its task are
// one allocation; a Go task with options is a goTask.
type task struct {
	q      *Queue
	impl   taskImpl        // the typed half: *Future[T] or *goTask
	parent context.Context // the submitter's values; never canceled
	prio   int
	ext    *taskExt                   // options beyond priority; set before submit, then read-only
	lazy   *taskLazy                  // id, callbacks, timestamps: made when first needed
	cur    atomic.Pointer[attemptCtx] // the running attempt's context; nil while the first runs on the task itself (context.go)
	err    error                      // the last attempt's error, then the final error

	status   atomic.Int32 // a Status; written under Queue.mu, read anywhere
	attempts atomic.Int32
	heapIdx  int32         // index in the scheduler's heap, or -1
	flags    atomic.Uint32 // a stopReason (why a running task was canceled), firstOver, doneLock, donePublished
	done     chan struct{} // guarded by doneLock
	next     *task         // the next waiting task in its lane (pending.go)
	seq      uint64        // when it entered its lane
}

// taskLazy holds what few tasks need, allocated on first use under Queue.mu.
type taskLazy struct {
	id     string
	mark   int64 // when it last became Queued, queue clock (events and middleware)
	onDone []*func()
	first  *attemptCtx // the first attempt's Done and AfterFunc, when the task is its context
}

// stopReason says why a running task's context was canceled.
type stopReason uint8

const (
	stopNone     stopReason = iota
	stopCanceled            // Future.Cancel or a linked context
	stopClosed              // Shutdown's deadline or Close
)

// stopping returns why t's running attempt was canceled.
func (t *task) stopping() stopReason { return stopReason(t.flags.Load() & 0xff) }

// setStopping records why t's running attempt is being canceled, under
// Queue.mu. It is set once: from stopNone.
func (t *task) setStopping(r stopReason) { t.flags.Or(uint32(r)) }

// taskExt holds the per-task options most tasks do not use.
type taskExt struct {
	name       string
	key        string
	timeout    time.Duration
	hasTimeout bool
	retry      *RetryPolicy
	unlink     func() bool // stops the linked context's AfterFunc; set under Queue.mu
	schedule   *Recurring  // the schedule this task is a run of
	indexed    bool        // in Queue.named (a named kind's task), guarded by Queue.mu
	stored     bool        // a future of a stored task (Config.Store): it never enters the queue
}

// taskImpl is the typed half of a task, seen from untyped code.
type taskImpl interface {
	call(ctx context.Context) error
}

// goTask is a Go task that needs a task struct: it has options, or events
// are on, or it failed and may be retried.
type goTask struct {
	t  task
	fn func(context.Context) error
}

func (g *goTask) call(ctx context.Context) error { return g.fn(ctx) }

func newGoTask(fn func(context.Context) error) *task {
	g := &goTask{fn: fn}
	g.t.impl = g
	return &g.t
}

// isFuture reports whether someone may hold a handle to the task's result.
func (t *task) isFuture() bool {
	_, ok := t.impl.(*goTask)
	return !ok
}

func (t *task) name() string {
	if t.ext != nil {
		return t.ext.name
	}
	return ""
}

func (t *task) lazyLocked() *taskLazy {
	if t.lazy == nil {
		t.lazy = new(taskLazy)
	}
	return t.lazy
}

// idLocked returns the task's id, making it on first use.
func (t *task) idLocked() string {
	l := t.lazyLocked()
	if l.id == "" {
		l.id = t.q.newID()
	}
	return l.id
}

// ID returns the task's id. It takes Queue.mu.
func (t *task) ID() string {
	t.q.mu.Lock()
	defer t.q.mu.Unlock()
	return t.idLocked()
}

func (t *task) infoLocked() TaskInfo {
	ti := TaskInfo{
		ID:       t.idLocked(),
		Name:     t.name(),
		Priority: t.prio,
		Attempt:  int(t.attempts.Load()),
		t:        t,
	}
	ti.Submitted = t.q.timeAt(t.lazy.mark)
	if t.ext != nil && t.ext.schedule != nil {
		ti.Schedule = t.ext.schedule.id
	}
	return ti
}

// Bits of task.flags that guard task.done without Queue.mu, so that an
// Await that has to wait does not contend with the queue for its lock: only
// doneChan and publishLocked take doneLock, each for a few instructions.
const (
	doneLock      = 1 << 9  // held while task.done is read or written
	donePublished = 1 << 10 // publishLocked has run: a channel made now is made closed
)

// lockDone takes doneLock, spinning: its holders do not block.
func (t *task) lockDone() {
	for {
		old := t.flags.Load()
		if old&doneLock == 0 && t.flags.CompareAndSwap(old, old|doneLock) {
			return
		}
		runtime.Gosched()
	}
}

func (t *task) unlockDone() { t.flags.And(^uint32(doneLock)) }

// doneChan returns a channel closed when the task has reached a final state.
// It does not take Queue.mu.
func (t *task) doneChan() <-chan struct{} {
	t.lockDone()
	defer t.unlockDone()
	if t.done == nil {
		t.done = make(chan struct{})
		if t.flags.Load()&donePublished != 0 {
			close(t.done)
		}
	}
	return t.done
}

// whenDone runs f once the task has reached a final state: at once if it
// has. f runs under Queue.mu, so it must only do something quick and
// non-blocking. The returned function unregisters f if it has not run yet.
func (t *task) whenDone(f func()) (remove func()) {
	q := t.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if Status(t.status.Load()).Final() {
		f()
		return func() {}
	}
	l := t.lazyLocked()
	w := &f
	l.onDone = append(l.onDone, w)
	return func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if i := slices.Index(l.onDone, w); i >= 0 {
			l.onDone = slices.Delete(l.onDone, i, i+1)
		}
	}
}

// publishLocked wakes whoever waits for t, which has just reached a final
// state.
func (t *task) publishLocked() {
	t.lockDone()
	t.flags.Or(donePublished)
	if t.done != nil {
		close(t.done)
	}
	t.unlockDone()
	if t.lazy != nil {
		for _, f := range t.lazy.onDone {
			(*f)()
		}
		t.lazy.onDone = nil
	}
}

// TaskInfo describes a task as middleware and event handlers see it.
type TaskInfo struct {
	ID        string    // the task's UUID, as Future.ID reports it
	Name      string    // from WithName; empty by default
	Priority  int       // from WithPriority
	Attempt   int       // the attempt running or just finished, counting from 1; 0 before the first
	Submitted time.Time // when the task last entered the queue (at submit, or when a delay or retry came due)
	Schedule  string    // for a run of a recurring schedule, the Recurring's ID; empty otherwise

	t *task
}

// Cancel cancels the task this TaskInfo describes, as Future.Cancel does: a
// waiting task never runs, a running one has its context canceled. It
// reports whether it did either. It lets an event consumer (a dashboard, an
// admin endpoint) cancel a task it has only seen in events. On a TaskInfo
// not obtained from an Event or a Middleware it returns false.
func (ti TaskInfo) Cancel() bool {
	if ti.t == nil {
		return false
	}
	return ti.t.q.cancel(ti.t, stopCanceled)
}

// Handler runs one attempt of a task. Middleware wraps it.
type Handler func(ctx context.Context, task TaskInfo) error

// Middleware wraps every attempt of every task, e.g. to add a tracing span,
// a log line or a metric. Config.Middleware composes them once, in New: the
// first is outermost. A middleware must call next exactly once to run the
// attempt, and return its error (or another). A panic in a middleware is
// recovered like a panic in the task.
type Middleware func(next Handler) Handler

// EventKind says which transition an Event reports.
type EventKind uint8

const (
	EventSubmitted EventKind = iota + 1 // accepted; Status is Queued or Scheduled
	EventQueued                         // a delayed or retrying task came due and entered the queue
	EventStarted                        // an attempt started; Wait is how long it waited for a worker
	EventRetrying                       // an attempt failed with Err; the next starts at RetryAt
	EventSucceeded                      // final: the last attempt returned nil
	EventFailed                         // final: Err is the final error (a *PanicError if it panicked)
	EventCanceled                       // final: canceled, or dropped by Shutdown or Close (Err says which)
	EventRejected                       // refused for want of room; no task was accepted (Task.ID is empty)
	EventSkipped                        // a recurring run was skipped: the previous run is still waiting or running
)

var eventNames = [...]string{"", "submitted", "queued", "started", "retrying", "succeeded", "failed", "canceled", "rejected", "skipped"}

// String returns the kind in lower case, e.g. "retrying".
func (k EventKind) String() string {
	if int(k) < len(eventNames) && k > 0 {
		return eventNames[k]
	}
	return "unknown"
}

// Event reports one lifecycle transition of one task to Config.OnEvent.
// Events of one queue are delivered one at a time, in the order the
// transitions happened, by one goroutine the queue owns.
type Event struct {
	Kind     EventKind
	Task     TaskInfo
	Time     time.Time     // when the transition happened
	Err      error         // the attempt's or task's error, for Retrying, Failed, Canceled, Rejected
	Wait     time.Duration // EventStarted: time spent queued
	Ran      bool          // the event ends an attempt that ran: Retrying always; Succeeded, Failed, Canceled unless the task ended while waiting
	Duration time.Duration // when Ran: the attempt's run time
	RetryAt  time.Time     // EventRetrying: when the next attempt is due
	Due      time.Time     // when the task comes due: a delayed task's EventSubmitted, and EventRetrying (= RetryAt)
	Panicked bool          // when Ran: the attempt panicked (Err is or wraps a *PanicError)
}
