package errand

import (
	"context"
	"slices"
	"sync"
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

func (s Status) String() string {
	if s > 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// Final reports whether s is a final state: Succeeded, Failed or Canceled.
func (s Status) Final() bool { return s >= Succeeded }

// task is one unit of work. Its mutable fields are guarded by Queue.mu unless
// noted; a Future embeds it.
type task struct {
	q      *Queue
	fn     func(context.Context) error // set for Go tasks
	fut    futureImpl                  // set for futures
	parent context.Context             // the submitter's values; never canceled
	prio   int
	ext    *taskExt // nil unless the task has options beyond priority

	status   atomic.Int32 // a Status; written under Queue.mu
	attempts atomic.Int32

	cur      *attemptCtx // the running attempt
	stopping error       // why a running task was canceled: ErrCanceled or ErrClosed
	err      error       // the last attempt's error, then the final error
	at       int64       // when due, for the scheduler, in queue-clock nanoseconds
	mark     int64       // when it last became Queued, in queue-clock nanoseconds (events only)
	heapIdx  int32       // index in the scheduler's heap, or -1

	mu      sync.Mutex // guards the fields below
	id      string
	done    chan struct{}
	onDone  []*func()
	settled bool
}

// taskExt holds the per-task options most tasks do not use.
type taskExt struct {
	name       string
	key        string
	timeout    time.Duration
	hasTimeout bool
	retry      *RetryPolicy
	schedule   *Recurring // the schedule this task is a run of
	unlink     func() bool
}

// futureImpl is the typed half of a Future[T], seen from untyped code.
type futureImpl interface {
	call(ctx context.Context) error
}

func (t *task) call(ctx context.Context) error {
	if t.fut != nil {
		return t.fut.call(ctx)
	}
	return t.fn(ctx)
}

func (t *task) name() string {
	if t.ext != nil {
		return t.ext.name
	}
	return ""
}

func (t *task) ID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.id == "" {
		t.id = t.q.newID()
	}
	return t.id
}

func (t *task) info() TaskInfo {
	schedule := ""
	if t.ext != nil && t.ext.schedule != nil {
		schedule = t.ext.schedule.id
	}
	return TaskInfo{
		Schedule:  schedule,
		ID:        t.ID(),
		Name:      t.name(),
		Priority:  t.prio,
		Attempt:   int(t.attempts.Load()),
		Submitted: t.q.timeAt(t.mark),
		t:         t,
	}
}

// doneChan returns a channel closed when the task has settled.
func (t *task) doneChan() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.done == nil {
		t.done = make(chan struct{})
		if t.settled {
			close(t.done)
		}
	}
	return t.done
}

// whenDone runs f once the task has settled: at once if it has. The
// returned function unregisters f if it has not run yet.
func (t *task) whenDone(f func()) (remove func()) {
	t.mu.Lock()
	if t.settled {
		t.mu.Unlock()
		f()
		return func() {}
	}
	w := &f
	t.onDone = append(t.onDone, w)
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if i := slices.Index(t.onDone, w); i >= 0 {
			t.onDone = slices.Delete(t.onDone, i, i+1)
		}
	}
}

// settle publishes the final state that Queue.finishLocked recorded: it wakes
// awaiters and releases a linked context. Called once, without Queue.mu.
func (t *task) settle() {
	t.mu.Lock()
	t.settled = true
	if t.done != nil {
		close(t.done)
	}
	fs := t.onDone
	t.onDone = nil
	t.mu.Unlock()
	for _, f := range fs {
		(*f)()
	}
	if t.ext != nil && t.ext.unlink != nil {
		t.ext.unlink()
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
	Duration time.Duration // EventRetrying, EventSucceeded, EventFailed, EventCanceled: the last attempt's run time, if it ran
	RetryAt  time.Time     // EventRetrying: when the next attempt is due
	Panicked bool          // the attempt panicked (Err is a *PanicError)
}
