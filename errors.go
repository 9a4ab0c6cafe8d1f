package errand

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with errors.Is: errand wraps them to add detail.
var (
	// ErrClosed is returned by Submit, Go and Schedule after Shutdown or Close,
	// and is the error of every task the queue dropped because it closed.
	ErrClosed = errors.New("errand: queue closed")

	// ErrQueueFull is returned by Submit and Go when Config.Capacity tasks are
	// already waiting and Config.OnFull is Reject.
	ErrQueueFull = errors.New("errand: queue full")

	// ErrCanceled is the error of a task canceled through Future.Cancel or a
	// linked context (WithLinkedContext).
	ErrCanceled = errors.New("errand: task canceled")

	// ErrNotDone is returned by Future.Result before the future has resolved.
	ErrNotDone = errors.New("errand: task not done")

	// ErrKeyConflict is returned by Submit when WithKey names a task that is
	// still waiting or running but produces a different result type.
	ErrKeyConflict = errors.New("errand: key in use by a task of another result type")
)

// PanicError is the error of a task attempt that panicked. The worker that ran
// it recovers and goes on. For a future it is the result; for a task started
// with Go it is logged and counted in Stats.Panicked.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the goroutine's stack at the panic
}

// Error reports the panic value.
func (e *PanicError) Error() string { return fmt.Sprintf("errand: task panicked: %v", e.Value) }

// Unwrap returns the panic value if it is an error, so errors.Is and errors.As
// see through a panic(err).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// closedError wraps ErrClosed with the error of the attempt that preceded it,
// for tasks that were waiting to retry when the queue closed.
func closedError(last error) error {
	if last == nil {
		return ErrClosed
	}
	return fmt.Errorf("%w (last attempt: %w)", ErrClosed, last)
}

// canceledError wraps ErrCanceled with the error a canceled task returned.
func canceledError(last error) error {
	if last == nil || errors.Is(last, ErrCanceled) {
		return ErrCanceled
	}
	return fmt.Errorf("%w: %w", ErrCanceled, last)
}

// isPanic reports whether err is or wraps a *PanicError.
func isPanic(err error) bool {
	var pe *PanicError
	return errors.As(err, &pe)
}
