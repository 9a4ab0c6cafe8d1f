package errand

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Backoff computes how long a failed task waits before its next attempt.
// attempt counts from 1: Delay(1) is the wait after the first attempt failed.
// Implementations must be safe for concurrent use.
type Backoff interface {
	Delay(attempt int) time.Duration
}

// RetryPolicy says whether and when a failed attempt is tried again. Its zero
// value means no retries. A task waiting to retry sits in the scheduler, not in
// a worker: backing off holds no worker and no goroutine.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts, the first included.
	// 0 or 1 means no retry.
	MaxAttempts int

	// Backoff spaces the attempts. Defaults to
	// Exponential{Initial: 100ms, Max: 30s, Multiplier: 2, Jitter: 0.2}.
	Backoff Backoff

	// RetryIf decides whether an error is worth another attempt. Defaults to
	// retrying every error except Permanent ones and context cancellation.
	// It is never consulted for Permanent errors or for a task that was
	// canceled or whose queue is closing.
	RetryIf func(error) bool
}

// defaultBackoff is RetryPolicy.Backoff's default.
var defaultBackoff = Exponential{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2}

func (p RetryPolicy) validate() error {
	if p.MaxAttempts < 0 {
		return fmt.Errorf("errand: RetryPolicy.MaxAttempts is %d, want 0 or more", p.MaxAttempts)
	}
	switch b := p.Backoff.(type) {
	case Exponential:
		return b.validate()
	case *Exponential:
		if b == nil {
			return errors.New("errand: RetryPolicy.Backoff is a nil *Exponential")
		}
		return b.validate()
	case Constant:
		if b < 0 {
			return fmt.Errorf("errand: Constant backoff is %v, want 0 or more", time.Duration(b))
		}
	}
	return nil
}

// retryDelay reports whether the attempt that failed with err should be
// retried, and after how long. attempt counts from 1.
func (p *RetryPolicy) retryDelay(attempt int, err error) (time.Duration, bool) {
	if attempt >= p.MaxAttempts {
		return 0, false
	}
	var perm *PermanentError
	if errors.As(err, &perm) || errors.Is(err, context.Canceled) {
		return 0, false
	}
	if p.RetryIf != nil && !p.RetryIf(err) {
		return 0, false
	}
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return max(ra.Delay, 0), true
	}
	b := p.Backoff
	if b == nil {
		b = defaultBackoff
	}
	return max(b.Delay(attempt), 0), true
}

// Exponential backoff: the n-th wait is Initial * Multiplier^(n-1), capped at
// Max, then moved at random by up to ±Jitter of itself. A zero field takes its
// default: Initial 100ms, Max 30s, Multiplier 2; Jitter 0 means none.
//
// With the defaults and Jitter 0.2 the waits are about
// 100ms, 200ms, 400ms, 800ms, 1.6s, 3.2s, 6.4s, 12.8s, 25.6s, 30s, 30s, ...
// each within ±20%. It is a value type, safe for concurrent use.
type Exponential struct {
	Initial, Max       time.Duration
	Multiplier, Jitter float64
}

// Delay returns the wait after the given failed attempt (counting from 1).
func (e Exponential) Delay(attempt int) time.Duration {
	return e.delay(attempt, rand.Float64())
}

// delay is Delay with the random number in [0, 1) supplied, for tests.
func (e Exponential) delay(attempt int, r float64) time.Duration {
	initial, maxD, mult := e.Initial, e.Max, e.Multiplier
	if initial <= 0 {
		initial = defaultBackoff.Initial
	}
	if maxD <= 0 {
		maxD = defaultBackoff.Max
	}
	if mult == 0 {
		mult = defaultBackoff.Multiplier
	}
	attempt = max(attempt, 1)
	d := float64(initial) * math.Pow(mult, float64(attempt-1))
	if d > float64(maxD) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(maxD)
	}
	if e.Jitter > 0 {
		d += d * e.Jitter * (2*r - 1)
	}
	if d >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(max(d, 0))
}

func (e Exponential) validate() error {
	switch {
	case e.Initial < 0:
		return fmt.Errorf("errand: Exponential.Initial is %v, want 0 or more", e.Initial)
	case e.Max < 0:
		return fmt.Errorf("errand: Exponential.Max is %v, want 0 or more", e.Max)
	case e.Multiplier != 0 && (e.Multiplier < 1 || math.IsNaN(e.Multiplier) || math.IsInf(e.Multiplier, 0)):
		return fmt.Errorf("errand: Exponential.Multiplier is %v, want 1 or more (0 = default 2)", e.Multiplier)
	case e.Jitter < 0 || e.Jitter > 1 || math.IsNaN(e.Jitter):
		return fmt.Errorf("errand: Exponential.Jitter is %v, want between 0 and 1", e.Jitter)
	}
	return nil
}

// Constant backoff waits the same time before every retry:
// Constant(time.Second) gives 1s, 1s, 1s, ...
type Constant time.Duration

// Delay returns the constant wait.
func (c Constant) Delay(int) time.Duration { return time.Duration(c) }

// PermanentError marks an error that must not be retried. Create it with
// Permanent. The future of a task that fails with it reports the wrapped error.
type PermanentError struct{ Err error }

// Error returns the wrapped error's message.
func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "errand: permanent error"
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so that it is never retried, whatever the RetryPolicy.
// Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// RetryAfterError asks for the next attempt after Delay instead of the
// backoff's wait, e.g. for an HTTP 429 with a Retry-After header. Create it
// with RetryAfter. MaxAttempts and RetryIf still apply.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

// Error returns the wrapped error's message.
func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("errand: retry after %v", e.Delay)
	}
	return e.Err.Error()
}

// Unwrap returns the wrapped error.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err so that the next attempt starts after d, overriding
// the backoff. RetryAfter(d, nil) is nil.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Delay: d, Err: err}
}

// unwrapControl strips the Permanent and RetryAfter wrappers that only steer
// retries, so a future reports the task's own error.
func unwrapControl(err error) error {
	for {
		switch e := err.(type) {
		case *PermanentError:
			err = e.Err
		case *RetryAfterError:
			err = e.Err
		default:
			return err
		}
	}
}
