// Package errandtest helps test code that uses errand's durable mode
// without a database: MemStore is an errand.Store kept in memory, and
// RunQueueSuite is a behaviour suite for named kinds that any Store (or
// none) must pass.
package errandtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/errandgo/errand"
	"github.com/google/uuid"
)

// MemStore is an errand.Store kept in this process's memory, for tests:
// put it in errand.Config.Store to run durable code (named kinds, leases,
// retries, schedules, re-attached futures, several queues sharing one
// store) without PostgreSQL. Nothing survives the process.
//
// It keeps the Store contract: every claim draws a random lease token that
// fences Heartbeat, Complete and Release; a lease expires by the store's
// clock (time.Now, so that it follows a testing/synctest bubble's fake
// clock) and Maintain then makes its task claimable again; Release hands a
// task back without spending its attempt; a unique key is held while its
// task waits or runs; Claim takes the highest priority first, then the
// earliest due, then the first stored; a schedule fires once per due time,
// never while its previous run waits or runs, and missed due times coalesce.
// It is stricter than a database store in one way: a lease past its expiry
// is lost at once, even before Maintain recovers its task, so a test sees a
// late heartbeat as the lease loss it would be under contention.
//
// The zero value is ready to use, and so is NewMemStore's. A MemStore is
// safe for concurrent use; it must not be copied after first use. Every
// method takes one mutex. Claim scans the waiting tasks, Maintain the
// running ones (and all of them when Retention is set), FireSchedules the
// schedules: that suits the few thousand tasks of a test.
type MemStore struct {
	// Retention is how long Maintain keeps a finished task for Lookup and
	// Kind.Future before deleting it. 0, the default, keeps finished tasks
	// until the store is dropped. Set it before first use.
	Retention time.Duration

	mu        sync.Mutex
	tasks     map[string]*memTask
	waiting   map[*memTask]struct{} // queued, scheduled or retrying
	running   map[*memTask]struct{}
	keys      map[string]*memTask // unique key -> the waiting or running task holding it
	schedules map[string]*memSchedule
	seq       uint64
	listeners map[*memListener]struct{}
}

// NewMemStore returns an empty MemStore, ready to use (like the zero
// value).
func NewMemStore() *MemStore { return &MemStore{} }

var _ errand.Store = (*MemStore)(nil)

// memTask is a stored task; guarded by MemStore.mu.
type memTask struct {
	rec        errand.TaskRecord
	timeout    time.Duration
	seq        uint64 // insertion order, the last tiebreak of Claim
	token      string // the lease token while running
	leaseUntil time.Time
}

// memSchedule is a registered schedule; guarded by MemStore.mu.
type memSchedule struct {
	rec  errand.ScheduleRecord
	next time.Time // zero: never due again
	last *memTask  // the latest run stored
}

// memListener is one Listen call: what to tell it waits here until the
// listening goroutine takes it, so that the store never blocks on it.
type memListener struct {
	mu   sync.Mutex
	work bool
	done []string
	wake chan struct{} // buffer 1
}

// lock checks ctx, takes the store's mutex and reads the store's clock;
// the caller unlocks s.mu unless it returns an error.
func (s *MemStore) lock(ctx context.Context) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	s.mu.Lock()
	s.initLocked()
	return time.Now(), nil
}

func (s *MemStore) initLocked() {
	if s.tasks == nil {
		s.tasks = make(map[string]*memTask)
		s.waiting = make(map[*memTask]struct{})
		s.running = make(map[*memTask]struct{})
		s.keys = make(map[string]*memTask)
		s.schedules = make(map[string]*memSchedule)
		s.listeners = make(map[*memListener]struct{})
	}
}

// waitingStatus reports whether st is a state of a task waiting to be
// claimed.
func waitingStatus(st errand.Status) bool {
	return st == errand.Scheduled || st == errand.Queued || st == errand.Retrying
}

// Enqueue stores t. If t.Key is held by a task still waiting or running, it
// stores nothing and returns that task's id with existing set. It returns
// an error for an empty ID or Kind, an ID already stored, MaxAttempts below
// 1, or a negative Delay or Timeout.
func (s *MemStore) Enqueue(ctx context.Context, t errand.NewTask) (string, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	switch {
	case t.ID == "":
		return "", false, errors.New("errandtest: Enqueue: empty task ID")
	case t.Kind == "":
		return "", false, fmt.Errorf("errandtest: Enqueue %s: empty Kind", t.ID)
	case t.MaxAttempts < 1:
		return "", false, fmt.Errorf("errandtest: Enqueue %s: MaxAttempts is %d, want at least 1", t.ID, t.MaxAttempts)
	case t.Delay < 0:
		return "", false, fmt.Errorf("errandtest: Enqueue %s: negative Delay %v", t.ID, t.Delay)
	case t.Timeout < 0:
		return "", false, fmt.Errorf("errandtest: Enqueue %s: negative Timeout %v", t.ID, t.Timeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if _, dup := s.tasks[t.ID]; dup {
		return "", false, fmt.Errorf("errandtest: Enqueue: task %s is stored already", t.ID)
	}
	if holder := s.keys[t.Key]; t.Key != "" && holder != nil {
		return holder.rec.ID, true, nil
	}
	now := time.Now()
	runAt := t.RunAt
	if runAt.IsZero() {
		runAt = now.Add(t.Delay)
	}
	st := errand.Queued
	if runAt.After(now) {
		st = errand.Scheduled
	}
	s.insertLocked(&memTask{
		rec: errand.TaskRecord{ID: t.ID, Kind: t.Kind, Status: st, Priority: t.Priority,
			MaxAttempts: t.MaxAttempts, Args: slices.Clone(t.Args), Key: t.Key, RunAt: runAt, Created: now},
		timeout: t.Timeout,
	}, now)
	return t.ID, false, nil
}

// insertLocked stores a new waiting task and tells the listeners if it is
// due.
func (s *MemStore) insertLocked(mt *memTask, now time.Time) {
	s.seq++
	mt.seq = s.seq
	s.tasks[mt.rec.ID] = mt
	s.waiting[mt] = struct{}{}
	if mt.rec.Key != "" {
		s.keys[mt.rec.Key] = mt
	}
	if !mt.rec.RunAt.After(now) {
		s.notifyLocked(true, "")
	}
}

// Claim leases up to n due tasks of the named kinds for d, highest
// priority first, then earliest due, then first stored. It returns an error
// if d is not positive.
func (s *MemStore) Claim(ctx context.Context, kinds []string, n int, d time.Duration, holder string) ([]errand.Claim, error) {
	if d <= 0 {
		return nil, fmt.Errorf("errandtest: Claim: lease %v, want more than 0", d)
	}
	if n <= 0 || len(kinds) == 0 {
		return nil, nil
	}
	now, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var due []*memTask
	for mt := range s.waiting {
		if !mt.rec.RunAt.After(now) && slices.Contains(kinds, mt.rec.Kind) {
			due = append(due, mt)
		}
	}
	slices.SortFunc(due, func(a, b *memTask) int {
		if c := cmp.Compare(b.rec.Priority, a.rec.Priority); c != 0 {
			return c
		}
		if c := a.rec.RunAt.Compare(b.rec.RunAt); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	due = due[:min(n, len(due))]
	claims := make([]errand.Claim, len(due))
	for i, mt := range due {
		delete(s.waiting, mt)
		s.running[mt] = struct{}{}
		mt.token = uuid.NewString()
		mt.leaseUntil = now.Add(d)
		mt.rec.Status = errand.Running
		mt.rec.Attempts++
		mt.rec.Holder = holder
		mt.rec.Started = now
		claims[i] = errand.Claim{
			Lease:    errand.Lease{ID: mt.rec.ID, Token: mt.token},
			Kind:     mt.rec.Kind,
			Args:     slices.Clone(mt.rec.Args),
			Priority: mt.rec.Priority, Attempt: mt.rec.Attempts, MaxAttempts: mt.rec.MaxAttempts,
			Timeout: mt.timeout, Schedule: mt.rec.Schedule,
		}
	}
	return claims, nil
}

// heldLocked returns the running task l leases, or nil if l is no longer
// held: another claim's token, not running, or past its expiry.
func (s *MemStore) heldLocked(l errand.Lease, now time.Time) *memTask {
	mt := s.tasks[l.ID]
	if mt == nil || mt.rec.Status != errand.Running || mt.token != l.Token || l.Token == "" || !now.Before(mt.leaseUntil) {
		return nil
	}
	return mt
}

// Heartbeat renews the leases still held for d and returns the others.
func (s *MemStore) Heartbeat(ctx context.Context, leases []errand.Lease, d time.Duration) ([]errand.Lease, error) {
	if d <= 0 {
		return nil, fmt.Errorf("errandtest: Heartbeat: lease %v, want more than 0", d)
	}
	now, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var lost []errand.Lease
	for _, l := range leases {
		if mt := s.heldLocked(l, now); mt != nil {
			mt.leaseUntil = now.Add(d)
		} else {
			lost = append(lost, l)
		}
	}
	return lost, nil
}

// Complete records the outcome of the attempt holding l: Succeeded, Failed
// and Canceled are final; Retrying makes the task due again o.RetryIn from
// now. It returns errand.ErrLeaseLost if l is no longer held, and an error
// for another Status or a negative RetryIn.
func (s *MemStore) Complete(ctx context.Context, l errand.Lease, o errand.Outcome) error {
	if err := checkOutcome("Complete", l, o); err != nil {
		return err
	}
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	if !s.completeLocked(l, o, now) {
		return fmt.Errorf("errandtest: task %s: %w", l.ID, errand.ErrLeaseLost)
	}
	return nil
}

// CompleteMany records the outcomes as Complete does, in order, under one
// lock (so at one instant of the store's clock), and returns the leases no
// longer held, in order: a lease repeated after its first outcome is
// refused, its task being released by then. An outcome with another Status
// or a negative RetryIn is an error, and then nothing is recorded. It
// implements errand.BatchCompleter.
func (s *MemStore) CompleteMany(ctx context.Context, cs []errand.Completion) (refused []errand.Lease, err error) {
	for _, c := range cs {
		if err := checkOutcome("CompleteMany", c.Lease, c.Outcome); err != nil {
			return nil, err
		}
	}
	now, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	for _, c := range cs {
		if !s.completeLocked(c.Lease, c.Outcome, now) {
			refused = append(refused, c.Lease)
		}
	}
	return refused, nil
}

var _ errand.BatchCompleter = (*MemStore)(nil)

// checkOutcome returns an error for an outcome Complete cannot record.
func checkOutcome(op string, l errand.Lease, o errand.Outcome) error {
	switch o.Status {
	case errand.Succeeded, errand.Failed, errand.Canceled:
	case errand.Retrying:
		if o.RetryIn < 0 {
			return fmt.Errorf("errandtest: %s %s: negative RetryIn %v", op, l.ID, o.RetryIn)
		}
	default:
		return fmt.Errorf("errandtest: %s %s: outcome status %v, want succeeded, failed, canceled or retrying", op, l.ID, o.Status)
	}
	return nil
}

// completeLocked records o (checked by checkOutcome) for the attempt holding
// l, and reports false if l is no longer held.
func (s *MemStore) completeLocked(l errand.Lease, o errand.Outcome, now time.Time) bool {
	mt := s.heldLocked(l, now)
	if mt == nil {
		return false
	}
	delete(s.running, mt)
	mt.token, mt.leaseUntil, mt.rec.Holder = "", time.Time{}, ""
	mt.rec.Error = o.Error
	if o.Status == errand.Retrying {
		mt.rec.Status = errand.Retrying
		mt.rec.RunAt = now.Add(o.RetryIn)
		s.waiting[mt] = struct{}{}
		if o.RetryIn == 0 {
			s.notifyLocked(true, "")
		}
		return true
	}
	if o.Status == errand.Succeeded {
		mt.rec.Result = slices.Clone(o.Result)
	}
	s.finishLocked(mt, o.Status, now)
	return true
}

// finishLocked makes a task that no longer waits or runs final.
func (s *MemStore) finishLocked(mt *memTask, st errand.Status, now time.Time) {
	mt.rec.Status = st
	mt.rec.Finished = now
	if mt.rec.Key != "" && s.keys[mt.rec.Key] == mt {
		delete(s.keys, mt.rec.Key)
	}
	s.notifyLocked(false, mt.rec.ID)
}

// Release hands the leased tasks back, due at once at their place in the
// claim order, without spending their attempt. Leases no longer held are
// ignored.
func (s *MemStore) Release(ctx context.Context, leases []errand.Lease) error {
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	released := false
	for _, l := range leases {
		mt := s.heldLocked(l, now)
		if mt == nil {
			continue
		}
		delete(s.running, mt)
		s.waiting[mt] = struct{}{}
		mt.token, mt.leaseUntil, mt.rec.Holder = "", time.Time{}, ""
		mt.rec.Status = errand.Queued
		mt.rec.Attempts--
		released = true
	}
	if released {
		s.notifyLocked(true, "")
	}
	return nil
}

// Cancel cancels a waiting task so that it never runs; false if the task
// is running, finished or unknown.
func (s *MemStore) Cancel(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	mt := s.tasks[id]
	if mt == nil || !waitingStatus(mt.rec.Status) {
		return false, nil
	}
	delete(s.waiting, mt)
	s.finishLocked(mt, errand.Canceled, time.Now())
	return true, nil
}

// Lookup returns copies of the stored tasks with the given ids, in the
// order asked; unknown ids are left out.
func (s *MemStore) Lookup(ctx context.Context, ids []string) ([]errand.TaskRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]errand.TaskRecord, 0, len(ids))
	for _, id := range ids {
		if mt := s.tasks[id]; mt != nil {
			rec := mt.rec
			rec.Args, rec.Result = slices.Clone(rec.Args), slices.Clone(rec.Result)
			recs = append(recs, rec)
		}
	}
	return recs, nil
}

// Schedule registers r, first due at first, or updates the schedule with
// its ID, which keeps its next due time unless its Spec changed. It returns
// an error for an empty ID, Kind or Spec, MaxAttempts below 1 or a negative
// Timeout.
func (s *MemStore) Schedule(ctx context.Context, r errand.ScheduleRecord, first time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case r.ID == "":
		return errors.New("errandtest: Schedule: empty schedule ID")
	case r.Kind == "" || r.Spec == "":
		return fmt.Errorf("errandtest: Schedule %q: empty Kind or Spec", r.ID)
	case r.MaxAttempts < 1:
		return fmt.Errorf("errandtest: Schedule %q: MaxAttempts is %d, want at least 1", r.ID, r.MaxAttempts)
	case r.Timeout < 0:
		return fmt.Errorf("errandtest: Schedule %q: negative Timeout %v", r.ID, r.Timeout)
	}
	r.Args = slices.Clone(r.Args)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.initLocked()
	if old := s.schedules[r.ID]; old != nil {
		if old.rec.Spec != r.Spec {
			old.next = first
		}
		old.rec = r
		return nil
	}
	s.schedules[r.ID] = &memSchedule{rec: r, next: first}
	return nil
}

// Unschedule removes the schedule id; runs already stored stay. An unknown
// id is not an error.
func (s *MemStore) Unschedule(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.schedules, id)
	return nil
}

// FireSchedules stores a run, due now, of every schedule that is due and
// whose previous run no longer waits or runs, and moves every due schedule
// to next(spec, now): due times missed meanwhile coalesce into that one. A
// schedule for which next fails stays due and its error is returned (after
// the others have fired); one whose next time is zero never fires again.
func (s *MemStore) FireSchedules(ctx context.Context, next func(spec string, after time.Time) (time.Time, error)) (int, error) {
	now, err := s.lock(ctx)
	if err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.schedules))
	for id, sc := range s.schedules {
		if !sc.next.IsZero() && !sc.next.After(now) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	fired := 0
	var errs []error
	for _, id := range ids {
		sc := s.schedules[id]
		n, err := next(sc.rec.Spec, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("errandtest: schedule %q: %w", id, err))
			continue
		}
		sc.next = n
		if sc.last != nil && !sc.last.rec.Status.Final() {
			continue // the previous run waits or runs: runs never overlap
		}
		mt := &memTask{
			rec: errand.TaskRecord{ID: uuid.NewString(), Kind: sc.rec.Kind, Status: errand.Queued,
				Priority: sc.rec.Priority, MaxAttempts: sc.rec.MaxAttempts, Args: slices.Clone(sc.rec.Args),
				Schedule: id, RunAt: now, Created: now},
			timeout: sc.rec.Timeout,
		}
		s.insertLocked(mt, now)
		sc.last = mt
		fired++
	}
	return fired, errors.Join(errs...)
}

// LostLeaseAllowance is how many lost leases beyond its MaxAttempts a task
// may have before Maintain gives it up as a poison task (it fails), as
// errandpg does: a task that kills every process running it must not come
// back forever.
const LostLeaseAllowance = 3

// Maintain makes every task whose lease expired due again at once (its
// spent attempt still counts, but it runs again even past MaxAttempts: a
// lost lease is not the handler's failure, up to LostLeaseAllowance more),
// and deletes the tasks finished more than Retention ago when Retention is
// set.
func (s *MemStore) Maintain(ctx context.Context) error {
	now, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer s.mu.Unlock()
	recovered := false
	for mt := range s.running {
		if now.Before(mt.leaseUntil) {
			continue
		}
		delete(s.running, mt)
		mt.rec.Error = fmt.Sprintf("errandtest: lease expired (held by %s)", mt.rec.Holder)
		mt.token, mt.leaseUntil, mt.rec.Holder = "", time.Time{}, ""
		if mt.rec.Attempts >= mt.rec.MaxAttempts+LostLeaseAllowance {
			mt.rec.Error += fmt.Sprintf(" on attempt %d: given up, a lease lost %d times more than MaxAttempts allows",
				mt.rec.Attempts, LostLeaseAllowance)
			s.finishLocked(mt, errand.Failed, now)
			continue
		}
		s.waiting[mt] = struct{}{}
		mt.rec.Status = errand.Retrying
		mt.rec.RunAt = now
		recovered = true
	}
	if recovered {
		s.notifyLocked(true, "")
	}
	if s.Retention > 0 {
		for id, mt := range s.tasks {
			if mt.rec.Status.Final() && now.Sub(mt.rec.Finished) > s.Retention {
				delete(s.tasks, id)
			}
		}
	}
	return nil
}

// ExpireLease makes the lease of the running task id expire now, as if its
// holder had stopped heartbeating: the holder's next Heartbeat reports it
// lost and its Complete is refused with errand.ErrLeaseLost, and the next
// Maintain makes the task due again. It reports whether the task was
// running. For tests of lease loss.
func (s *MemStore) ExpireLease(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	mt := s.tasks[id]
	if mt == nil || mt.rec.Status != errand.Running {
		return false
	}
	mt.leaseUntil = time.Now()
	return true
}

// Listen calls work whenever a task becomes due at once (stored due,
// handed back, retried without delay, recovered, or a schedule's run) and
// done with the id of every task that becomes final, until ctx ends; then
// it returns nil. Tasks that come due later are not announced: the queue
// polls for them. work and done are called on Listen's own goroutine, one
// at a time, never after Listen returns; the store never waits for them.
func (s *MemStore) Listen(ctx context.Context, work func(), done func(id string)) error {
	if work == nil || done == nil {
		return errors.New("errandtest: Listen: nil work or done")
	}
	l := &memListener{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	s.initLocked()
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.wake:
		}
		l.mu.Lock()
		w, ids := l.work, l.done
		l.work, l.done = false, nil
		l.mu.Unlock()
		if w {
			work()
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				return nil
			}
			done(id)
		}
	}
}

// notifyLocked tells every listener that work may be due, or that the task
// id finished (id != "").
func (s *MemStore) notifyLocked(work bool, id string) {
	for l := range s.listeners {
		l.mu.Lock()
		if work {
			l.work = true
		}
		if id != "" {
			l.done = append(l.done, id)
		}
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}
