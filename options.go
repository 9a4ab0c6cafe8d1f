package errand

import (
	"errors"
	"fmt"
	"time"
)

// Option configures one task at Submit or Go (and a schedule's runs at
// Schedule). It is a small value that costs no allocation (WithRetry aside);
// options are applied in order, and a later one overrides an earlier one of
// the same kind. The zero Option is invalid.
type Option struct {
	kind optionKind
	n    int64     // priority, or a duration
	t    time.Time // WithRunAt
	s    string    // WithKey, WithName
	p    *RetryPolicy
}

type optionKind uint8

const (
	optInvalid optionKind = iota
	optPriority
	optDelay
	optRunAt
	optTimeout
	optRetry
	optKey
	optName
	optLinked
)

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
}

// parse applies opts to o, or returns the error of the first invalid one.
func (o *taskOptions) parse(opts []Option) error {
	for _, opt := range opts {
		switch opt.kind {
		case optPriority:
			o.priority = int(opt.n)
		case optDelay:
			if opt.n < 0 {
				return fmt.Errorf("errand: WithDelay(%v): negative delay", time.Duration(opt.n))
			}
			o.delay, o.runAt = time.Duration(opt.n), time.Time{}
		case optRunAt:
			if opt.t.IsZero() {
				return errors.New("errand: WithRunAt: zero time")
			}
			o.runAt, o.delay = opt.t, 0
		case optTimeout:
			if opt.n < 0 {
				return fmt.Errorf("errand: WithTimeout(%v): negative timeout", time.Duration(opt.n))
			}
			o.timeout, o.hasTimeout = time.Duration(opt.n), true
		case optRetry:
			if err := opt.p.validate(); err != nil {
				return fmt.Errorf("errand: WithRetry: %s", trimPrefix(err))
			}
			o.retry = opt.p
		case optKey:
			o.key = opt.s
		case optName:
			o.name = opt.s
		case optLinked:
			o.linked = true
		default:
			return errors.New("errand: zero Option")
		}
	}
	return nil
}

// WithPriority sets the task's priority: under OrderPriority a higher value
// runs first, FIFO among equals. Any int is valid; the default is 0. Under
// OrderFIFO the priority is recorded but does not change the order.
func WithPriority(p int) Option { return Option{kind: optPriority, n: int64(p)} }

// WithDelay makes the task enter the queue after d. It waits in the
// scheduler's heap, costing no goroutine and no worker; under OrderPriority it
// competes by its priority once due. d must not be negative.
func WithDelay(d time.Duration) Option { return Option{kind: optDelay, n: int64(d)} }

// WithRunAt makes the task enter the queue at t, or at once if t is not in
// the future. t must not be the zero time.
func WithRunAt(t time.Time) Option { return Option{kind: optRunAt, t: t} }

// WithTimeout bounds each attempt of the task: its context reports
// context.DeadlineExceeded after d. It overrides Config.Timeout; 0 means no
// timeout. d must not be negative.
func WithTimeout(d time.Duration) Option { return Option{kind: optTimeout, n: int64(d)} }

// WithRetry sets the task's retry policy, overriding Config.Retry. It costs
// one allocation (a copy of p); build it once and reuse it where that counts.
func WithRetry(p RetryPolicy) Option { return Option{kind: optRetry, p: &p} }

// WithKey deduplicates: while a task submitted with the same key is waiting,
// scheduled, retrying or running, Submit returns that task's future instead of
// adding a task (singleflight), and Go adds nothing and returns nil. A key
// reused with another result type makes Submit return ErrKeyConflict. The key
// is free again once its task has finished. The empty key means no key.
func WithKey(key string) Option { return Option{kind: optKey, s: key} }

// WithName gives the task a kind name for logs, events, Stats consumers and
// the dashboard, e.g. "email.send". The default is empty.
func WithName(name string) Option { return Option{kind: optName, s: name} }

// WithLinkedContext cancels the task when the submitting context ends: a
// waiting task never runs, a running one sees its context canceled. Without
// it, only the submitting context's values reach the task.
func WithLinkedContext() Option { return Option{kind: optLinked} }

// trimPrefix drops the "errand: " prefix of an error from this package, for
// nesting one message in another.
func trimPrefix(err error) string {
	s := err.Error()
	if len(s) > 8 && s[:8] == "errand: " {
		return s[8:]
	}
	return s
}
