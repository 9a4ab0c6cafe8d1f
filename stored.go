package errand

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// enqueueStored is Kind.Enqueue with a Store: it stores the task and
// returns a future that resolves when the store reports it final.
func enqueueStored[A, R any](ctx context.Context, q *Queue, k *Kind[A, R], args A, opts []Option) (*Future[R], error) {
	if ctx == nil {
		return nil, errors.New("errand: nil context.Context")
	}
	nt, err := k.newTask(args, opts, &q.cfg)
	if err != nil {
		return nil, err
	}
	if q.closed() {
		return nil, ErrClosed
	}
	st := Queued
	if nt.Delay > 0 || nt.RunAt.After(time.Now()) {
		st = Scheduled
	}
	// Watch before storing: the task may finish, here or elsewhere, before
	// Enqueue returns, and its notification must find the future.
	d := q.dur
	f := watchStored(q, k, nt.ID, st, nt.Priority)
	d.addKind(k)
	id, existing, err := d.store.Enqueue(ctx, nt)
	if err != nil || existing {
		d.unwatch(nt.ID, &f.t)
	}
	if err != nil {
		return nil, fmt.Errorf("errand: %s: storing the task: %w", k.name, err)
	}
	if existing { // WithKey: the future of the task holding the key
		return attachStored(q, k, id)
	}
	d.kick()
	return f, nil
}

// attachStored is Kind.Future with a Store.
func attachStored[A, R any](q *Queue, k *Kind[A, R], id string) (*Future[R], error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	recs, err := q.dur.store.Lookup(ctx, []string{id})
	if err != nil {
		return nil, fmt.Errorf("errand: looking up task %s: %w", id, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	rec := recs[0]
	if rec.Kind != k.name {
		return nil, fmt.Errorf("errand: task %s is a %q, not a %q", id, rec.Kind, k.name)
	}
	f := watchStored(q, k, id, rec.Status, rec.Priority)
	f.t.attempts.Store(int32(rec.Attempts))
	if rec.Status.Final() {
		q.dur.settleWatchers(rec)
	}
	return f, nil
}

// unwatch stops watching id for the future of t.
func (d *durable) unwatch(id string, t *task) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ws := slices.DeleteFunc(d.watch[id], func(w *watcher) bool { return w.t == t })
	if len(ws) == 0 {
		delete(d.watch, id)
	} else {
		d.watch[id] = ws
	}
}

// watchStored makes a future of a stored task and has the queue watch it.
// A stored future never enters the queue: it waits in durable.watch.
func watchStored[A, R any](q *Queue, k *Kind[A, R], id string, st Status, prio int) *Future[R] {
	f := &Future[R]{}
	t := &f.t
	t.impl, t.q, t.heapIdx, t.prio = f, q, -1, prio
	t.ext = &taskExt{name: k.name, stored: true}
	t.lazy = &taskLazy{id: id}
	t.status.Store(int32(st))
	d := q.dur
	d.mu.Lock()
	stopped := d.stopped
	if !stopped {
		d.watch[id] = append(d.watch[id], &watcher{t: t, decode: k.decodeInto(f)})
	}
	d.mu.Unlock()
	if stopped {
		q.settleStored(t, Canceled, ErrClosed, -1)
	}
	return f
}

// settleStored resolves a future of a stored task, once. It counts nothing
// in Stats: the attempts that ran here were counted as they ran. attempts,
// if not negative, is the stored number of attempts.
func (q *Queue) settleStored(t *task, st Status, err error, attempts int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if t.flags.Load()&donePublished != 0 {
		return // resolved already (watchStored may have set a final status: not yet)
	}
	if attempts >= 0 {
		t.attempts.Store(int32(attempts))
	}
	t.err = err
	t.status.Store(int32(st))
	t.publishLocked()
}

// cancelStored is Future.Cancel for a future of a stored task: a waiting
// task is canceled in the store; one running in this process has its
// attempt canceled. A task running in another process cannot be canceled
// from here.
func (q *Queue) cancelStored(t *task) bool {
	if Status(t.status.Load()).Final() {
		return false
	}
	id := t.lazy.id
	d := q.dur
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	ok, err := d.store.Cancel(ctx, id)
	if err == nil && ok {
		d.mu.Lock()
		ws := d.watch[id]
		delete(d.watch, id)
		d.mu.Unlock()
		for _, w := range ws {
			q.settleStored(w.t, Canceled, ErrCanceled, -1)
		}
		return true
	}
	d.mu.Lock()
	run := d.runs[id]
	d.mu.Unlock()
	if run == nil || !q.cancel(run.t, stopCanceled) {
		return false
	}
	if !run.started.Load() && Status(run.t.status.Load()).Final() {
		// Canceled while queued here: it will not run, so record it.
		if err := d.store.Complete(ctx, run.claim.Lease, Outcome{Status: Canceled, Error: ErrCanceled.Error()}); err != nil {
			d.warn("errand: recording a canceled stored task", err)
		}
		d.forget(run)
	}
	return true
}

// closed reports whether Shutdown or Close has begun.
func (q *Queue) closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.state != stateOpen
}

// Lookup returns the task with the given id as a TaskRecord: from the
// Store, any stored task until retention deletes it; in memory, a live task
// of a named kind (Define). It returns ErrNotFound for an unknown id. It
// costs one store read with a Store; it is safe for concurrent use.
func (q *Queue) Lookup(ctx context.Context, id string) (TaskRecord, error) {
	if q == nil {
		return TaskRecord{}, errNilQueue
	}
	if ctx == nil {
		return TaskRecord{}, errors.New("errand: nil context.Context")
	}
	if q.dur != nil {
		recs, err := q.dur.store.Lookup(ctx, []string{id})
		if err != nil {
			return TaskRecord{}, fmt.Errorf("errand: looking up task %s: %w", id, err)
		}
		if len(recs) == 0 {
			return TaskRecord{}, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return recs[0], nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.named[id]
	if t == nil {
		return TaskRecord{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	rec := TaskRecord{ID: id, Kind: t.name(), Status: Status(t.status.Load()), Priority: t.prio,
		Attempts: int(t.attempts.Load()), MaxAttempts: 1}
	policy := &q.cfg.Retry
	if t.ext != nil && t.ext.retry != nil {
		policy = t.ext.retry
	}
	rec.MaxAttempts = max(policy.MaxAttempts, 1)
	if t.err != nil {
		rec.Error = t.err.Error()
	}
	if t.ext != nil {
		rec.Key = t.ext.key
	}
	return rec, nil
}

// Schedule runs a task of the kind with args at each time t names, under
// the schedule's id, until Unschedule or the queue closes: like
// Queue.Schedule, runs never overlap and missed runs coalesce. Scheduling
// an id again replaces its schedule.
//
// With a Store the schedule is stored: every process sharing the store may
// register the same schedule at start-up, and each due time fires once
// across all of them. t must then be errand's own (ParseCron or Every), so
// that other processes can read it back from its String; the schedule keeps
// its next due time when registered again with the same spec. opts are as
// for Queue.Schedule (WithPriority, WithTimeout, WithRetry).
func (k *Kind[A, R]) Schedule(ctx context.Context, q *Queue, id string, t Trigger, args A, opts ...Option) error {
	switch {
	case k == nil || q == nil:
		return errors.New("errand: Schedule on a nil *Kind or *Queue")
	case k.err != nil:
		return k.err
	case ctx == nil:
		return errors.New("errand: nil context.Context")
	case id == "":
		return errors.New("errand: Schedule: empty schedule id")
	case t == nil:
		return errors.New("errand: Schedule: nil Trigger")
	}
	nt, err := k.newTask(args, opts, &q.cfg)
	if err != nil {
		return err
	}
	if nt.Delay != 0 || !nt.RunAt.IsZero() || nt.Key != "" {
		return errors.New("errand: Schedule: WithDelay, WithRunAt and WithKey do not apply to a schedule")
	}
	if q.dur == nil {
		all := append(append(append([]Option{}, k.opts...), opts...), WithName(k.name))
		r, err := q.Schedule(t, func(ctx context.Context) error {
			_, err := k.run(ctx, nt.Args)
			return err
		}, all...)
		if err != nil {
			return err
		}
		q.mu.Lock()
		old := q.namedSched[id]
		if q.namedSched == nil {
			q.namedSched = make(map[string]*Recurring)
		}
		q.namedSched[id] = r
		q.mu.Unlock()
		if old != nil {
			old.Stop()
		}
		return nil
	}
	s, ok := t.(fmt.Stringer)
	if !ok {
		return fmt.Errorf("errand: Schedule: a stored schedule needs a Trigger from ParseCron or Every, not %T", t)
	}
	spec := s.String()
	back, err := ParseCron(spec)
	if err != nil {
		return fmt.Errorf("errand: Schedule: trigger %q cannot be stored: %w", spec, err)
	}
	first, err := safeNext(back, time.Now())
	if err != nil || first.IsZero() {
		return fmt.Errorf("errand: Schedule: trigger %q never fires", spec)
	}
	rec := ScheduleRecord{ID: id, Kind: k.name, Spec: spec, Args: nt.Args, Priority: nt.Priority,
		MaxAttempts: nt.MaxAttempts, Timeout: nt.Timeout}
	if err := q.dur.store.Schedule(ctx, rec, first); err != nil {
		return fmt.Errorf("errand: Schedule %q: %w", id, err)
	}
	q.dur.addKind(k)
	return nil
}

// Unschedule removes the named-kind schedule id (Kind.Schedule): from the
// store with a Store, for every process; runs already submitted go on. It
// returns ErrNotFound, in memory, for an unknown id.
func (q *Queue) Unschedule(ctx context.Context, id string) error {
	if q == nil {
		return errNilQueue
	}
	if ctx == nil {
		return errors.New("errand: nil context.Context")
	}
	if q.dur != nil {
		return q.dur.store.Unschedule(ctx, id)
	}
	q.mu.Lock()
	r := q.namedSched[id]
	delete(q.namedSched, id)
	q.mu.Unlock()
	if r == nil {
		return fmt.Errorf("%w: schedule %s", ErrNotFound, id)
	}
	r.Stop()
	return nil
}
