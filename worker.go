package errand

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"time"
)

// worker is one goroutine of the pool. It runs tasks until it has waited
// IdleTimeout for one, is told to exit (Resize, Shutdown, Close), or finds the
// queue closing with nothing left to run.
type worker struct {
	wake     chan run // a task handed to a parked worker; the zero run means exit
	cur      *task    // the task running, guarded by Queue.mu
	parkedAt int64    // when it last parked, queue clock, guarded by Queue.mu
}

// run is a claimed attempt: a task and the context it runs with (a == nil:
// the task itself, see attemptContext), or a plain task's function and
// values (t == nil) on the fast path. The zero run tells a parked worker to
// exit.
type run struct {
	t   *task
	a   *attemptCtx
	fn  func(context.Context) error
	ctx context.Context
}

func (r run) exit() bool { return r.t == nil && r.fn == nil }

// attemptContext returns the context a task's attempt runs with: its own,
// or the task itself for a first attempt without a deadline (context.go).
func (r run) attemptContext() context.Context {
	if r.a != nil {
		return r.a
	}
	return r.t
}

// lightRun is the task and first attempt context of a plain Go task that
// cannot take the fast path (timeouts or middleware), made in one allocation
// when a worker takes it.
type lightRun struct {
	g goTask
	a attemptCtx
}

var errGoexit = errors.New("errand: task called runtime.Goexit")

// dispatchLocked gives a task that has just become Queued to a parked worker,
// to a new worker if the pool may grow, or else to the pending queue.
func (q *Queue) dispatchLocked(it item, prio int) {
	if n := len(q.idle); n > 0 {
		w := q.idle[n-1]
		q.idle[n-1] = nil
		q.idle = q.idle[:n-1]
		w.wake <- q.claimLocked(w, it, nil)
		q.wakeWaiterLocked() // a place granted to this task was not used
		q.syncWantLocked()
		return
	}
	if q.workers < q.max {
		q.startWorkerLocked(it)
		q.wakeWaiterLocked()
		return
	}
	q.queueLocked(it, prio)
}

func (q *Queue) startWorkerLocked(it item) {
	w := &worker{wake: make(chan run, 1)}
	q.workers++
	q.syncWantLocked()
	q.all[w] = struct{}{}
	r := q.claimLocked(w, it, nil)
	q.wg.Add(1)
	go q.work(w, r)
}

// spares are allocations a worker makes before it takes the queue's lock, so
// that claiming a task under the lock need not allocate.
type spares struct {
	light *lightRun   // for a plain task off the fast path
	ctx   *attemptCtx // for an attempt that needs its own context: a retry, or one with a timeout
}

// fill makes sure the spares a claim may need are there.
func (s *spares) fill(q *Queue) {
	if s.ctx == nil {
		s.ctx = new(attemptCtx)
	}
	if s.light == nil && !q.plainFast {
		s.light = new(lightRun)
	}
}

// claimLocked makes it w's running task and prepares its attempt context,
// from sp if it has what is needed (sp may be nil: then it allocates).
func (q *Queue) claimLocked(w *worker, it item, sp *spares) run {
	q.running++
	t, a := it.task(), (*attemptCtx)(nil)
	if t == nil {
		if q.plainFast {
			return run{fn: it.fn, ctx: it.values()}
		}
		var lr *lightRun
		if sp != nil && sp.light != nil {
			lr, sp.light = sp.light, nil
		} else {
			lr = new(lightRun)
		}
		lr.g.fn, lr.g.t.impl = it.fn, &lr.g
		t, a = &lr.g.t, &lr.a
		t.q, t.parent, t.heapIdx = q, orBackground(it.values()), -1
		if q.tracking() {
			t.lazyLocked().mark = q.clock()
		}
	}
	timeout := q.cfg.Timeout
	if t.ext != nil && t.ext.hasTimeout {
		timeout = t.ext.timeout
	}
	if a == nil && (timeout > 0 || t.attempts.Load() > 0) {
		// Not the first attempt, or one with a deadline: it needs a context
		// of its own (the first without one runs on the task).
		if sp != nil && sp.ctx != nil {
			a, sp.ctx = sp.ctx, nil
		} else {
			a = new(attemptCtx)
		}
	}
	if a != nil {
		a.t, a.values = t, t.parent
	}
	t.status.Store(int32(Running))
	t.attempts.Add(1)
	t.cur.Store(a)
	w.cur = t
	if a != nil {
		a.startTimer(timeout)
	}
	if q.cfg.OnEvent != nil {
		q.emitLocked(Event{Kind: EventStarted, Wait: time.Duration(q.clock() - t.lazy.mark)}, t)
	}
	return run{t: t, a: a}
}

// nextLocked takes the next live task from the pending queue for w.
func (q *Queue) nextLocked(w *worker, sp *spares) (run, bool) {
	it, ok := q.popLiveLocked()
	if !ok {
		return run{}, false
	}
	return q.claimLocked(w, it, sp), true
}

// popLiveLocked takes the next task from the pending queue, skipping the
// canceled ones, and lets a blocked submission have the room it frees.
func (q *Queue) popLiveLocked() (item, bool) {
	for {
		it, ok := q.pending.pop()
		if !ok {
			if q.drainIntakeLocked(); q.pending.len() == 0 {
				return item{}, false
			}
			continue
		}
		if t := it.task(); t != nil && Status(t.status.Load()) != Queued {
			q.tombs-- // canceled while it waited
			continue
		}
		q.wakeWaiterLocked()
		return it, true
	}
}

// kickLocked gives waiting tasks to parked workers, then starts workers for
// the rest while the pool may grow.
func (q *Queue) kickLocked() {
	defer q.syncWantLocked()
	for len(q.idle) > 0 {
		it, ok := q.popLiveLocked()
		if !ok {
			return
		}
		w := q.idle[len(q.idle)-1]
		q.idle[len(q.idle)-1] = nil
		q.idle = q.idle[:len(q.idle)-1]
		w.wake <- q.claimLocked(w, it, nil)
	}
	q.growLocked()
}

// work is a worker goroutine's body, started with its first task.
func (q *Queue) work(w *worker, r run) {
	clean := false
	defer func() {
		if !clean {
			q.goexited(w, r)
		}
		q.wg.Done()
	}()
	var sp spares
	for {
		var start time.Time
		if q.cfg.OnEvent != nil || q.debug {
			start = q.now()
		}
		var err error
		var retry retryDecision
		if r.t == nil {
			if err = q.executePlain(r); err != nil {
				r.t = q.materialize(r)
				retry = q.retryDecision(r.t, err)
			}
		} else {
			err = q.execute(r)
			if r.a != nil {
				r.a.cancel(context.Canceled)
			}
			retry = q.retryDecision(r.t, err)
		}
		var took time.Duration
		if !start.IsZero() {
			took = q.now().Sub(start)
		}
		if q.debug && r.t != nil {
			q.logAttempt(r.t, err, took)
		}
		sp.fill(q)

		q.lockYielding()
		t, done := r.t, false
		if t == nil { // a plain task that succeeded
			q.running--
			q.stats.Succeeded++
		} else {
			switch {
			case r.fn != nil: // a plain task that failed: it ran on the plain tasks' context
				if q.state == stateClosed {
					t.setStopping(stopClosed) // which Close canceled
				}
			case r.a == nil:
				t.endFirstLocked() // its first attempt ran on the task
			}
			done = q.settleAttemptLocked(w, t, err, retry, took)
		}
		var ok bool
		if q.workers <= q.max {
			r, ok = q.nextLocked(w, &sp)
		}
		if !ok {
			if q.state != stateOpen || q.workers > q.max {
				q.exitLocked(w)
				clean = true
				q.mu.Unlock()
				if done {
					q.settle(t)
				}
				return
			}
			if q.testBeforePark != nil {
				q.testBeforePark()
			}
			w.parkedAt = q.clock()
			q.idle = append(q.idle, w)
			q.armReaperLocked()
			q.syncWantLocked()
			if !q.intakeEmptyLocked() {
				q.kickLocked() // a producer that saw no parked worker (intake.go)
			}
		}
		q.mu.Unlock()
		if done {
			q.settle(t)
		}
		if !ok {
			if r, ok = q.park(w); !ok {
				clean = true
				return
			}
		}
	}
}

// logAttempt logs an attempt that has just returned, at Debug.
func (q *Queue) logAttempt(t *task, err error, took time.Duration) {
	attrs := []slog.Attr{slog.String("task", t.ID()), slog.Int("attempt", int(t.attempts.Load())), slog.Duration("duration", took)}
	if n := t.name(); n != "" {
		attrs = append(attrs, slog.String("name", n))
	}
	if err != nil {
		attrs = append(attrs, slog.Any("error", err))
	}
	q.cfg.Logger.LogAttrs(context.Background(), slog.LevelDebug, "errand: attempt returned", attrs...)
}

// lockYielding takes q.mu on the throughput paths: a worker coming back
// from a task, and a plain Go. Under load dozens of workers and the submitter
// contend for the lock, each for a few dozen nanoseconds; parking on it (and
// sync.Mutex's starvation mode that follows) costs far more than the critical
// section, and a parked submitter stalls every worker behind it. So the
// caller yields its P a few times before it blocks. Measured with 64 workers
// on 2 CPUs (bench/ burst-64): 240 ns per task with plain Lock, 186 with it
// for workers, 110 with it for Go too. Submit keeps a plain Lock: yielding
// there doubled the p99 of a submit-and-await round trip (80 -> 150 us).
func (q *Queue) lockYielding() {
	for range 4 {
		if q.mu.TryLock() {
			return
		}
		runtime.Gosched()
	}
	q.mu.Lock()
}

// goexited settles the task whose function called runtime.Goexit, which is
// ending the worker goroutine, and starts a replacement if tasks wait.
func (q *Queue) goexited(w *worker, r run) {
	t := r.t
	if t == nil {
		t = q.materialize(r)
	} else if r.a != nil {
		r.a.cancel(context.Canceled)
	}
	retry := q.retryDecision(t, errGoexit)
	q.mu.Lock()
	if r.t != nil && r.fn == nil && r.a == nil {
		t.endFirstLocked() // its first attempt ran on the task
	}
	done := q.settleAttemptLocked(w, t, errGoexit, retry, 0)
	q.exitLocked(w)
	q.mu.Unlock()
	if done {
		q.settle(t)
	}
}

// materialize gives a plain task that failed its first attempt a task
// struct, for its retries and its log line.
func (q *Queue) materialize(r run) *task {
	t := newGoTask(r.fn)
	t.q, t.parent, t.heapIdx = q, orBackground(r.ctx), -1
	t.attempts.Store(1)
	t.status.Store(int32(Running))
	return t
}

func orBackground(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}

// retryDecision is what the retry policy said of a failed attempt.
type retryDecision struct {
	ok    bool
	delay time.Duration
	err   error // a *PanicError if RetryIf or Backoff panicked
}

// retryDecision consults t's retry policy about err, without Queue.mu: the
// policy's RetryIf and Backoff are user code. A panic in them fails the task.
func (q *Queue) retryDecision(t *task, err error) (d retryDecision) {
	if err == nil {
		return d
	}
	policy := &q.cfg.Retry
	if t.ext != nil && t.ext.retry != nil {
		policy = t.ext.retry
	}
	if policy.MaxAttempts <= 1 {
		return d
	}
	defer func() {
		if v := recover(); v != nil {
			d = retryDecision{err: &PanicError{Value: fmt.Sprintf("retry policy: %v", v), Stack: debug.Stack()}}
		}
	}()
	d.delay, d.ok = policy.retryDelay(int(t.attempts.Load()), err)
	return d
}

// execute runs one attempt through the middleware, turning a panic into a
// *PanicError.
func (q *Queue) execute(r run) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	if q.handler != nil {
		q.mu.Lock()
		info := r.t.infoLocked()
		q.mu.Unlock()
		return q.handler(r.attemptContext(), info)
	}
	return r.t.impl.call(r.attemptContext())
}

// executePlain runs a plain task on the queue's shared context.
func (q *Queue) executePlain(r run) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	if r.ctx == nil {
		return r.fn(&q.base)
	}
	return r.fn(&mergedCtx{base: &q.base, values: r.ctx})
}

// park waits for a task to be handed to w. It reports false if w must exit,
// having been removed from the pool by whoever decided so (Resize, Shutdown,
// Close, or the reaper once w has been idle for IdleTimeout).
func (q *Queue) park(w *worker) (run, bool) {
	r := <-w.wake
	return r, !r.exit()
}

// armReaperLocked makes sure the reaper will run when the longest-idle
// worker's IdleTimeout ends. Parked workers are in q.idle oldest first, so
// one timer serves the whole pool and parking costs no timer operation.
func (q *Queue) armReaperLocked() {
	if q.reaperArmed || len(q.idle) == 0 || q.state != stateOpen {
		return
	}
	d := time.Duration(q.idle[0].parkedAt + int64(q.cfg.IdleTimeout) - q.clock())
	if q.reaper == nil {
		q.reaper = time.AfterFunc(d, q.reap)
	} else {
		q.reaper.Reset(d)
	}
	q.reaperArmed = true
}

// reap lets go the workers idle for IdleTimeout or more, and arms the reaper
// for the next.
func (q *Queue) reap() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.reaperArmed = false
	if q.state != stateOpen {
		return // Shutdown and Close let idle workers go
	}
	now, n := q.clock(), 0
	for n < len(q.idle) && now-q.idle[n].parkedAt >= int64(q.cfg.IdleTimeout) {
		n++
	}
	for _, w := range q.idle[:n] {
		q.exitLocked(w)
		w.wake <- run{}
	}
	q.idle = slices.Delete(q.idle, 0, n)
	q.armReaperLocked()
}

// exitLocked removes w from the pool. If tasks are waiting and the pool is
// below its bound (a worker lost to runtime.Goexit), it starts replacements;
// every other exit happens with nothing waiting or the pool at its bound.
func (q *Queue) exitLocked(w *worker) {
	q.workers--
	delete(q.all, w)
	q.syncWantLocked()
	if q.state != stateClosed {
		q.growLocked()
	}
	if q.workers == 0 && q.state != stateOpen {
		q.closeDrainedLocked()
	}
}

// settleAttemptLocked records how an attempt of t ended: success, final
// failure, cancellation, or a retry scheduled. It reports whether t reached a
// final state, in which case the caller calls q.settle(t) without the lock.
func (q *Queue) settleAttemptLocked(w *worker, t *task, err error, retry retryDecision, took time.Duration) bool {
	w.cur = nil
	t.cur.Store(nil)
	q.running--
	ran := &attemptEnd{took: took, panicked: err != nil && isPanic(err)}
	if ran.panicked {
		q.stats.Panicked++
	}
	switch {
	case err == nil:
		q.finishLocked(t, Succeeded, nil, ran)
		return true
	case t.stopping() == stopClosed:
		q.finishLocked(t, Canceled, closedError(unwrapControl(err)), ran)
		return true
	case t.stopping() == stopCanceled:
		q.finishLocked(t, Canceled, canceledError(unwrapControl(err)), ran)
		return true
	}
	if retry.err != nil {
		err = retry.err // the policy itself panicked
	}
	if !retry.ok {
		q.finishLocked(t, Failed, unwrapControl(err), ran)
		return true
	}
	attempt, d := int(t.attempts.Load()), retry.delay
	if q.state != stateOpen {
		q.finishLocked(t, Canceled, closedError(unwrapControl(err)), ran)
		return true
	}
	q.stats.Retried++
	t.err = unwrapControl(err)
	t.status.Store(int32(Retrying))
	at := q.clock() + int64(d)
	if q.cfg.OnEvent != nil {
		q.emitLocked(Event{Kind: EventRetrying, Err: t.err, Ran: true, Duration: took, RetryAt: q.timeAt(at), Due: q.timeAt(at), Panicked: ran.panicked}, t)
	}
	if l := q.cfg.Logger; l != nil {
		l.Warn("errand: attempt failed, retrying", slog.String("task", t.idLocked()), slog.String("name", t.name()),
			slog.Int("attempt", attempt), slog.Duration("backoff", d), slog.Any("error", t.err))
	}
	q.sched.pushLocked(q, t, at)
	return false
}

// Resize changes the most tasks running at once to n (n >= 1). Growing starts
// workers for waiting tasks at once; shrinking lets idle workers go at once
// and busy ones as their tasks finish. No task is lost or run twice. Returns
// ErrClosed after Shutdown or Close. Safe for concurrent use.
func (q *Queue) Resize(n int) error {
	if q == nil {
		return errNilQueue
	}
	if n < 1 {
		return fmt.Errorf("errand: Resize(%d): want 1 or more workers", n)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state != stateOpen {
		return ErrClosed
	}
	q.max = n
	for q.workers > q.max && len(q.idle) > 0 {
		w := q.idle[len(q.idle)-1]
		q.idle = q.idle[:len(q.idle)-1]
		q.exitLocked(w)
		w.wake <- run{}
	}
	q.growLocked()
	q.syncWantLocked()
	return nil
}

// growLocked starts workers for waiting tasks while the pool may grow.
func (q *Queue) growLocked() {
	for q.workers < q.max {
		it, ok := q.popLiveLocked()
		if !ok {
			return
		}
		q.startWorkerLocked(it)
	}
}
