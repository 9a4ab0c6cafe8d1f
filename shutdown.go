package errand

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Shutdown stops the queue gracefully, like http.Server.Shutdown: it stops
// intake (Submit, Go and Schedule return ErrClosed from now on), resolves
// delayed and backing-off tasks with ErrClosed, lets the workers run every
// queued task, and waits for them. It returns nil once all tasks have ended
// and every goroutine of the queue has exited.
//
// If ctx ends first, Shutdown cancels the contexts of the running tasks,
// resolves the queued ones with ErrClosed and returns ctx.Err() without
// waiting for the running tasks to return; call Close to wait for them.
// Calling Shutdown again, or after Close, waits the same way.
// Safe for concurrent use.
func (q *Queue) Shutdown(ctx context.Context) error {
	if q == nil {
		return errNilQueue
	}
	if ctx == nil {
		return errors.New("errand: nil context.Context")
	}
	if q.dur != nil {
		q.dur.stopIntake()
	}
	q.mu.Lock()
	first := q.state == stateOpen
	dropped := q.beginCloseLocked()
	drained := q.drained
	queued, running := q.liveQueuedLocked(), q.running
	q.mu.Unlock()
	if first {
		q.logInfo("errand: shutting down", slog.Int("queued", queued), slog.Int("running", running), slog.Int("dropped", len(dropped)))
	}
	q.settleAll(dropped)
	q.waitScheduler()

	select {
	case <-drained:
		q.finishClose()
		q.logInfo("errand: shut down")
		return nil
	case <-ctx.Done():
	}
	select {
	case <-drained:
		q.finishClose()
		q.logInfo("errand: shut down")
		return nil
	default:
	}
	q.mu.Lock()
	dropped = q.abortLocked()
	q.mu.Unlock()
	q.logInfo("errand: shutdown deadline passed; running tasks canceled", slog.Int("dropped", len(dropped)), slog.Any("error", ctx.Err()))
	q.settleAll(dropped)
	return ctx.Err()
}

// Close stops the queue now: it stops intake, cancels the contexts of the
// running tasks, resolves every waiting, delayed and backing-off task with
// ErrClosed, and waits for the running tasks to return and every goroutine of
// the queue to exit. A task that ignores its context holds Close until it
// returns. Close always returns nil; calling it again waits the same way.
// Safe for concurrent use.
func (q *Queue) Close() error {
	if q == nil {
		return errNilQueue
	}
	if q.dur != nil {
		q.dur.stopIntake()
	}
	q.mu.Lock()
	first := q.state == stateOpen
	dropped := q.beginCloseLocked()
	dropped = append(dropped, q.abortLocked()...)
	running := q.running
	q.mu.Unlock()
	if first {
		q.logInfo("errand: closing", slog.Int("running", running), slog.Int("dropped", len(dropped)))
	}
	q.settleAll(dropped)
	q.waitScheduler()
	q.finishClose()
	return nil
}

func (q *Queue) logInfo(msg string, attrs ...any) {
	if l := q.cfg.Logger; l != nil {
		l.Info(msg, attrs...)
	}
}

// beginCloseLocked stops intake and drops the tasks that wait for a time.
// Queued tasks stay, for the workers to drain.
func (q *Queue) beginCloseLocked() []*task {
	if q.state != stateOpen {
		return nil
	}
	q.state = stateDraining
	q.closeIntakeLocked()
	q.syncWantLocked()
	dropped, plain := q.sched.drainLocked()
	for _, t := range dropped {
		q.finishLocked(t, Canceled, closedError(t.err), nil)
	}
	q.stats.Canceled += uint64(plain) // delayed plain Go tasks
	for r := range q.recurring {
		r.next = time.Time{}
	}
	q.recurring = nil
	if q.sched.started {
		close(q.sched.stop)
	}
	for _, w := range q.waiters {
		close(w.ch)
	}
	q.waiters = nil
	// A parked worker means nothing is queued: let them all go.
	for _, w := range q.idle {
		q.exitLocked(w)
		w.wake <- run{}
	}
	q.idle = nil
	if q.reaper != nil {
		q.reaper.Stop()
	}
	if q.workers == 0 {
		q.closeDrainedLocked()
	}
	return dropped
}

// abortLocked drops every queued task and cancels the running ones.
func (q *Queue) abortLocked() []*task {
	if q.state == stateClosed {
		return nil
	}
	q.state = stateClosed
	dropped := q.dropQueuedLocked()
	for w := range q.all {
		if t := w.cur; t != nil && t.stopping() == stopNone {
			t.setStopping(stopClosed)
			t.cancelRunLocked()
		}
	}
	q.base.cancel(context.Canceled) // the plain tasks running
	return dropped
}

// dropQueuedLocked resolves every queued task, those still in the intake's
// ring included, with ErrClosed, and counts the plain ones canceled. It
// returns the tasks for the caller to settle without the lock.
func (q *Queue) dropQueuedLocked() []*task {
	q.drainIntakeLocked()
	var dropped []*task
	plain := 0
	q.pending.each(func(it item) {
		switch t := it.task(); {
		case t == nil:
			plain++
		case Status(t.status.Load()) == Queued:
			q.finishLocked(t, Canceled, ErrClosed, nil)
			dropped = append(dropped, t)
		}
	})
	q.pending.clear()
	q.tombs = 0
	q.stats.Canceled += uint64(plain)
	if plain > 0 && q.cfg.Logger != nil {
		q.cfg.Logger.Warn("errand: queue closed, waiting tasks dropped", slog.Int("tasks", plain))
	}
	return dropped
}

func (q *Queue) closeDrainedLocked() {
	if !q.intakeEmptyLocked() {
		return // a claim not yet published: its producer comes back (intake.go)
	}
	select {
	case <-q.drained:
	default:
		close(q.drained)
		q.events.stop()
	}
}

func (q *Queue) settleAll(ts []*task) {
	for _, t := range ts {
		q.settle(t)
	}
}

func (q *Queue) waitScheduler() {
	q.mu.Lock()
	started, done := q.sched.started, q.sched.done
	q.mu.Unlock()
	if started {
		<-done
	}
}

// finishClose waits for the workers and the event goroutine to exit.
func (q *Queue) finishClose() {
	q.wg.Wait()
	if q.dur != nil {
		q.dur.stop()
	}
	if done := q.events.stop(); done != nil {
		<-done
	}
}
