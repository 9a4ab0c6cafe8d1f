package errandpg

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/errandgo/errand"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is errand's durable store on PostgreSQL: set it as Config.Store
// (errand.Config{Store: errandpg.New(pool)}) and the tasks of named kinds
// (errand.Define) are stored in errand_tasks, shared by every process using
// the same database and schema, and survive restarts and kill -9. Create it
// with New; the schema must be migrated first (Migrate).
//
// A Store holds no connection of its own and starts no goroutine: every
// method runs on the pool it was given, except Listen, which holds one
// dedicated connection (outside the pool) while it runs. The queue calls
// it; applications rarely need to. It is safe for concurrent use. The pool
// stays the caller's: close it after the queues using the Store are closed.
type Store struct {
	pool *pgxpool.Pool
	err  error // an invalid option or a nil pool, returned by every method
	settings

	onListen func(*listener) // tests only: told of the listener Listen starts
}

var (
	_ errand.Store          = (*Store)(nil)
	_ errand.BatchCompleter = (*Store)(nil)
)

// settings are what the options set.
type settings struct {
	retention time.Duration
	notify    bool
	batch     int
}

// Defaults of the options.
const (
	defaultRetention = 24 * time.Hour
	defaultBatch     = 1000
)

// Option configures a Store (New).
type Option func(*settings) error

// WithRetention sets how long finished tasks (succeeded, failed, canceled)
// are kept, for futures, Lookup and the dashboard, before Maintain deletes
// them for real; it is counted from the time each task finished, by the
// database clock. The default is 24 hours. d must be positive (New records
// the error otherwise and every method returns it). A Kind.Future or
// Queue.Lookup of a deleted task returns errand.ErrNotFound.
func WithRetention(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("errandpg: WithRetention(%v): want a positive duration", d)
		}
		s.retention = d
		return nil
	}
}

// WithNotifications turns LISTEN/NOTIFY wake-ups on (the default) or off.
// Off, Listen returns an error at once and queues rely on polling alone
// (Config.PollInterval): pickup then takes up to a poll interval, and
// futures resolve on the next poll. Turn them off behind a transaction
// pooler (PgBouncer in transaction mode), which accepts LISTEN and then
// loses the notifications; LISTEN needs a session connection (a direct one,
// or a session pooler). The database triggers still notify; with nobody
// listening that costs almost nothing.
func WithNotifications(on bool) Option {
	return func(s *settings) error {
		s.notify = on
		return nil
	}
}

// WithMaintainBatch sets the most rows one statement of Maintain touches:
// expired leases recovered, or finished tasks deleted, per statement
// (Maintain repeats it until it has done all). Smaller batches hold row
// locks for less time and make shorter transactions; larger ones make
// fewer round trips. The default is 1000; n must be at least 1.
func WithMaintainBatch(n int) Option {
	return func(s *settings) error {
		if n < 1 {
			return fmt.Errorf("errandpg: WithMaintainBatch(%d): want at least 1", n)
		}
		s.batch = n
		return nil
	}
}

// New returns a Store on pool's database, in the schema its connections use
// (search_path; see DB), which Migrate must have brought up to date. It
// never fails nor panics: a nil pool or an invalid option is kept and
// returned by every method of the Store, so that
// errand.New(errand.Config{Store: errandpg.New(pool)}) stays one
// expression (the queue then reports the error on each store call). New
// costs one small allocation and touches no connection; it is safe for
// concurrent use.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, settings: settings{retention: defaultRetention, notify: true, batch: defaultBatch}}
	if pool == nil {
		s.err = errors.New("errandpg: New: nil *pgxpool.Pool")
		return s
	}
	for i, o := range opts {
		if o == nil {
			s.err = fmt.Errorf("errandpg: New: option %d is nil", i)
			return s
		}
		if err := o(&s.settings); err != nil {
			s.err = err
			return s
		}
	}
	return s
}

// Err returns the error New recorded (a nil pool or an invalid option), or
// nil if the Store is usable. Every other method returns it too.
func (s *Store) Err() error {
	if s == nil {
		return errors.New("errandpg: nil *Store (use errandpg.New)")
	}
	return s.err
}

// parseID reads a task id or lease token.
func parseID(what, s string) ([16]byte, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return [16]byte{}, fmt.Errorf("errandpg: %s %q is not a UUID", what, s)
	}
	return u, nil
}

func idString(id [16]byte) string { return uuid.UUID(id).String() }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Enqueue stores t; see errand.Store. If t.Key is held by a task that waits
// or runs, nothing is stored and that task's id is returned with existing
// set. t.RunAt, if not zero, is the absolute due time; otherwise the task is
// due t.Delay after now by the database clock. One INSERT, plus one SELECT
// when the key is held.
func (s *Store) Enqueue(ctx context.Context, t errand.NewTask) (id string, existing bool, err error) {
	if err := s.Err(); err != nil {
		return "", false, err
	}
	return enqueue(ctx, s.pool, t)
}

// maxKeyRounds bounds the rounds of insert-then-read-the-holder while the
// holder of a unique key keeps finishing in between.
const maxKeyRounds = 10

// enqueue stores t through db: the pool, or the caller's transaction.
func enqueue(ctx context.Context, db DB, t errand.NewTask) (id string, existing bool, err error) {
	nt, err := toNewTask(t)
	if err != nil {
		return "", false, err
	}
	for range maxKeyRounds {
		ok, err := insertTask(ctx, db, nt)
		if err != nil {
			return "", false, err
		}
		if ok {
			return idString(nt.id), false, nil
		}
		holder, held, err := uniqueKeyHolder(ctx, db, nt.uniqueKey)
		if err != nil {
			return "", false, err
		}
		if held {
			return idString(holder), true, nil
		}
		// The holder finished between the insert and the read: try again.
	}
	return "", false, fmt.Errorf("errandpg: unique key %q: its holder kept changing; gave up after %d rounds", nt.uniqueKey, maxKeyRounds)
}

// toNewTask checks t and converts it to the SQL layer's form.
func toNewTask(t errand.NewTask) (newTask, error) {
	id, err := parseID("task id", t.ID)
	switch {
	case err != nil:
		return newTask{}, err
	case t.Kind == "":
		return newTask{}, errors.New("errandpg: task with an empty Kind")
	case t.MaxAttempts < 1 || t.MaxAttempts > math.MaxInt32:
		return newTask{}, fmt.Errorf("errandpg: task MaxAttempts is %d, want 1 to %d", t.MaxAttempts, math.MaxInt32)
	case t.Priority < math.MinInt32 || t.Priority > math.MaxInt32:
		return newTask{}, fmt.Errorf("errandpg: task Priority %d does not fit in 32 bits", t.Priority)
	case t.Timeout < 0:
		return newTask{}, fmt.Errorf("errandpg: task Timeout is %v, want 0 (none) or more", t.Timeout)
	}
	return newTask{id: id, kind: t.Kind, args: t.Args, priority: t.Priority, runAt: t.RunAt,
		delay: t.Delay, maxAttempts: t.MaxAttempts, timeout: t.Timeout, uniqueKey: t.Key}, nil
}

// Claim leases up to n due tasks of the named kinds for d to holder, in run
// order (priority, then due time, then id); see errand.Store. One statement
// (FOR UPDATE SKIP LOCKED on the fetch index): concurrent claimers never
// claim the same task and never wait for each other.
func (s *Store) Claim(ctx context.Context, kinds []string, n int, d time.Duration, holder string) ([]errand.Claim, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if d <= 0 {
		return nil, fmt.Errorf("errandpg: Claim: lease of %v, want a positive duration", d)
	}
	if n <= 0 || len(kinds) == 0 {
		return nil, nil
	}
	cs, err := fetch(ctx, s.pool, kinds, n, d, holder)
	if err != nil {
		return nil, err
	}
	out := make([]errand.Claim, len(cs))
	for i, c := range cs {
		out[i] = errand.Claim{
			Lease:       errand.Lease{ID: idString(c.id), Token: idString(c.leaseToken)},
			Kind:        c.kind,
			Args:        c.args,
			Priority:    c.priority,
			Attempt:     c.attempt,
			MaxAttempts: c.maxAttempts,
			Timeout:     c.timeout,
			Schedule:    deref(c.scheduleID),
		}
	}
	return out, nil
}

// toLeases converts leases, leaving out (and returning in bad) those that
// cannot name a stored claim; ok[i] was converted from ls[from[i]].
func toLeases(ls []errand.Lease) (ok []lease, from []int, bad []errand.Lease) {
	ok = make([]lease, 0, len(ls))
	from = make([]int, 0, len(ls))
	for i, l := range ls {
		id, err1 := parseID("task id", l.ID)
		tok, err2 := parseID("lease token", l.Token)
		if err1 != nil || err2 != nil {
			bad = append(bad, l)
			continue
		}
		ok = append(ok, lease{id: id, token: tok})
		from = append(from, i)
	}
	return ok, from, bad
}

// Heartbeat renews the leases still held for d, by the database clock, and
// returns the others (expired and recovered by another process, handed
// back, or finished); see errand.Store. One statement for all, which never
// waits for a row lock: a task another statement is updating at that moment
// (its outcome being recorded, or its lease recovered) is reported held and
// renewed by the next Heartbeat, if still held.
func (s *Store) Heartbeat(ctx context.Context, leases []errand.Lease, d time.Duration) (lost []errand.Lease, err error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	if d <= 0 {
		return nil, fmt.Errorf("errandpg: Heartbeat: lease of %v, want a positive duration", d)
	}
	ls, from, bad := toLeases(leases)
	if len(ls) == 0 {
		return bad, nil
	}
	held, err := heartbeat(ctx, s.pool, ls, d)
	if err != nil {
		return nil, err
	}
	lost = bad
	for i, l := range ls {
		if !held[l.id] {
			lost = append(lost, leases[from[i]])
		}
	}
	return lost, nil
}

// Complete records the outcome of the attempt holding l; see errand.Store.
// Succeeded, Failed and Canceled make the task final (and notify its
// futures); Retrying makes it due again o.RetryIn from now, by the database
// clock. It returns errand.ErrLeaseLost if l is no longer held: the outcome
// of a stale attempt is refused. One statement, fenced by l's token.
func (s *Store) Complete(ctx context.Context, l errand.Lease, o errand.Outcome) error {
	if err := s.Err(); err != nil {
		return err
	}
	id, err := parseID("task id", l.ID)
	if err != nil {
		return err
	}
	tok, err := parseID("lease token", l.Token)
	if err != nil {
		return err
	}
	ls := lease{id: id, token: tok}
	var held bool
	switch o.Status {
	case errand.Succeeded:
		held, err = finish(ctx, s.pool, ls, stateSucceeded, o.Result, "")
	case errand.Failed:
		held, err = finish(ctx, s.pool, ls, stateFailed, nil, o.Error)
	case errand.Canceled:
		held, err = finish(ctx, s.pool, ls, stateCanceled, nil, o.Error)
	case errand.Retrying:
		held, err = retry(ctx, s.pool, ls, o.Error, o.RetryIn)
	default:
		return fmt.Errorf("errandpg: Complete: outcome status %v, want Succeeded, Failed, Canceled or Retrying", o.Status)
	}
	if err != nil {
		return err
	}
	if !held {
		return fmt.Errorf("task %s: %w", l.ID, errand.ErrLeaseLost)
	}
	return nil
}

// CompleteMany records the outcomes of many attempts, each as Complete does
// and fenced by its lease, and returns the leases that were no longer held
// (their outcomes refused); see errand.BatchCompleter. A lease that is not
// a pair of UUIDs is refused, as is a lease repeated in cs after its first
// outcome (the first released it). An outcome status other than Succeeded,
// Failed, Canceled or Retrying is an error, and then nothing is recorded.
// An empty cs costs nothing. One statement for the whole batch (its commit
// sends one notification per 200 tasks finished, see Migrate), so a busy
// queue pays one round trip and one commit per batch. Safe for concurrent
// use.
func (s *Store) CompleteMany(ctx context.Context, cs []errand.Completion) (refused []errand.Lease, err error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	os := make([]outcome, 0, len(cs))
	sent := make([]bool, len(cs)) // cs[i] is in os
	ls := make([]lease, len(cs))  // cs[i]'s lease, if sent
	seen := make(map[lease]bool, len(cs))
	for i, c := range cs {
		var o outcome
		switch c.Status {
		case errand.Succeeded:
			o.state, o.result = stateSucceeded, c.Result
		case errand.Failed:
			o.state, o.errMsg = stateFailed, nullString(c.Error)
		case errand.Canceled:
			o.state, o.errMsg = stateCanceled, nullString(c.Error)
		case errand.Retrying:
			// As Complete: the error is stored even when empty.
			o.state, o.errMsg, o.retryIn = stateRetrying, &c.Error, c.RetryIn
		default:
			return nil, fmt.Errorf("errandpg: CompleteMany: completion %d (task %s): outcome status %v, want Succeeded, Failed, Canceled or Retrying", i, c.ID, c.Status)
		}
		id, err1 := parseID("task id", c.ID)
		tok, err2 := parseID("lease token", c.Token)
		o.lease = lease{id: id, token: tok}
		if err1 != nil || err2 != nil || seen[o.lease] {
			continue // refused
		}
		seen[o.lease] = true
		sent[i], ls[i] = true, o.lease
		os = append(os, o)
	}
	var done map[lease]bool
	if len(os) > 0 {
		if done, err = completeMany(ctx, s.pool, os); err != nil {
			return nil, err
		}
	}
	for i, c := range cs {
		if !sent[i] || !done[ls[i]] {
			refused = append(refused, c.Lease)
		}
	}
	return refused, nil
}

// Release hands the leased tasks back at once without spending their
// attempt, keeping their place in the run order; leases no longer held are
// ignored, as are tasks another statement is updating at that moment (being
// completed or recovered): Release never waits for a row lock. See
// errand.Store. One statement for all.
func (s *Store) Release(ctx context.Context, leases []errand.Lease) error {
	if err := s.Err(); err != nil {
		return err
	}
	ls, _, _ := toLeases(leases)
	if len(ls) == 0 {
		return nil
	}
	_, err := handBackAll(ctx, s.pool, ls)
	return err
}

// Cancel cancels a waiting task so that it never runs, and reports whether
// it did: false if it is running, finished, or unknown (an id that is not a
// UUID is unknown). See errand.Store. One statement.
func (s *Store) Cancel(ctx context.Context, id string) (bool, error) {
	if err := s.Err(); err != nil {
		return false, err
	}
	u, err := parseID("task id", id)
	if err != nil {
		return false, nil
	}
	return cancelWaiting(ctx, s.pool, u)
}

// Lookup returns the stored tasks with the given ids, in any order; unknown
// ids (never stored, deleted by retention, or not UUIDs) are left out. See
// errand.Store. One statement (a primary key probe per id).
func (s *Store) Lookup(ctx context.Context, ids []string) ([]errand.TaskRecord, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	us := make([][16]byte, 0, len(ids))
	for _, id := range ids {
		if u, err := parseID("task id", id); err == nil {
			us = append(us, u)
		}
	}
	if len(us) == 0 {
		return nil, nil
	}
	rows, err := getTasks(ctx, s.pool, us)
	if err != nil {
		return nil, err
	}
	recs := make([]errand.TaskRecord, len(rows))
	for i, r := range rows {
		recs[i] = toRecord(r)
	}
	return recs, nil
}

// statusOf maps a stored state to the core's Status, whose String is the
// state's name; 0 for an unknown state.
func statusOf(state string) errand.Status {
	for st := errand.Scheduled; st <= errand.Canceled; st++ {
		if st.String() == state {
			return st
		}
	}
	return 0
}

func toRecord(r taskRow) errand.TaskRecord {
	rec := errand.TaskRecord{
		ID:          idString(r.id),
		Kind:        r.kind,
		Status:      statusOf(r.state),
		Priority:    r.priority,
		Attempts:    r.attempts,
		MaxAttempts: r.maxAttempts,
		Args:        r.args,
		Result:      r.result,
		Error:       deref(r.lastError),
		Key:         deref(r.uniqueKey),
		Schedule:    deref(r.scheduleID),
		RunAt:       r.runAt,
		Created:     r.createdAt,
		Started:     deref(r.startedAt),
		Finished:    deref(r.finishedAt),
	}
	if r.state == stateRunning {
		rec.Holder = deref(r.leasedBy)
	}
	return rec
}

// Schedule registers the recurring schedule rec, or updates the one with
// its ID: an existing schedule keeps its next due time unless its Spec
// changed; a new one (or a changed Spec) is first due at first. See
// errand.Store. One statement.
func (s *Store) Schedule(ctx context.Context, rec errand.ScheduleRecord, first time.Time) error {
	if err := s.Err(); err != nil {
		return err
	}
	switch {
	case rec.ID == "":
		return errors.New("errandpg: Schedule: empty schedule ID")
	case rec.Kind == "":
		return fmt.Errorf("errandpg: Schedule %q: empty Kind", rec.ID)
	case rec.Spec == "":
		return fmt.Errorf("errandpg: Schedule %q: empty Spec", rec.ID)
	case first.IsZero():
		return fmt.Errorf("errandpg: Schedule %q: zero first due time", rec.ID)
	case rec.MaxAttempts < 1 || rec.MaxAttempts > math.MaxInt32:
		return fmt.Errorf("errandpg: Schedule %q: MaxAttempts is %d, want 1 to %d", rec.ID, rec.MaxAttempts, math.MaxInt32)
	case rec.Priority < math.MinInt32 || rec.Priority > math.MaxInt32:
		return fmt.Errorf("errandpg: Schedule %q: Priority %d does not fit in 32 bits", rec.ID, rec.Priority)
	case rec.Timeout < 0:
		return fmt.Errorf("errandpg: Schedule %q: Timeout is %v, want 0 (none) or more", rec.ID, rec.Timeout)
	}
	return upsertSchedule(ctx, s.pool, schedule{id: rec.ID, kind: rec.Kind, spec: rec.Spec, args: rec.Args,
		priority: rec.Priority, maxAttempts: rec.MaxAttempts, timeout: rec.Timeout, firstRun: first})
}

// Unschedule removes the recurring schedule id, for every process; runs
// already stored stay (their Schedule becomes ""). Removing a schedule that
// does not exist is not an error. See errand.Store. One statement.
func (s *Store) Unschedule(ctx context.Context, id string) error {
	if err := s.Err(); err != nil {
		return err
	}
	_, err := deleteSchedule(ctx, s.pool, id)
	return err
}

// scheduleKeyPrefix prefixes the unique key of a schedule's runs: while one
// run waits or runs, the next is skipped. Application keys (WithKey) should
// not start with it.
const scheduleKeyPrefix = "errand:schedule:"

// dueBatch is how many due schedules FireSchedules reads at once.
const dueBatch = 100

// FireSchedules stores a run of every due schedule, once per due time
// across all processes, and moves each to its next due time; see
// errand.Store. The next due time is next(spec, due); if that is not after
// the database's now (runs were missed), it is next(spec, now), so missed
// runs coalesce into the one stored now. A zero next time means the
// schedule never fires again. Each schedule is claimed and its run inserted
// in one transaction; the run's unique key is "errand:schedule:" + the
// schedule's ID, so while the previous run waits or runs, no run is stored
// (the due time still passes: the run is skipped). A schedule whose next
// fails is left due and its error returned, after the others fired.
func (s *Store) FireSchedules(ctx context.Context, next func(spec string, after time.Time) (time.Time, error)) (int, error) {
	if err := s.Err(); err != nil {
		return 0, err
	}
	if next == nil {
		return 0, errors.New("errandpg: FireSchedules: nil next")
	}
	stored := 0
	var errs []error
	failed := make(map[string]bool)
	for {
		due, err := dueSchedules(ctx, s.pool, dueBatch)
		if err != nil {
			return stored, err
		}
		progress := false
		for _, d := range due {
			if failed[d.id] {
				continue
			}
			n, err := nextDue(next, d)
			if err == nil {
				var ok bool
				ok, err = s.fire(ctx, d, n)
				if ok {
					stored++
				}
			}
			if err != nil {
				failed[d.id] = true
				errs = append(errs, err)
				continue
			}
			progress = true
		}
		if len(due) < dueBatch || !progress {
			return stored, errors.Join(errs...)
		}
	}
}

// nextDue computes the due time after d's: the next one after d.due, or, if
// that is not after the database's now, the next one after now.
func nextDue(next func(string, time.Time) (time.Time, error), d dueSchedule) (time.Time, error) {
	n, err := next(d.spec, d.due)
	if err == nil && !n.IsZero() && !n.After(d.now) {
		n, err = next(d.spec, d.now)
		if err == nil && !n.IsZero() && !n.After(d.now) {
			err = fmt.Errorf("next due time %v is not after %v", n, d.now)
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("errandpg: schedule %q (%s): %w", d.id, d.spec, err)
	}
	return n, nil
}

// fire claims d's due time and stores its run in one transaction; stored
// reports whether a run was stored (false if another process fired it
// first, or the previous run still waits or runs).
func (s *Store) fire(ctx context.Context, d dueSchedule, next time.Time) (stored bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		claimed, err := claimSchedule(ctx, tx, d.id, d.due, next)
		if err != nil || !claimed {
			return err
		}
		stored, err = insertTask(ctx, tx, newTask{id: uuid.New(), kind: d.kind, args: d.args,
			priority: d.priority, maxAttempts: d.maxAttempts, timeout: d.timeout,
			uniqueKey: scheduleKeyPrefix + d.id, scheduleID: d.id})
		return err
	})
	if err != nil {
		return false, err
	}
	return stored, nil
}

// Maintain makes tasks whose lease expired claimable again (their attempt
// counts; they are due at once, even past MaxAttempts: a lost lease is not
// the handler's failure; but a task that has lost 3 leases more than its
// MaxAttempts allow fails, as a poison task) and deletes, for real, tasks finished longer ago
// than the retention (WithRetention); see errand.Store. Both run in batches
// (WithMaintainBatch) with SKIP LOCKED, so any number of processes may call
// it at once; it stops when there is nothing left or ctx ends. Costs two
// index range scans when there is nothing to do.
func (s *Store) Maintain(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return err
	}
	for {
		ids, err := recoverExpired(ctx, s.pool, s.batch)
		if err != nil {
			return err
		}
		if len(ids) < s.batch {
			break
		}
	}
	for {
		n, err := deleteFinished(ctx, s.pool, s.retention, s.batch)
		if err != nil {
			return err
		}
		if n < int64(s.batch) {
			return nil
		}
	}
}
