package errand

import (
	"fmt"
	"time"
)

// Option configures one task at Submit or Go. Options are applied in order;
// a later one overrides an earlier one of the same kind.
type Option interface{ apply(*taskOptions) }

// taskOptions is what the options of one submission add up to.
type taskOptions struct {
	priority   int
	delay      time.Duration
	runAt      time.Time
	timeout    time.Duration
	hasTimeout bool
	retry      *RetryPolicy
	key        string
	name       string
	linked     bool
	err        error // the first invalid option
}

func (o *taskOptions) fail(format string, args ...any) {
	if o.err == nil {
		o.err = fmt.Errorf("errand: "+format, args...)
	}
}

type optionFunc func(*taskOptions)

func (f optionFunc) apply(o *taskOptions) { f(o) }

type priorityOption int

func (p priorityOption) apply(o *taskOptions) { o.priority = int(p) }

// WithPriority sets the task's priority: under OrderPriority a higher value
// runs first, FIFO among equals. Any int is valid; the default is 0. Under
// OrderFIFO the priority is recorded but does not change the order.
func WithPriority(p int) Option { return priorityOption(p) }

// WithDelay makes the task enter the queue after d. It waits in the
// scheduler's heap, costing no goroutine and no worker; under OrderPriority it
// competes by its priority once due. d must not be negative.
func WithDelay(d time.Duration) Option {
	return optionFunc(func(o *taskOptions) {
		if d < 0 {
			o.fail("WithDelay(%v): negative delay", d)
			return
		}
		o.delay, o.runAt = d, time.Time{}
	})
}

// WithRunAt makes the task enter the queue at t, or at once if t is not in
// the future. t must not be the zero time.
func WithRunAt(t time.Time) Option {
	return optionFunc(func(o *taskOptions) {
		if t.IsZero() {
			o.fail("WithRunAt: zero time")
			return
		}
		o.runAt, o.delay = t, 0
	})
}

// WithTimeout bounds each attempt of the task: its context reports
// context.DeadlineExceeded after d. It overrides Config.Timeout; 0 means no
// timeout. d must not be negative.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(o *taskOptions) {
		if d < 0 {
			o.fail("WithTimeout(%v): negative timeout", d)
			return
		}
		o.timeout, o.hasTimeout = d, true
	})
}

// WithRetry sets the task's retry policy, overriding Config.Retry.
func WithRetry(p RetryPolicy) Option {
	return optionFunc(func(o *taskOptions) {
		if err := p.validate(); err != nil {
			o.fail("WithRetry: %v", trimPrefix(err))
			return
		}
		o.retry = &p
	})
}

// WithKey deduplicates: while a task submitted with the same key is waiting,
// scheduled, retrying or running, Submit returns that task's future instead of
// adding a task (singleflight), and Go adds nothing and returns nil. A key
// reused with another result type makes Submit return ErrKeyConflict. The key
// is free again once its task has finished. The empty key means no key.
func WithKey(key string) Option {
	return optionFunc(func(o *taskOptions) { o.key = key })
}

// WithName gives the task a kind name for logs, events, Stats consumers and
// the dashboard, e.g. "email.send". The default is empty.
func WithName(name string) Option {
	return optionFunc(func(o *taskOptions) { o.name = name })
}

// WithLinkedContext cancels the task when the submitting context ends: a
// waiting task never runs, a running one sees its context canceled. Without
// it, only the submitting context's values reach the task.
func WithLinkedContext() Option {
	return optionFunc(func(o *taskOptions) { o.linked = true })
}

// trimPrefix drops the "errand: " prefix of an error from this package, for
// nesting one message in another.
func trimPrefix(err error) string {
	s := err.Error()
	if len(s) > 8 && s[:8] == "errand: " {
		return s[8:]
	}
	return s
}
