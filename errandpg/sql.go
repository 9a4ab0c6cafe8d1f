package errandpg

// The SQL layer of the durable store: every statement errandpg runs against
// errand_tasks and errand_schedules, each behind a small function that takes
// a DB (a pool, a connection or the caller's transaction). The Store built on
// the core's Store interface will call these; sql_test.go proves what each
// one guarantees against a real PostgreSQL.
//
// Conventions:
//   - The database clock decides: due times, leases and retention cut-offs
//     are computed with now() in SQL from durations passed in milliseconds,
//     never from the caller's clock.
//   - Every write by the worker running a task is fenced by (id,
//     lease_token): a fresh token is drawn on each claim, so a worker whose
//     lease expired and was recovered (or handed back) updates 0 rows.
//   - The state lists in the statements are literals matching the partial
//     indexes' predicates exactly, so the planner can use those indexes.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Task states, as stored in errand_tasks.state.
const (
	stateQueued    = "queued"    // waiting, due when inserted
	stateScheduled = "scheduled" // waiting, inserted with a later run_at
	stateRetrying  = "retrying"  // waiting for its next attempt
	stateRunning   = "running"   // leased to a worker
	stateSucceeded = "succeeded" // final
	stateFailed    = "failed"    // final
	stateCanceled  = "canceled"  // final
)

// ms converts d to whole milliseconds for the SQL statements, rounding up so
// a positive duration never becomes 0.
func ms(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// newTask is one task to insert.
type newTask struct {
	id          [16]byte
	kind        string
	args        []byte
	priority    int
	runAt       time.Time     // run_at, if not zero; later than now() makes it 'scheduled'
	delay       time.Duration // if runAt is zero: run_at = now() + delay; > 0 makes it 'scheduled'
	maxAttempts int           // >= 1
	timeout     time.Duration // 0: none
	uniqueKey   string        // "" for none
	scheduleID  string        // "" unless it is a run of a recurring schedule
}

// sqlInsertTask inserts a task unless its unique key is held by a waiting or
// running task (ON CONFLICT on the partial unique index): 0 rows then. The
// due time is $10 if not NULL, else now() + $4 ms; a due time later than
// now() makes the task 'scheduled'.
const sqlInsertTask = `INSERT INTO errand_tasks
	(id, kind, args, state, priority, run_at, max_attempts, timeout_ms, unique_key, schedule_id)
SELECT $1, $2, $3,
	CASE WHEN r.run_at > now() THEN 'scheduled' ELSE 'queued' END,
	$5, r.run_at, $6, $7, $8, $9
FROM (SELECT coalesce($10::timestamptz, now() + $4::bigint * interval '1 millisecond') AS run_at) AS r
ON CONFLICT (unique_key)
	WHERE unique_key IS NOT NULL AND state IN ('queued', 'scheduled', 'retrying', 'running')
	DO NOTHING`

// insertTask inserts t and reports whether it was inserted: false means a
// waiting or running task holds t.uniqueKey (see uniqueKeyHolder).
func insertTask(ctx context.Context, db DB, t newTask) (bool, error) {
	var runAt *time.Time
	if !t.runAt.IsZero() {
		runAt = &t.runAt
	}
	tag, err := db.Exec(ctx, sqlInsertTask, t.id, t.kind, t.args, ms(t.delay), t.priority,
		t.maxAttempts, ms(t.timeout), nullString(t.uniqueKey), nullString(t.scheduleID), runAt)
	if err != nil {
		return false, fmt.Errorf("errandpg: inserting task: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

const sqlUniqueKeyHolder = `SELECT id FROM errand_tasks
WHERE unique_key = $1 AND state IN ('queued', 'scheduled', 'retrying', 'running')`

// uniqueKeyHolder returns the id of the waiting or running task holding key;
// ok is false if none does (any more).
func uniqueKeyHolder(ctx context.Context, db DB, key string) (id [16]byte, ok bool, err error) {
	err = db.QueryRow(ctx, sqlUniqueKeyHolder, key).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return id, false, nil
	}
	if err != nil {
		return id, false, fmt.Errorf("errandpg: reading unique key holder: %w", err)
	}
	return id, true, nil
}

// claimedTask is a task fetched for running: the worker holds it while its
// lease lasts and fences every write with leaseToken.
type claimedTask struct {
	id          [16]byte
	kind        string
	args        []byte
	priority    int
	attempt     int // this attempt, from 1
	maxAttempts int
	timeout     time.Duration
	leaseToken  [16]byte
	leaseUntil  time.Time // by the database clock
	scheduleID  *string
}

// sqlFetch claims up to $1 due tasks of the kinds in $4, by priority
// (highest first), then due time, then id. SKIP LOCKED lets concurrent
// fetchers pass over rows another fetcher is claiming, so no task is claimed
// twice and none waits. The inner SELECT reads errand_tasks_fetch_idx in
// order (TestFetchUsesIndex); the kind is a filter on that scan, so tasks of
// kinds this process does not run, due ahead of its own, are read and passed
// over (cheap while such backlogs are small; a process that runs every kind
// passes over none).
const sqlFetch = `WITH picked AS (
	SELECT id FROM errand_tasks
	WHERE state IN ('queued', 'scheduled', 'retrying') AND run_at <= now()
		AND kind = ANY ($4::text[])
	ORDER BY priority DESC, run_at, id
	LIMIT $1
	FOR UPDATE SKIP LOCKED
), claimed AS (
	UPDATE errand_tasks t SET
		state = 'running',
		attempts = t.attempts + 1,
		lease_token = gen_random_uuid(),
		lease_until = now() + $2::bigint * interval '1 millisecond',
		leased_by = $3,
		started_at = now()
	FROM picked WHERE t.id = picked.id
	RETURNING t.id, t.kind, t.args, t.priority, t.run_at, t.attempts, t.max_attempts,
		t.timeout_ms, t.lease_token, t.lease_until, t.schedule_id
)
SELECT id, kind, args, priority, attempts, max_attempts, timeout_ms, lease_token, lease_until, schedule_id
FROM claimed ORDER BY priority DESC, run_at, id`

// fetch claims up to limit due tasks of the given kinds for worker, each
// leased for lease, in the order they should run.
func fetch(ctx context.Context, db DB, kinds []string, limit int, lease time.Duration, worker string) ([]claimedTask, error) {
	rows, err := db.Query(ctx, sqlFetch, limit, ms(lease), worker, kinds)
	if err != nil {
		return nil, fmt.Errorf("errandpg: fetching tasks: %w", err)
	}
	tasks, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimedTask, error) {
		var c claimedTask
		var timeoutMS int64
		err := row.Scan(&c.id, &c.kind, &c.args, &c.priority, &c.attempt, &c.maxAttempts,
			&timeoutMS, &c.leaseToken, &c.leaseUntil, &c.scheduleID)
		c.timeout = time.Duration(timeoutMS) * time.Millisecond
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("errandpg: fetching tasks: %w", err)
	}
	return tasks, nil
}

// sqlHeartbeat renews the leases of the (id, token) pairs in $1, $2 that are
// still held (a lease recovered by another process has a new token), and
// returns the ids of those held.
//
// It never waits for a row lock (SKIP LOCKED): a row locked by another
// statement (this process's batch of completions, or another process
// recovering an expired lease) is not renewed this time, and is reported
// held if it was when the statement started; the next heartbeat tells. A
// heartbeat that waited could deadlock with a batch of completions of the
// same leases locking the rows in another order (PostgreSQL then aborts
// one of them). Statements that update many leased rows and may wait
// (completeMany) thus only ever wait for each other.
const sqlHeartbeat = `WITH l AS (SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS l(id, token)),
renewed AS (
	UPDATE errand_tasks t SET lease_until = now() + $3::bigint * interval '1 millisecond'
	FROM (SELECT lt.id FROM errand_tasks lt JOIN l ON lt.id = l.id AND lt.lease_token = l.token
		FOR UPDATE OF lt SKIP LOCKED) AS s
	WHERE t.id = s.id
	RETURNING t.id
)
SELECT lt.id FROM errand_tasks lt JOIN l ON lt.id = l.id AND lt.lease_token = l.token`

// The statements on many leases (sqlHeartbeat, sqlCompleteMany,
// sqlHandBack) match rows by id and lease token only: a lease token is set
// exactly while a task runs (the CHECK errand_tasks_lease_check), so
// "state = 'running'" would add nothing but a way for the planner to scan
// the partial index of running tasks. With statistics taken while few tasks
// ran (after a bulk insert) and the generic plan of a prepared statement,
// it did, in a nested loop against the unnest: every running row against
// every lease, seconds for a batch of 1,000 among 15,000 running. Without
// it, each lease is a primary-key probe (or one hash join).

// lease identifies a claim: the task and the token its claim drew.
type lease struct {
	id, token [16]byte
}

// splitLeases returns the ids and the tokens of leases, as two arrays for
// unnest.
func splitLeases(leases []lease) (ids, tokens [][16]byte) {
	ids = make([][16]byte, len(leases))
	tokens = make([][16]byte, len(leases))
	for i, l := range leases {
		ids[i], tokens[i] = l.id, l.token
	}
	return ids, tokens
}

// heartbeat renews the given leases for d and returns the ids of those still
// held; the worker must cancel the handlers of the others.
func heartbeat(ctx context.Context, db DB, leases []lease, d time.Duration) (map[[16]byte]bool, error) {
	ids, tokens := splitLeases(leases)
	rows, err := db.Query(ctx, sqlHeartbeat, ids, tokens, ms(d))
	if err != nil {
		return nil, fmt.Errorf("errandpg: heartbeat: %w", err)
	}
	held, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	if err != nil {
		return nil, fmt.Errorf("errandpg: heartbeat: %w", err)
	}
	m := make(map[[16]byte]bool, len(held))
	for _, id := range held {
		m[id] = true
	}
	return m, nil
}

// sqlFinish records the final outcome of a running task, fenced by its lease
// token. $3 must be a final state (the CHECK constraints refuse the rest).
const sqlFinish = `UPDATE errand_tasks SET
	state = $3, result = $4, last_error = $5, finished_at = now(),
	lease_token = NULL, lease_until = NULL
WHERE id = $1 AND lease_token = $2 AND state = 'running'`

// finish records a running task's final outcome: stateSucceeded with its
// result, stateFailed or stateCanceled with its error. It reports false if
// the lease is no longer held (expired and recovered, or handed back): the
// outcome of a stale worker is refused.
func finish(ctx context.Context, db DB, l lease, state string, result []byte, errMsg string) (bool, error) {
	switch state {
	case stateSucceeded, stateFailed, stateCanceled:
	default:
		return false, fmt.Errorf("errandpg: finish: %q is not a final state", state)
	}
	tag, err := db.Exec(ctx, sqlFinish, l.id, l.token, state, result, nullString(errMsg))
	if err != nil {
		return false, fmt.Errorf("errandpg: finishing task: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// sqlRetry puts a failed attempt back to wait $4 ms for the next one, fenced
// by the lease token.
const sqlRetry = `UPDATE errand_tasks SET
	state = 'retrying', last_error = $3, run_at = now() + $4::bigint * interval '1 millisecond',
	lease_token = NULL, lease_until = NULL
WHERE id = $1 AND lease_token = $2 AND state = 'running'`

// retry schedules the next attempt of a running task after delay (by the
// database clock); false if the lease is no longer held.
func retry(ctx context.Context, db DB, l lease, errMsg string, delay time.Duration) (bool, error) {
	tag, err := db.Exec(ctx, sqlRetry, l.id, l.token, errMsg, ms(delay))
	if err != nil {
		return false, fmt.Errorf("errandpg: scheduling retry: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// sqlCompleteMany records the outcomes of many attempts in one statement,
// each fenced by its lease token: the rows of $1..$6 are (id, token, state,
// result, error, retry delay in ms). A final state ('succeeded', 'failed',
// 'canceled') sets result and last_error as sqlFinish does; 'retrying' sets
// last_error and makes the task due again after the delay, as sqlRetry does,
// keeping its result. It returns the (id, token) of each outcome recorded.
// It waits for rows locked by others: see sqlHeartbeat and sqlHandBack,
// which never wait, so that it cannot deadlock with them.
const sqlCompleteMany = `UPDATE errand_tasks t SET
	state = l.state,
	result = CASE WHEN l.state = 'retrying' THEN t.result ELSE l.result END,
	last_error = l.error,
	run_at = CASE WHEN l.state = 'retrying'
		THEN now() + l.retry_ms * interval '1 millisecond' ELSE t.run_at END,
	finished_at = CASE WHEN l.state = 'retrying' THEN NULL ELSE now() END,
	lease_token = NULL, lease_until = NULL
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bytea[], $5::text[], $6::bigint[])
	AS l(id, token, state, result, error, retry_ms)
WHERE t.id = l.id AND t.lease_token = l.token
RETURNING t.id, l.token`

// outcome is one attempt's outcome for completeMany: state is a final state
// or stateRetrying; result and errMsg are stored as given (result is ignored
// for stateRetrying, which keeps the stored one); retryIn is used for
// stateRetrying only.
type outcome struct {
	lease
	state   string
	result  []byte
	errMsg  *string
	retryIn time.Duration
}

// completeMany records the outcomes in one statement and returns the leases
// of those recorded; the others' leases were no longer held. Each outcome's
// state must be final or stateRetrying.
func completeMany(ctx context.Context, db DB, os []outcome) (map[lease]bool, error) {
	ids := make([][16]byte, len(os))
	tokens := make([][16]byte, len(os))
	states := make([]string, len(os))
	results := make([][]byte, len(os))
	errs := make([]*string, len(os))
	delays := make([]int64, len(os))
	for i, o := range os {
		switch o.state {
		case stateSucceeded, stateFailed, stateCanceled, stateRetrying:
		default:
			return nil, fmt.Errorf("errandpg: completing tasks: %q is not a final state nor %q", o.state, stateRetrying)
		}
		ids[i], tokens[i], states[i], results[i], errs[i], delays[i] = o.id, o.token, o.state, o.result, o.errMsg, ms(o.retryIn)
	}
	rows, err := db.Query(ctx, sqlCompleteMany, ids, tokens, states, results, errs, delays)
	if err != nil {
		return nil, fmt.Errorf("errandpg: completing tasks: %w", err)
	}
	done := make(map[lease]bool, len(os))
	var l lease
	_, err = pgx.ForEachRow(rows, []any{&l.id, &l.token}, func() error {
		done[l] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("errandpg: completing tasks: %w", err)
	}
	return done, nil
}

// sqlHandBack returns the running tasks of the (id, token) pairs in $1, $2
// to the queue at once without spending their attempt, fenced by the lease
// tokens; run_at is kept, so each keeps its place in the fetch order. Like
// sqlHeartbeat it never waits for a row lock: a row locked by another
// statement (being completed, or recovered) is left to it.
const sqlHandBack = `UPDATE errand_tasks t SET
	state = 'queued', attempts = t.attempts - 1, lease_token = NULL, lease_until = NULL
FROM (SELECT lt.id FROM errand_tasks lt
	JOIN unnest($1::uuid[], $2::uuid[]) AS l(id, token) ON lt.id = l.id AND lt.lease_token = l.token
	FOR UPDATE OF lt SKIP LOCKED) AS s
WHERE t.id = s.id`

// handBackAll gives leased tasks back on graceful shutdown, in one
// statement, and returns how many were still held.
func handBackAll(ctx context.Context, db DB, leases []lease) (int64, error) {
	ids, tokens := splitLeases(leases)
	tag, err := db.Exec(ctx, sqlHandBack, ids, tokens)
	if err != nil {
		return 0, fmt.Errorf("errandpg: handing back tasks: %w", err)
	}
	return tag.RowsAffected(), nil
}

// handBack gives one leased task back; false if the lease is no longer
// held.
func handBack(ctx context.Context, db DB, l lease) (bool, error) {
	n, err := handBackAll(ctx, db, []lease{l})
	return n == 1, err
}

// lostLeaseAllowance is how many lost leases beyond its max_attempts a task
// may have before recovery gives it up: a task that kills (or hangs) every
// process that runs it must not circle the fleet forever.
const lostLeaseAllowance = 3

// sqlRecoverExpired requeues up to $1 running tasks whose lease expired
// (lease_until < now()), due at once. Clearing the token fences the worker
// that lost the lease; the attempt it spent still counts (the next claim is
// attempt n+1), but it is requeued even past max_attempts: a lost lease is
// not a handler failure, and at-least-once means a killed process loses
// nothing. Only a task that has lost $2 (lostLeaseAllowance) more leases
// than max_attempts allows is given up: it fails, as a poison task. SKIP
// LOCKED lets every live process run this concurrently.
const sqlRecoverExpired = `WITH expired AS (
	SELECT id FROM errand_tasks
	WHERE state = 'running' AND lease_until < now()
	ORDER BY lease_until
	LIMIT $1
	FOR UPDATE SKIP LOCKED
)
UPDATE errand_tasks t SET
	state = CASE WHEN t.attempts >= t.max_attempts + $2 THEN 'failed' ELSE 'retrying' END,
	run_at = CASE WHEN t.attempts >= t.max_attempts + $2 THEN t.run_at ELSE now() END,
	finished_at = CASE WHEN t.attempts >= t.max_attempts + $2 THEN now() END,
	last_error = 'errandpg: lease expired (held by ' || coalesce(t.leased_by, 'unknown') || ')' ||
		CASE WHEN t.attempts >= t.max_attempts + $2
			THEN ' on attempt ' || t.attempts || ': given up, a lease lost ' || $2 || ' times more than max_attempts allows'
			ELSE '' END,
	lease_token = NULL, lease_until = NULL
FROM expired WHERE t.id = expired.id
RETURNING t.id`

// recoverExpired requeues up to limit tasks whose lease expired and returns
// their ids.
func recoverExpired(ctx context.Context, db DB, limit int) ([][16]byte, error) {
	rows, err := db.Query(ctx, sqlRecoverExpired, limit, lostLeaseAllowance)
	if err != nil {
		return nil, fmt.Errorf("errandpg: recovering expired leases: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	if err != nil {
		return nil, fmt.Errorf("errandpg: recovering expired leases: %w", err)
	}
	return ids, nil
}

const sqlCancelWaiting = `UPDATE errand_tasks SET state = 'canceled', finished_at = now()
WHERE id = $1 AND state IN ('queued', 'scheduled', 'retrying')`

// cancelWaiting cancels a task that is not running yet; false if it is
// running or finished (a running task is canceled by its worker, via finish).
func cancelWaiting(ctx context.Context, db DB, id [16]byte) (bool, error) {
	tag, err := db.Exec(ctx, sqlCancelWaiting, id)
	if err != nil {
		return false, fmt.Errorf("errandpg: canceling task: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// sqlDeleteFinished deletes, for real, up to $2 finished tasks that finished
// more than $1 ms ago by the database clock. The ids go through an array so
// the delete probes the primary key rather than joining against a scan of
// the table.
const sqlDeleteFinished = `DELETE FROM errand_tasks WHERE id = ANY (ARRAY (
	SELECT id FROM errand_tasks
	WHERE state IN ('succeeded', 'failed', 'canceled')
		AND finished_at < now() - $1::bigint * interval '1 millisecond'
	ORDER BY finished_at
	LIMIT $2
	FOR UPDATE SKIP LOCKED
))`

// deleteFinished applies retention: it deletes up to limit tasks finished
// more than retention ago and returns how many it deleted (call again while
// it returns limit).
func deleteFinished(ctx context.Context, db DB, retention time.Duration, limit int) (int64, error) {
	tag, err := db.Exec(ctx, sqlDeleteFinished, ms(retention), limit)
	if err != nil {
		return 0, fmt.Errorf("errandpg: deleting finished tasks: %w", err)
	}
	return tag.RowsAffected(), nil
}

// taskRow is a stored task as the dashboard and re-attached futures see it.
type taskRow struct {
	id          [16]byte
	kind        string
	args        []byte
	result      []byte
	state       string
	priority    int
	runAt       time.Time
	attempts    int
	maxAttempts int
	lastError   *string
	uniqueKey   *string
	leaseToken  *[16]byte
	leaseUntil  *time.Time
	leasedBy    *string
	timeout     time.Duration
	scheduleID  *string
	createdAt   time.Time
	startedAt   *time.Time
	finishedAt  *time.Time
}

// sqlGetTasks reads the tasks whose ids are in $1 (a primary key probe per
// id).
const sqlGetTasks = `SELECT id, kind, args, result, state, priority, run_at, attempts, max_attempts,
	last_error, unique_key, lease_token, lease_until, leased_by, timeout_ms, schedule_id,
	created_at, started_at, finished_at
FROM errand_tasks WHERE id = ANY ($1::uuid[])`

// getTasks reads the tasks with the given ids, in any order; ids with no
// task (never inserted, or deleted by retention) are left out.
func getTasks(ctx context.Context, db DB, ids [][16]byte) ([]taskRow, error) {
	rows, err := db.Query(ctx, sqlGetTasks, ids)
	if err != nil {
		return nil, fmt.Errorf("errandpg: reading tasks: %w", err)
	}
	ts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (taskRow, error) {
		var t taskRow
		var timeoutMS int64
		err := row.Scan(&t.id, &t.kind, &t.args, &t.result, &t.state,
			&t.priority, &t.runAt, &t.attempts, &t.maxAttempts, &t.lastError, &t.uniqueKey,
			&t.leaseToken, &t.leaseUntil, &t.leasedBy, &timeoutMS, &t.scheduleID,
			&t.createdAt, &t.startedAt, &t.finishedAt)
		t.timeout = time.Duration(timeoutMS) * time.Millisecond
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("errandpg: reading tasks: %w", err)
	}
	return ts, nil
}

// getTask reads a task; ok is false if there is none with that id (never
// inserted, or deleted by retention).
func getTask(ctx context.Context, db DB, id [16]byte) (t taskRow, ok bool, err error) {
	ts, err := getTasks(ctx, db, [][16]byte{id})
	if err != nil || len(ts) == 0 {
		return t, false, err
	}
	return ts[0], true, nil
}

// schedule is a recurring schedule as registered by a process.
type schedule struct {
	id          string // the schedule's stable name
	kind        string
	spec        string
	args        []byte
	priority    int
	maxAttempts int
	timeout     time.Duration
	firstRun    time.Time // next_run_at for a new schedule, or one whose spec changed
}

// sqlUpsertSchedule registers a schedule. Every process registers the same
// schedules at start-up, so an existing row keeps its next_run_at (resetting
// it would fire twice or skip a run) unless the spec changed.
const sqlUpsertSchedule = `INSERT INTO errand_schedules
	(id, kind, spec, args, priority, max_attempts, timeout_ms, next_run_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (id) DO UPDATE SET
	kind = EXCLUDED.kind, args = EXCLUDED.args, priority = EXCLUDED.priority,
	max_attempts = EXCLUDED.max_attempts, timeout_ms = EXCLUDED.timeout_ms,
	next_run_at = CASE WHEN errand_schedules.spec = EXCLUDED.spec
		THEN errand_schedules.next_run_at ELSE EXCLUDED.next_run_at END,
	spec = EXCLUDED.spec, updated_at = now()`

func upsertSchedule(ctx context.Context, db DB, s schedule) error {
	_, err := db.Exec(ctx, sqlUpsertSchedule, s.id, s.kind, s.spec, s.args, s.priority,
		s.maxAttempts, ms(s.timeout), s.firstRun)
	if err != nil {
		return fmt.Errorf("errandpg: registering schedule %q: %w", s.id, err)
	}
	return nil
}

// dueSchedule is a schedule whose next run is due, as read by dueSchedules;
// now is the database clock at the read, for computing the next due time.
type dueSchedule struct {
	schedule
	due time.Time
	now time.Time
}

const sqlDueSchedules = `SELECT id, kind, spec, args, priority, max_attempts, timeout_ms, next_run_at, now()
FROM errand_schedules
WHERE NOT paused AND next_run_at <= now()
ORDER BY next_run_at
LIMIT $1`

// dueSchedules reads up to limit schedules that are due by the database
// clock. Reading claims nothing: fire each with claimSchedule.
func dueSchedules(ctx context.Context, db DB, limit int) ([]dueSchedule, error) {
	rows, err := db.Query(ctx, sqlDueSchedules, limit)
	if err != nil {
		return nil, fmt.Errorf("errandpg: reading due schedules: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (dueSchedule, error) {
		var d dueSchedule
		var timeoutMS int64
		err := row.Scan(&d.id, &d.kind, &d.spec, &d.args, &d.priority, &d.maxAttempts,
			&timeoutMS, &d.due, &d.now)
		d.timeout = time.Duration(timeoutMS) * time.Millisecond
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("errandpg: reading due schedules: %w", err)
	}
	return ds, nil
}

// sqlClaimSchedule fires a schedule's due time $2 by moving next_run_at to
// $3 ('infinity': it never fires again). Only the first of any number of concurrent claimers of one due time
// updates the row; the rest find next_run_at moved (a claimer blocked on the
// row re-checks the WHERE clause once the first commits) and update 0 rows.
const sqlClaimSchedule = `UPDATE errand_schedules SET next_run_at = $3, last_run_at = $2, updated_at = now()
WHERE id = $1 AND next_run_at = $2 AND NOT paused`

// claimSchedule claims the run of schedule id due at due and sets its next
// due time (zero: never again); true means the caller fires it (insert the
// run in the same transaction, so a rollback un-claims it).
func claimSchedule(ctx context.Context, db DB, id string, due, next time.Time) (bool, error) {
	nextArg := pgtype.Timestamptz{Time: next, Valid: true}
	if next.IsZero() {
		nextArg = pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	tag, err := db.Exec(ctx, sqlClaimSchedule, id, due, nextArg)
	if err != nil {
		return false, fmt.Errorf("errandpg: claiming schedule %q: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

const sqlDeleteSchedule = `DELETE FROM errand_schedules WHERE id = $1`

// deleteSchedule removes a schedule; its runs stay, their schedule_id set
// to NULL by the foreign key. It reports whether there was one.
func deleteSchedule(ctx context.Context, db DB, id string) (bool, error) {
	tag, err := db.Exec(ctx, sqlDeleteSchedule, id)
	if err != nil {
		return false, fmt.Errorf("errandpg: removing schedule %q: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}
