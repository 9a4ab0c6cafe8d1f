package errand

import (
	"context"
	"sync"
	"time"
)

// attemptCtx is the context one attempt of a task runs with. It carries the
// submitting context's values but not its cancellation; it is canceled by
// Future.Cancel, a linked context, the queue closing, the attempt's timeout,
// or the attempt returning. It is one small allocation with no goroutine:
// it implements AfterFunc so that contexts derived from it with the context
// package register a callback instead of starting a goroutine each.
//
// A task's first attempt without a deadline needs no attemptCtx: the task
// itself is that attempt's context (see task.Done below), so the common
// attempt costs no allocation. Only if its code asks for Done or AfterFunc
// does the task get an attemptCtx (first set) to hold them.
type attemptCtx struct {
	t        *task           // the attempt's task; Queue.baseTask for the plain tasks' shared context
	values   context.Context // never canceled: see valuesOnly
	deadline int64           // queue clock; 0: none
	timer    *time.Timer     // fires the deadline
	first    bool            // holds Done and AfterFunc for a first attempt that runs on its task

	mu     sync.Mutex
	done   chan struct{} // made on first use
	err    error
	afters *[]*afterFunc // made on first AfterFunc
}

type afterFunc struct{ f func() }

// queueKey is the context key under which an attempt's context reports its
// Queue, so that a task's own submissions can be recognized.
type queueKey struct{}

// taskKey is the context key under which an attempt's context reports its
// task (TaskFromContext).
type taskKey struct{}

// TaskFromContext describes the task whose attempt ctx belongs to (or
// descends from): its id, name and attempt number, e.g. to make an
// idempotency key for an external call. It reports false outside a task,
// and for a plain Go task (no options), which has no task struct to
// describe. The TaskInfo's Cancel cancels the task. Safe for concurrent use.
func TaskFromContext(ctx context.Context) (TaskInfo, bool) {
	t, _ := ctx.Value(taskKey{}).(*task)
	if t == nil {
		return TaskInfo{}, false
	}
	t.q.mu.Lock()
	defer t.q.mu.Unlock()
	return t.infoLocked(), true
}

// valuesOnly returns a context with ctx's values and no cancellation or
// deadline. It costs nothing when ctx already cannot be canceled.
func valuesOnly(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		if _, ok := ctx.Deadline(); !ok {
			return ctx
		}
	}
	return context.WithoutCancel(ctx)
}

func (c *attemptCtx) Deadline() (time.Time, bool) {
	if c.deadline == 0 {
		return time.Time{}, false
	}
	return c.t.q.timeAt(c.deadline), true
}

func (c *attemptCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.err != nil {
			close(c.done)
		}
	}
	return c.done
}

func (c *attemptCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *attemptCtx) Value(key any) any {
	switch key.(type) {
	case queueKey:
		return c.t.q
	case taskKey:
		if c.t == &c.t.q.baseTask {
			return nil // a plain task has no task struct to describe
		}
		return c.t
	}
	return c.values.Value(key)
}

func (c *attemptCtx) String() string { return "errand.attemptCtx" }

// AfterFunc arranges for f to run in its own goroutine once c is canceled,
// like context.AfterFunc. The context package calls it for contexts derived
// from c, so deriving costs no goroutine.
func (c *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	if c.afters == nil {
		c.afters = new([]*afterFunc)
	}
	*c.afters = append(*c.afters, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.afters == nil {
			return false
		}
		for i, x := range *c.afters {
			if x == a {
				*c.afters = append((*c.afters)[:i], (*c.afters)[i+1:]...)
				return true
			}
		}
		return false
	}
}

// startTimer arms the attempt's timeout, if any.
func (c *attemptCtx) startTimer(d time.Duration) {
	if d <= 0 {
		return
	}
	c.deadline = max(c.t.q.clock()+int64(d), 1)
	c.mu.Lock() // the timer may fire before the assignment completes
	c.timer = time.AfterFunc(d, func() { c.cancel(context.DeadlineExceeded) })
	c.mu.Unlock()
}

// cancel cancels c with err (context.Canceled or context.DeadlineExceeded)
// unless it is canceled already.
func (c *attemptCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	var afters []*afterFunc
	if c.afters != nil {
		afters, c.afters = *c.afters, nil
	}
	timer := c.timer
	c.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	for _, a := range afters {
		go a.f()
	}
}

// firstOver is the bit of task.flags that cancels the context of a first
// attempt that runs on its task: set when that attempt returns or is
// canceled, and never cleared.
const firstOver = 1 << 8

// The methods below make a task the context of its first attempt when that
// attempt has no deadline. Err reads one atomic word; Done and AfterFunc
// share the attemptCtx made for them on first use (firstLocked), Done
// without Queue.mu once it exists. Safe for concurrent use.

func (t *task) Deadline() (time.Time, bool) { return time.Time{}, false }

func (t *task) Err() error {
	if t.flags.Load()&firstOver != 0 {
		return context.Canceled
	}
	return nil
}

func (t *task) Done() <-chan struct{} {
	if a := t.cur.Load(); a != nil && a.first {
		return a.Done()
	}
	t.q.mu.Lock()
	a := t.firstLocked()
	t.q.mu.Unlock()
	return a.Done()
}

func (t *task) AfterFunc(f func()) (stop func() bool) {
	t.q.mu.Lock()
	a := t.firstLocked()
	t.q.mu.Unlock()
	return a.AfterFunc(f)
}

func (t *task) Value(key any) any {
	switch key.(type) {
	case queueKey:
		return t.q
	case taskKey:
		return t
	}
	return t.parent.Value(key)
}

func (t *task) String() string { return "errand.task" }

// firstLocked returns the attemptCtx that holds Done and AfterFunc for the
// first attempt running on t, making it on first use: canceled already if
// that attempt is over, or else t's running attempt context until it ends.
func (t *task) firstLocked() *attemptCtx {
	l := t.lazyLocked()
	if l.first == nil {
		a := &attemptCtx{t: t, values: t.parent, first: true}
		if t.flags.Load()&firstOver != 0 {
			a.err = context.Canceled
		} else {
			t.cur.Store(a)
		}
		l.first = a
	}
	return l.first
}

// endFirstLocked cancels the context of t's first attempt, which ran (or
// runs) on t itself.
func (t *task) endFirstLocked() {
	if t.flags.Load()&firstOver != 0 {
		return
	}
	t.flags.Or(firstOver)
	if t.lazy != nil && t.lazy.first != nil {
		t.lazy.first.cancel(context.Canceled)
	}
}

// cancelRunLocked cancels the context of t's running attempt.
func (t *task) cancelRunLocked() {
	if a := t.cur.Load(); a != nil && !a.first {
		a.cancel(context.Canceled)
		return
	}
	t.endFirstLocked()
}

// mergedCtx is the context of a plain task whose submitting context carried
// values: the queue's shared context for plain tasks, with those values.
type mergedCtx struct {
	base   *attemptCtx
	values context.Context
}

func (c *mergedCtx) Deadline() (time.Time, bool)           { return c.base.Deadline() }
func (c *mergedCtx) Done() <-chan struct{}                 { return c.base.Done() }
func (c *mergedCtx) Err() error                            { return c.base.Err() }
func (c *mergedCtx) AfterFunc(f func()) (stop func() bool) { return c.base.AfterFunc(f) }
func (c *mergedCtx) String() string                        { return "errand.mergedCtx" }

func (c *mergedCtx) Value(key any) any {
	if _, ok := key.(queueKey); ok {
		return c.base.t.q
	}
	return c.values.Value(key)
}
