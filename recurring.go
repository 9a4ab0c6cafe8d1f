package errand

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Recurring is a live schedule made by Queue.Schedule: at each time its
// Trigger names, it submits a run of its function into the queue, with the
// schedule's options. Its methods are safe for concurrent use.
//
// Runs never overlap: while the previous run is still queued, running or
// backing off, a due run is skipped (counted in Stats.Skipped and reported as
// EventSkipped). Runs missed while the process stalled coalesce into one.
type Recurring struct {
	q    *Queue
	id   string
	trig Trigger
	fn   func(context.Context) error
	opts taskOptions

	// guarded by Queue.mu
	next    time.Time // zero once stopped
	heapIdx int32
	last    *task // the latest run
}

// Schedule submits fn each time t says, until Stop or the queue closes, and
// returns the schedule. Runs are tasks of the queue like any other: they get
// the queue's workers, order, retries, timeouts, middleware and events, and
// the options given here (WithName, WithPriority, WithTimeout, WithRetry).
// WithDelay, WithRunAt, WithKey and WithLinkedContext do not apply to a
// schedule and are an error. t's first time must be in the future.
//
// A schedule costs one heap entry and no goroutine: 100,000 of them wait in
// the same heap, served by the same timer goroutine, as delayed tasks.
// Safe for concurrent use.
func (q *Queue) Schedule(t Trigger, fn func(context.Context) error, opts ...Option) (*Recurring, error) {
	if err := checkArgs(q, context.Background(), fn == nil); err != nil {
		return nil, err
	}
	if t == nil {
		return nil, errors.New("errand: Schedule: nil Trigger")
	}
	o := new(taskOptions)
	if err := o.parse(opts); err != nil {
		return nil, err
	}
	switch {
	case o.delay != 0 || !o.runAt.IsZero():
		return nil, errors.New("errand: Schedule: WithDelay and WithRunAt do not apply; the Trigger says when")
	case o.key != "":
		return nil, errors.New("errand: Schedule: WithKey does not apply; runs of a schedule never overlap")
	case o.linked:
		return nil, errors.New("errand: Schedule: WithLinkedContext does not apply; a schedule has no submitting context")
	}
	r := &Recurring{q: q, id: q.newID(), trig: t, fn: fn, opts: *o, heapIdx: -1}
	now := q.now()
	next, err := safeNext(t, now)
	if err != nil {
		return nil, fmt.Errorf("errand: Schedule: the trigger panicked: %w", err)
	}
	if !next.After(now) {
		return nil, fmt.Errorf("errand: Schedule: the trigger's first time (%v) is not in the future", next)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state != stateOpen {
		return nil, ErrClosed
	}
	r.next = next
	if q.recurring == nil {
		q.recurring = make(map[*Recurring]struct{})
	}
	q.recurring[r] = struct{}{}
	q.sched.pushEntryLocked(q, timerEntry{at: q.clockAt(next), v: r})
	return r, nil
}

// ID returns the schedule's id, a random UUID. Runs of the schedule report it
// in TaskInfo.Schedule.
func (r *Recurring) ID() string { return r.id }

// Name returns the schedule's WithName, empty by default.
func (r *Recurring) Name() string { return r.opts.name }

// Trigger returns the trigger the schedule was made with.
func (r *Recurring) Trigger() Trigger { return r.trig }

// Next returns when the next run is due, or the zero time once the schedule
// has stopped.
func (r *Recurring) Next() time.Time {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	return r.next
}

// Stop ends the schedule: no run starts after it returns. A run already
// queued or running is not touched. Stop is idempotent.
func (r *Recurring) Stop() {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	r.q.stopRecurringLocked(r)
}

// String describes the schedule: its id, trigger and next run.
func (r *Recurring) String() string {
	return fmt.Sprintf("errand.Recurring{%s %v next=%v}", r.id, r.trig, r.Next())
}

// Recurring returns the live schedules, ordered by their next run.
// Safe for concurrent use.
func (q *Queue) Recurring() []*Recurring {
	q.mu.Lock()
	defer q.mu.Unlock()
	rs := make([]*Recurring, 0, len(q.recurring))
	for r := range q.recurring {
		rs = append(rs, r)
	}
	slices.SortFunc(rs, func(a, b *Recurring) int {
		if c := a.next.Compare(b.next); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return rs
}

func (q *Queue) stopRecurringLocked(r *Recurring) {
	if r.next.IsZero() {
		return
	}
	q.sched.removeEntryLocked(int(r.heapIdx), r)
	r.next = time.Time{}
	delete(q.recurring, r)
}

// fireLocked runs r's due time: it submits a run unless the previous one is
// still live, then schedules the next due time after now, so that missed
// times coalesce into this one run.
func (q *Queue) fireLocked(r *Recurring, now time.Time) {
	if r.last != nil && !Status(r.last.status.Load()).Final() {
		q.stats.Skipped++
		if q.cfg.OnEvent != nil {
			q.events.push(Event{Kind: EventSkipped, Time: now, Task: TaskInfo{Name: r.opts.name, Priority: r.opts.priority, Schedule: r.id}})
		}
	} else {
		t := newGoTask(r.fn)
		t.q, t.parent, t.prio, t.heapIdx = q, context.Background(), r.opts.priority, -1
		t.ext = &taskExt{name: r.opts.name, timeout: r.opts.timeout, hasTimeout: r.opts.hasTimeout, retry: r.opts.retry, schedule: r}
		r.last = t
		q.stats.Submitted++
		if q.tracking() {
			t.lazyLocked().mark = q.clock()
		}
		t.status.Store(int32(Queued))
		q.emitLocked(Event{Kind: EventSubmitted}, t)
		q.queueLocked(taskItem(t), t.prio) // the timer loop's kickLocked finds it a worker
	}
	next, err := safeNext(r.trig, r.next)
	if err == nil && !next.IsZero() && !next.After(now) {
		next, err = safeNext(r.trig, now) // missed times coalesce into the run just made
	}
	if err == nil && !next.IsZero() && !next.After(now) {
		// A Trigger whose Next does not move forward would spin the timer.
		err = fmt.Errorf("Next returned %v, not after %v", next, now)
	}
	if err != nil {
		if l := q.cfg.Logger; l != nil {
			l.Error("errand: schedule stopped: its Trigger failed", slog.String("schedule", r.id), slog.Any("error", err))
		}
		next = time.Time{}
	}
	if next.IsZero() {
		q.stopRecurringLocked(r)
		return
	}
	r.next = next
	q.sched.pushEntryLocked(q, timerEntry{at: q.clockAt(next), v: r})
}

// clockAt converts a time to the queue clock.
func (q *Queue) clockAt(t time.Time) int64 { return int64(t.Sub(q.epoch)) }

// safeNext calls a user's Trigger, turning a panic into an error: it runs on
// the timer goroutine, under the queue's lock.
func safeNext(t Trigger, after time.Time) (next time.Time, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return t.Next(after), nil
}
