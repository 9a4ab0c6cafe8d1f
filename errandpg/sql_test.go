package errandpg

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const testLease = 30 * time.Second

// testKinds are the kinds the SQL layer's tests insert and fetch.
var testKinds = []string{"test.kind", "k", "bulk", "report"}

func newID(t testing.TB) [16]byte {
	t.Helper()
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// idWithPrefix is a random id whose first byte is b, to fix the id order.
func idWithPrefix(t testing.TB, b byte) [16]byte {
	id := newID(t)
	id[0] = b
	return id
}

func mustInsert(t testing.TB, db DB, nt newTask) [16]byte {
	t.Helper()
	if nt.id == ([16]byte{}) {
		nt.id = newID(t)
	}
	if nt.kind == "" {
		nt.kind = "test.kind"
	}
	if nt.maxAttempts == 0 {
		nt.maxAttempts = 1
	}
	ok, err := insertTask(testCtx(t), db, nt)
	if err != nil {
		t.Fatalf("insertTask: %v", err)
	}
	if !ok {
		t.Fatalf("insertTask: not inserted (unique key %q held)", nt.uniqueKey)
	}
	return nt.id
}

func mustGet(t testing.TB, db DB, id [16]byte) taskRow {
	t.Helper()
	r, ok, err := getTask(testCtx(t), db, id)
	if err != nil {
		t.Fatalf("getTask: %v", err)
	}
	if !ok {
		t.Fatalf("task %x not found", id)
	}
	return r
}

func mustExec(t testing.TB, db DB, sql string, args ...any) int64 {
	t.Helper()
	tag, err := db.Exec(testCtx(t), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return tag.RowsAffected()
}

func mustFetch(t testing.TB, db DB, limit int) []claimedTask {
	t.Helper()
	got, err := fetch(testCtx(t), db, testKinds, limit, testLease, "worker-1")
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	return got
}

func fetchOne(t testing.TB, db DB) claimedTask {
	t.Helper()
	got := mustFetch(t, db, 1)
	if len(got) != 1 {
		t.Fatalf("fetch(1) claimed %d tasks, want 1", len(got))
	}
	return got[0]
}

func ids(cs []claimedTask) [][16]byte {
	var out [][16]byte
	for _, c := range cs {
		out = append(out, c.id)
	}
	return out
}

func leaseOf(c claimedTask) lease { return lease{c.id, c.leaseToken} }

// makeDue moves a task's due time into the past, as the database clock
// passing it would.
func makeDue(t testing.TB, db DB, id [16]byte) {
	t.Helper()
	if n := mustExec(t, db, `UPDATE errand_tasks SET run_at = now() - interval '1 millisecond' WHERE id = $1`, id); n != 1 {
		t.Fatalf("makeDue updated %d rows", n)
	}
}

// dbBool evaluates a boolean SQL expression about task $1.
func dbBool(t testing.TB, db DB, id [16]byte, expr string) bool {
	t.Helper()
	var b bool
	if err := db.QueryRow(testCtx(t), `SELECT `+expr+` FROM errand_tasks WHERE id = $1`, id).Scan(&b); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return b
}

func TestFetchClaimsByPriorityThenDueTimeThenID(t *testing.T) {
	pool := migratedPool(t)
	type spec struct {
		name     string
		prefix   byte
		priority int
		ago      string // run_at = now() - ago
	}
	specs := []spec{
		{"a", 0x10, 0, "3 seconds"},
		{"b", 0x05, 0, "2 seconds"}, // lower id than a, due later: a first
		{"c", 0x40, 5, "1 second"},
		{"d", 0x30, 5, "1 second"}, // same priority and run_at as c: the lower id first
		{"e", 0x50, -1, "10 seconds"},
		{"f", 0x60, 10, "-1 hour"}, // highest priority but not due
	}
	byName := map[string][16]byte{}
	for _, s := range specs {
		id := mustInsert(t, pool, newTask{id: idWithPrefix(t, s.prefix), priority: s.priority, maxAttempts: 3, timeout: 1500 * time.Millisecond, args: []byte(s.name)})
		byName[s.name] = id
	}
	// One statement, so c and d get exactly the same run_at.
	for _, s := range specs {
		mustExec(t, pool, `UPDATE errand_tasks SET run_at = date_trunc('second', now()) - $2::interval WHERE id = $1`, byName[s.name], s.ago)
	}
	mustExec(t, pool, `UPDATE errand_tasks SET run_at = (SELECT run_at FROM errand_tasks WHERE id = $1) WHERE id = $2`, byName["c"], byName["d"])

	var order []string
	for _, limit := range []int{3, 10, 10} {
		got := mustFetch(t, pool, limit)
		for _, c := range got {
			order = append(order, string(c.args))
			if c.attempt != 1 || c.maxAttempts != 3 || c.timeout != 1500*time.Millisecond || c.kind != "test.kind" {
				t.Errorf("claimed %s: attempt %d, maxAttempts %d, timeout %v, kind %q", c.args, c.attempt, c.maxAttempts, c.timeout, c.kind)
			}
			r := mustGet(t, pool, c.id)
			if r.state != stateRunning || r.attempts != 1 || r.leaseToken == nil || *r.leaseToken != c.leaseToken ||
				r.leasedBy == nil || *r.leasedBy != "worker-1" || !r.leaseUntil.Equal(c.leaseUntil) {
				t.Errorf("claimed %s: row %+v", c.args, r)
			}
			if !dbBool(t, pool, c.id, `lease_until = started_at + interval '30 seconds'`) {
				t.Errorf("claimed %s: lease_until is not now() + lease", c.args)
			}
		}
	}
	if want := []string{"d", "c", "a", "b", "e"}; !slices.Equal(order, want) {
		t.Fatalf("claim order %v, want %v", order, want)
	}
	if r := mustGet(t, pool, byName["f"]); r.state != stateQueued || r.attempts != 0 {
		t.Fatalf("task not due was claimed: %+v", r)
	}
}

func TestFetchBatchReturnsRunOrderAndDistinctTokens(t *testing.T) {
	pool := migratedPool(t)
	var want [][16]byte
	for p := range 5 {
		want = append([][16]byte{mustInsert(t, pool, newTask{priority: p})}, want...)
	}
	got := mustFetch(t, pool, 10)
	if !slices.Equal(ids(got), want) {
		t.Fatalf("batch order %x, want %x", ids(got), want)
	}
	tokens := map[[16]byte]bool{}
	for _, c := range got {
		tokens[c.leaseToken] = true
	}
	if len(tokens) != len(got) {
		t.Fatalf("%d distinct lease tokens for %d claims", len(tokens), len(got))
	}
}

func TestFetchSkipsRowsLockedByAnotherFetcher(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	a := mustInsert(t, pool, newTask{priority: 1})
	b := mustInsert(t, pool, newTask{priority: 0})

	tx1, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx1.Rollback(ctx)
	tx2, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx2.Rollback(ctx)

	if got := fetchOne(t, tx1); got.id != a {
		t.Fatalf("first fetcher claimed %x, want %x", got.id, a)
	}
	// a is locked by tx1's uncommitted claim: tx2 passes over it, without
	// waiting, to b; then finds nothing.
	got2 := fetchOne(t, tx2)
	if got2.id != b {
		t.Fatalf("second fetcher claimed %x, want %x", got2.id, b)
	}
	if more := mustFetch(t, tx2, 10); len(more) != 0 {
		t.Fatalf("second fetcher claimed %x too", ids(more))
	}
	if err := tx2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// The first fetcher's transaction dies: its claim is undone.
	if err := tx1.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if r := mustGet(t, pool, a); r.state != stateQueued || r.attempts != 0 || r.leaseToken != nil {
		t.Fatalf("after rollback: %+v", r)
	}
	if r := mustGet(t, pool, b); r.state != stateRunning || *r.leaseToken != got2.leaseToken {
		t.Fatalf("b after commit: %+v", r)
	}
	if got := fetchOne(t, pool); got.id != a || got.attempt != 1 {
		t.Fatalf("refetch: %x attempt %d, want %x attempt 1", got.id, got.attempt, a)
	}
}

func TestConcurrentFetchersNeverShareATask(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	const n, fetchers = 300, 6
	mustExec(t, pool, `INSERT INTO errand_tasks (id, kind, priority)
		SELECT gen_random_uuid(), 'bulk', (random() * 3)::int FROM generate_series(1, $1)`, n)

	var badAttempt atomic.Int32
	seen := claimConcurrently(t, fetchers, func(i int) ([]string, error) {
		got, err := fetch(ctx, pool, testKinds, 4, testLease, fmt.Sprintf("w%d", i))
		ids := make([]string, len(got))
		for j, c := range got {
			ids[j] = idString(c.id)
			if c.attempt != 1 {
				badAttempt.Store(int32(c.attempt))
			}
		}
		return ids, err
	})
	if a := badAttempt.Load(); a != 0 {
		t.Errorf("a task was claimed as attempt %d", a)
	}
	if len(seen) != n {
		t.Fatalf("%d distinct tasks claimed, want %d", len(seen), n)
	}
	var running, maxAttempts int
	if err := pool.QueryRow(ctx, `SELECT count(*), max(attempts) FROM errand_tasks WHERE state = 'running'`).Scan(&running, &maxAttempts); err != nil {
		t.Fatal(err)
	}
	if running != n || maxAttempts != 1 {
		t.Fatalf("%d running, max attempts %d; want %d, 1", running, maxAttempts, n)
	}
}

func TestDelayedTaskIsNotFetchedBeforeRunAt(t *testing.T) {
	pool := migratedPool(t)
	later := mustInsert(t, pool, newTask{delay: time.Hour, priority: 100})
	now := mustInsert(t, pool, newTask{})
	if r := mustGet(t, pool, later); r.state != stateScheduled {
		t.Fatalf("delayed task state %q, want scheduled", r.state)
	}
	if r := mustGet(t, pool, now); r.state != stateQueued {
		t.Fatalf("immediate task state %q, want queued", r.state)
	}
	// The due time is the database's now() + delay, exactly.
	if !dbBool(t, pool, later, `run_at = created_at + interval '1 hour'`) {
		t.Fatal("run_at is not now() + delay by the database clock")
	}
	if got := mustFetch(t, pool, 10); !slices.Equal(ids(got), [][16]byte{now}) {
		t.Fatalf("claimed %x, want only the due task", ids(got))
	}
	if got := mustFetch(t, pool, 10); len(got) != 0 {
		t.Fatalf("claimed %x before its run_at", ids(got))
	}
	makeDue(t, pool, later)
	if got := fetchOne(t, pool); got.id != later || got.attempt != 1 {
		t.Fatalf("claimed %x attempt %d, want the delayed task, attempt 1", got.id, got.attempt)
	}
}

func TestFinishIsFencedByLeaseToken(t *testing.T) {
	for _, tt := range []struct {
		state  string
		result []byte
		errMsg string
	}{
		{stateSucceeded, []byte(`{"ok":true}`), ""},
		{stateFailed, nil, "boom"},
		{stateCanceled, nil, "context canceled"},
	} {
		t.Run(tt.state, func(t *testing.T) {
			pool := migratedPool(t)
			ctx := testCtx(t)
			id := mustInsert(t, pool, newTask{})
			c := fetchOne(t, pool)

			stale := lease{id, newID(t)}
			if ok, err := finish(ctx, pool, stale, tt.state, []byte("stale"), "stale"); err != nil || ok {
				t.Fatalf("finish with a stale token: %v, %v; want false, nil", ok, err)
			}
			if r := mustGet(t, pool, id); r.state != stateRunning || r.result != nil || r.lastError != nil {
				t.Fatalf("stale finish changed the task: %+v", r)
			}

			if ok, err := finish(ctx, pool, leaseOf(c), tt.state, tt.result, tt.errMsg); err != nil || !ok {
				t.Fatalf("finish: %v, %v; want true, nil", ok, err)
			}
			r := mustGet(t, pool, id)
			if r.state != tt.state || !bytes.Equal(r.result, tt.result) || r.finishedAt == nil ||
				r.leaseToken != nil || r.leaseUntil != nil || r.attempts != 1 {
				t.Fatalf("finished task: %+v", r)
			}
			if (r.lastError == nil) != (tt.errMsg == "") || (r.lastError != nil && *r.lastError != tt.errMsg) {
				t.Fatalf("last_error %v, want %q", r.lastError, tt.errMsg)
			}
			// The same token cannot finish it twice or overwrite its result.
			if ok, err := finish(ctx, pool, leaseOf(c), stateSucceeded, []byte("again"), ""); err != nil || ok {
				t.Fatalf("second finish: %v, %v; want false, nil", ok, err)
			}
			if r2 := mustGet(t, pool, id); r2.state != tt.state || !bytes.Equal(r2.result, tt.result) {
				t.Fatalf("second finish changed the task: %+v", r2)
			}
		})
	}
}

func TestFinishRefusesNonFinalState(t *testing.T) {
	pool := migratedPool(t)
	mustInsert(t, pool, newTask{})
	c := fetchOne(t, pool)
	for _, s := range []string{stateQueued, stateRunning, stateRetrying, "bogus"} {
		if ok, err := finish(testCtx(t), pool, leaseOf(c), s, nil, ""); err == nil || ok {
			t.Errorf("finish(%q): %v, %v; want an error", s, ok, err)
		}
	}
	// The database refuses inconsistent rows too.
	_, err := pool.Exec(testCtx(t), `UPDATE errand_tasks SET lease_token = NULL WHERE id = $1`, c.id)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" || pgErr.ConstraintName != "errand_tasks_lease_check" {
		t.Fatalf("running without a lease token: %v, want check violation of errand_tasks_lease_check", err)
	}
}

func TestHeartbeatRenewsOnlyHeldLeases(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	a := mustInsert(t, pool, newTask{priority: 1})
	b := mustInsert(t, pool, newTask{})
	got := mustFetch(t, pool, 2)
	if !slices.Equal(ids(got), [][16]byte{a, b}) {
		t.Fatalf("claimed %x", ids(got))
	}
	mustExec(t, pool, `UPDATE errand_tasks SET lease_until = now() + interval '1 second'`)

	held, err := heartbeat(ctx, pool, []lease{leaseOf(got[0]), {b, newID(t)}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 1 || !held[a] {
		t.Fatalf("heartbeat held %v, want only %x", held, a)
	}
	if !dbBool(t, pool, a, `lease_until > now() + interval '50 seconds' AND lease_until <= now() + interval '1 minute'`) {
		t.Fatal("held lease not renewed to now() + 1 minute")
	}
	if !dbBool(t, pool, b, `lease_until <= now() + interval '1 second'`) {
		t.Fatal("lease renewed with a stale token")
	}
	if held, err := heartbeat(ctx, pool, nil, time.Minute); err != nil || len(held) != 0 {
		t.Fatalf("empty heartbeat: %v, %v", held, err)
	}
}

func TestExpiredLeaseIsRecoveredAndStaleHolderFenced(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	a := mustInsert(t, pool, newTask{priority: 1, maxAttempts: 1})
	b := mustInsert(t, pool, newTask{})
	got := mustFetch(t, pool, 2)
	stale, live := got[0], got[1]
	if stale.id != a || live.id != b {
		t.Fatalf("claimed %x", ids(got))
	}
	// a's holder stops heartbeating; its lease runs out by the database clock.
	mustExec(t, pool, `UPDATE errand_tasks SET lease_until = now() - interval '1 millisecond' WHERE id = $1`, a)

	// Any process may recover; concurrent recoverers skip each other's rows.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	rec, err := recoverExpired(ctx, tx, 10)
	if err != nil || !slices.Equal(rec, [][16]byte{a}) {
		t.Fatalf("recoverExpired: %x, %v; want %x", rec, err, a)
	}
	if rec2, err := recoverExpired(ctx, pool, 10); err != nil || len(rec2) != 0 {
		t.Fatalf("concurrent recoverExpired: %x, %v; want none", rec2, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	r := mustGet(t, pool, a)
	if r.state != stateRetrying || r.leaseToken != nil || r.leaseUntil != nil || r.attempts != 1 ||
		r.lastError == nil || !strings.Contains(*r.lastError, "lease expired (held by worker-1)") {
		t.Fatalf("recovered task: %+v", r)
	}
	if r := mustGet(t, pool, b); r.state != stateRunning || *r.leaseToken != live.leaseToken {
		t.Fatalf("unexpired lease touched: %+v", r)
	}
	if rec, err := recoverExpired(ctx, pool, 10); err != nil || len(rec) != 0 {
		t.Fatalf("second recoverExpired: %x, %v; want none", rec, err)
	}

	// Requeued at once, even though its one attempt was spent: a lost lease is
	// not a handler failure.
	again := fetchOne(t, pool)
	if again.id != a || again.attempt != 2 || again.leaseToken == stale.leaseToken {
		t.Fatalf("reclaimed %x attempt %d (same token: %v)", again.id, again.attempt, again.leaseToken == stale.leaseToken)
	}

	// The stale holder wakes up: every write it tries is refused.
	if ok, err := finish(ctx, pool, leaseOf(stale), stateSucceeded, []byte("stale"), ""); err != nil || ok {
		t.Fatalf("stale finish: %v, %v", ok, err)
	}
	if ok, err := retry(ctx, pool, leaseOf(stale), "stale", 0); err != nil || ok {
		t.Fatalf("stale retry: %v, %v", ok, err)
	}
	if ok, err := handBack(ctx, pool, leaseOf(stale)); err != nil || ok {
		t.Fatalf("stale hand-back: %v, %v", ok, err)
	}
	if held, err := heartbeat(ctx, pool, []lease{leaseOf(stale)}, time.Minute); err != nil || len(held) != 0 {
		t.Fatalf("stale heartbeat: %v, %v", held, err)
	}
	if r := mustGet(t, pool, a); r.state != stateRunning || *r.leaseToken != again.leaseToken || r.attempts != 2 {
		t.Fatalf("stale writes changed the task: %+v", r)
	}
	// The new holder completes it, once.
	if ok, err := finish(ctx, pool, leaseOf(again), stateSucceeded, []byte("new"), ""); err != nil || !ok {
		t.Fatalf("finish by the new holder: %v, %v", ok, err)
	}
	if ok, err := finish(ctx, pool, leaseOf(stale), stateSucceeded, []byte("stale"), ""); err != nil || ok {
		t.Fatalf("stale finish after completion: %v, %v", ok, err)
	}
	if r := mustGet(t, pool, a); r.state != stateSucceeded || string(r.result) != "new" {
		t.Fatalf("final task: %+v", r)
	}
}

func TestRetryWaitsByDatabaseClock(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	id := mustInsert(t, pool, newTask{maxAttempts: 3})
	c := fetchOne(t, pool)
	if ok, err := retry(ctx, pool, lease{id, newID(t)}, "stale", 0); err != nil || ok {
		t.Fatalf("retry with a stale token: %v, %v", ok, err)
	}
	if ok, err := retry(ctx, pool, leaseOf(c), "boom", time.Hour); err != nil || !ok {
		t.Fatalf("retry: %v, %v", ok, err)
	}
	r := mustGet(t, pool, id)
	if r.state != stateRetrying || r.lastError == nil || *r.lastError != "boom" || r.leaseToken != nil || r.attempts != 1 {
		t.Fatalf("retrying task: %+v", r)
	}
	if !dbBool(t, pool, id, `run_at > now() + interval '59 minutes' AND run_at <= now() + interval '1 hour'`) {
		t.Fatal("retry not due at now() + delay")
	}
	if got := mustFetch(t, pool, 10); len(got) != 0 {
		t.Fatalf("claimed %x before its retry was due", ids(got))
	}
	makeDue(t, pool, id)
	if got := fetchOne(t, pool); got.id != id || got.attempt != 2 {
		t.Fatalf("retry claimed %x attempt %d, want attempt 2", got.id, got.attempt)
	}
}

func TestHandBackDoesNotSpendAnAttempt(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	a := mustInsert(t, pool, newTask{})
	var runAt time.Time
	if err := pool.QueryRow(ctx, `SELECT run_at FROM errand_tasks WHERE id = $1`, a).Scan(&runAt); err != nil {
		t.Fatal(err)
	}
	c := fetchOne(t, pool)
	b := mustInsert(t, pool, newTask{}) // same priority, due later

	if ok, err := handBack(ctx, pool, lease{a, newID(t)}); err != nil || ok {
		t.Fatalf("hand-back with a stale token: %v, %v", ok, err)
	}
	if ok, err := handBack(ctx, pool, leaseOf(c)); err != nil || !ok {
		t.Fatalf("hand-back: %v, %v", ok, err)
	}
	r := mustGet(t, pool, a)
	if r.state != stateQueued || r.attempts != 0 || r.leaseToken != nil || r.leaseUntil != nil || !r.runAt.Equal(runAt) {
		t.Fatalf("handed-back task: %+v (run_at was %v)", r, runAt)
	}
	if ok, err := handBack(ctx, pool, leaseOf(c)); err != nil || ok {
		t.Fatalf("second hand-back: %v, %v", ok, err)
	}
	// It keeps its place ahead of b, and its next claim is attempt 1 again.
	got := mustFetch(t, pool, 2)
	if !slices.Equal(ids(got), [][16]byte{a, b}) || got[0].attempt != 1 {
		t.Fatalf("after hand-back claimed %x, attempt %d", ids(got), got[0].attempt)
	}
}

func TestUniqueKeyHeldWhileWaitingOrRunning(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	tryInsert := func(key string) ([16]byte, bool) {
		t.Helper()
		id := newID(t)
		ok, err := insertTask(ctx, pool, newTask{id: id, kind: "k", maxAttempts: 2, uniqueKey: key})
		if err != nil {
			t.Fatalf("insertTask(%q): %v", key, err)
		}
		return id, ok
	}
	checkHolder := func(key string, want [16]byte, wantOK bool) {
		t.Helper()
		got, ok, err := uniqueKeyHolder(ctx, pool, key)
		if err != nil || ok != wantOK || (ok && got != want) {
			t.Fatalf("uniqueKeyHolder(%q) = %x, %v, %v; want %x, %v", key, got, ok, err, want, wantOK)
		}
	}

	first, ok := tryInsert("k1")
	if !ok {
		t.Fatal("first insert of k1 refused")
	}
	if _, ok := tryInsert("k1"); ok {
		t.Fatal("k1 inserted twice while queued")
	}
	checkHolder("k1", first, true)
	if _, ok := tryInsert("k2"); !ok {
		t.Fatal("k2 refused")
	}
	for range 2 { // no key: no limit
		if _, ok := tryInsert(""); !ok {
			t.Fatal("task without key refused")
		}
	}
	mustExec(t, pool, `DELETE FROM errand_tasks WHERE id <> $1`, first)

	// Running, then retrying: still held.
	c := fetchOne(t, pool)
	if _, ok := tryInsert("k1"); ok {
		t.Fatal("k1 inserted while running")
	}
	if ok, err := retry(ctx, pool, leaseOf(c), "boom", time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok := tryInsert("k1"); ok {
		t.Fatal("k1 inserted while retrying")
	}
	// Finished: free again.
	makeDue(t, pool, first)
	c = fetchOne(t, pool)
	if ok, err := finish(ctx, pool, leaseOf(c), stateFailed, nil, "dead"); err != nil || !ok {
		t.Fatal(ok, err)
	}
	checkHolder("k1", [16]byte{}, false)
	second, ok := tryInsert("k1")
	if !ok {
		t.Fatal("k1 refused after its task failed")
	}
	checkHolder("k1", second, true)
	// Scheduled (delayed) holds it; canceled frees it.
	if ok, err := cancelWaiting(ctx, pool, second); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if ok, err := insertTask(ctx, pool, newTask{id: newID(t), kind: "k", maxAttempts: 1, uniqueKey: "k1", delay: time.Hour}); err != nil || !ok {
		t.Fatalf("k1 after cancel: %v, %v", ok, err)
	}
	if _, ok := tryInsert("k1"); ok {
		t.Fatal("k1 inserted while scheduled")
	}

	// Concurrent inserts of one key: exactly one wins.
	const racers = 8
	start := make(chan struct{})
	wins := make([]bool, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			wins[i], errs[i] = insertTask(ctx, pool, newTask{id: newID(t), kind: "k", maxAttempts: 1, uniqueKey: "race"})
		})
	}
	close(start)
	wg.Wait()
	n := 0
	for i := range racers {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		if wins[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d concurrent inserts of one key succeeded, want 1", n)
	}
}

func TestCancelWaitingTask(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	waiting := mustInsert(t, pool, newTask{})
	running := mustInsert(t, pool, newTask{priority: 1})
	c := fetchOne(t, pool)
	if c.id != running {
		t.Fatalf("claimed %x", c.id)
	}
	if ok, err := cancelWaiting(ctx, pool, running); err != nil || ok {
		t.Fatalf("cancelWaiting(running): %v, %v; want false", ok, err)
	}
	if ok, err := cancelWaiting(ctx, pool, waiting); err != nil || !ok {
		t.Fatalf("cancelWaiting: %v, %v", ok, err)
	}
	if r := mustGet(t, pool, waiting); r.state != stateCanceled || r.finishedAt == nil {
		t.Fatalf("canceled task: %+v", r)
	}
	if ok, err := cancelWaiting(ctx, pool, waiting); err != nil || ok {
		t.Fatalf("second cancelWaiting: %v, %v; want false", ok, err)
	}
	if got := mustFetch(t, pool, 10); len(got) != 0 {
		t.Fatalf("claimed %x", ids(got))
	}
}

func TestDeleteFinishedAppliesRetention(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	var old [][16]byte
	for _, state := range []string{stateSucceeded, stateSucceeded, stateFailed, stateCanceled} {
		id := mustInsert(t, pool, newTask{priority: 1})
		c := fetchOne(t, pool)
		if ok, err := finish(ctx, pool, leaseOf(c), state, nil, ""); err != nil || !ok {
			t.Fatal(ok, err)
		}
		old = append(old, id)
	}
	mustExec(t, pool, `UPDATE errand_tasks SET finished_at = now() - interval '2 hours'`)
	recent := mustInsert(t, pool, newTask{priority: 1})
	c := fetchOne(t, pool)
	if ok, err := finish(ctx, pool, leaseOf(c), stateSucceeded, nil, ""); err != nil || !ok {
		t.Fatal(ok, err)
	}
	running := mustInsert(t, pool, newTask{priority: 1})
	fetchOne(t, pool)
	queued := mustInsert(t, pool, newTask{})
	mustExec(t, pool, `UPDATE errand_tasks SET created_at = now() - interval '3 hours', run_at = now() - interval '3 hours' WHERE id = ANY($1::uuid[])`, [][16]byte{running, queued})

	for _, step := range []struct {
		limit int
		want  int64
	}{{3, 3}, {100, 1}, {100, 0}} {
		n, err := deleteFinished(ctx, pool, time.Hour, step.limit)
		if err != nil || n != step.want {
			t.Fatalf("deleteFinished(limit %d) = %d, %v; want %d", step.limit, n, err, step.want)
		}
	}
	var left [][16]byte
	rows, err := pool.Query(ctx, `SELECT id FROM errand_tasks ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	left, err = pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	if err != nil {
		t.Fatal(err)
	}
	want := [][16]byte{recent, running, queued}
	slices.SortFunc(want, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(left, want) {
		t.Fatalf("rows left %x, want %x", left, want)
	}
	for _, id := range old {
		if _, ok, err := getTask(ctx, pool, id); err != nil || ok {
			t.Fatalf("old task %x still readable: %v, %v", id, ok, err)
		}
	}
}

func dbNow(t testing.TB, db DB) time.Time {
	t.Helper()
	var now time.Time
	if err := db.QueryRow(testCtx(t), `SELECT now()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

func TestScheduleFiresOncePerDueTime(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	s := schedule{id: "nightly", kind: "report", spec: "@every 1m", args: []byte("{}"), maxAttempts: 2,
		firstRun: dbNow(t, pool).Add(-time.Second)}
	if err := upsertSchedule(ctx, pool, s); err != nil {
		t.Fatal(err)
	}
	due, err := dueSchedules(ctx, pool, 10)
	if err != nil || len(due) != 1 || due[0].id != "nightly" || due[0].kind != "report" || due[0].maxAttempts != 2 {
		t.Fatalf("dueSchedules: %+v, %v", due, err)
	}
	d := due[0]
	if !d.due.Equal(s.firstRun) || d.now.Before(d.due) {
		t.Fatalf("due %v now %v, want due %v <= now", d.due, d.now, s.firstRun)
	}
	next := d.due.Add(time.Minute)

	// Every process registers the same schedule at start-up: that does not
	// move its due time.
	s2 := s
	s2.firstRun = next.Add(time.Hour)
	if err := upsertSchedule(ctx, pool, s2); err != nil {
		t.Fatal(err)
	}

	// Eight processes see the same due time; exactly one fires it.
	const claimers = 8
	start := make(chan struct{})
	wins := make([]bool, claimers)
	errs := make([]error, claimers)
	var wg sync.WaitGroup
	for i := range claimers {
		wg.Go(func() {
			<-start
			wins[i], errs[i] = claimSchedule(ctx, pool, d.id, d.due, next)
		})
	}
	close(start)
	wg.Wait()
	n := 0
	for i := range claimers {
		if errs[i] != nil {
			t.Fatalf("claimer %d: %v", i, errs[i])
		}
		if wins[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d claimers fired one due time, want 1", n)
	}
	if ok, err := claimSchedule(ctx, pool, d.id, d.due, next); err != nil || ok {
		t.Fatalf("late claim of a fired due time: %v, %v", ok, err)
	}
	if due, err := dueSchedules(ctx, pool, 10); err != nil || len(due) != 0 {
		t.Fatalf("dueSchedules after firing: %+v, %v", due, err)
	}
	var gotNext, gotLast time.Time
	if err := pool.QueryRow(ctx, `SELECT next_run_at, last_run_at FROM errand_schedules WHERE id = 'nightly'`).Scan(&gotNext, &gotLast); err != nil {
		t.Fatal(err)
	}
	if !gotNext.Equal(next) || !gotLast.Equal(d.due) {
		t.Fatalf("next_run_at %v, last_run_at %v; want %v, %v", gotNext, gotLast, next, d.due)
	}

	// A changed spec takes its new first run time.
	s3 := s
	s3.spec = "@every 2m"
	s3.firstRun = next.Add(time.Hour)
	if err := upsertSchedule(ctx, pool, s3); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT next_run_at FROM errand_schedules WHERE id = 'nightly'`).Scan(&gotNext); err != nil {
		t.Fatal(err)
	}
	if !gotNext.Equal(s3.firstRun) {
		t.Fatalf("next_run_at after spec change %v, want %v", gotNext, s3.firstRun)
	}
}

// waitForLockWait returns once the backend pid is waiting for a lock.
func waitForLockWait(t *testing.T, db DB, pid uint32) {
	t.Helper()
	ctx := testCtx(t)
	for {
		var waiting bool
		err := db.QueryRow(ctx, `SELECT coalesce((SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1), false)`, int32(pid)).Scan(&waiting)
		if err != nil {
			t.Fatalf("watching backend %d: %v", pid, err)
		}
		if waiting {
			return
		}
	}
}

func TestScheduleClaimBlockedOnAnotherClaim(t *testing.T) {
	for _, tt := range []struct {
		name        string
		firstCommit bool
		secondWins  bool
	}{
		{"first commits, second refused", true, false},
		{"first rolls back, second fires", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pool := migratedPool(t)
			ctx := testCtx(t)
			due := dbNow(t, pool).Add(-time.Second)
			if err := upsertSchedule(ctx, pool, schedule{id: "s", kind: "k", spec: "@every 1m", maxAttempts: 1, firstRun: due}); err != nil {
				t.Fatal(err)
			}
			due = due.Truncate(time.Microsecond)
			tx1, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx1.Rollback(ctx)
			if ok, err := claimSchedule(ctx, tx1, "s", due, due.Add(time.Minute)); err != nil || !ok {
				t.Fatalf("first claim: %v, %v", ok, err)
			}
			// The first claimer inserts the run in the same transaction.
			runID := mustInsert(t, tx1, newTask{kind: "k", scheduleID: "s"})

			conn, err := pool.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Release()
			pid := conn.Conn().PgConn().PID()
			type res struct {
				ok  bool
				err error
			}
			done := make(chan res, 1)
			go func() {
				ok, err := claimSchedule(ctx, conn, "s", due, due.Add(time.Minute))
				done <- res{ok, err}
			}()
			waitForLockWait(t, pool, pid)
			if tt.firstCommit {
				err = tx1.Commit(ctx)
			} else {
				err = tx1.Rollback(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil || r.ok != tt.secondWins {
				t.Fatalf("second claim: %v, %v; want %v", r.ok, r.err, tt.secondWins)
			}
			_, runKept, err := getTask(ctx, pool, runID)
			if err != nil || runKept != tt.firstCommit {
				t.Fatalf("first claimer's run kept: %v, %v; want %v", runKept, err, tt.firstCommit)
			}
		})
	}
}

// claimConcurrently starts claimers goroutines at once, each calling claim
// (with its index) until it claims nothing, and returns how many times each
// id was claimed; it fails the test if an id was claimed twice or a claim
// failed.
func claimConcurrently(t *testing.T, claimers int, claim func(i int) ([]string, error)) map[string]int {
	t.Helper()
	got := make([][]string, claimers)
	errs := make([]error, claimers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range claimers {
		wg.Go(func() {
			<-start
			for {
				ids, err := claim(i)
				if err != nil {
					errs[i] = err
					return
				}
				if len(ids) == 0 {
					return
				}
				got[i] = append(got[i], ids...)
			}
		})
	}
	close(start)
	wg.Wait()
	seen := make(map[string]int)
	for i, ids := range got {
		if errs[i] != nil {
			t.Fatalf("claimer %d: %v", i, errs[i])
		}
		for _, id := range ids {
			seen[id]++
		}
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("task %s claimed %d times", id, k)
		}
	}
	return seen
}

// TestExpiredLeaseGivesUpAPoisonTask: a task whose lease keeps expiring is
// requeued lostLeaseAllowance times past its max_attempts, then fails.
func TestExpiredLeaseGivesUpAPoisonTask(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	a := mustInsert(t, pool, newTask{maxAttempts: 1})
	for attempt := 1; attempt <= 1+lostLeaseAllowance; attempt++ {
		c := fetchOne(t, pool)
		if c.id != a || c.attempt != attempt {
			t.Fatalf("claim %d: %x attempt %d", attempt, c.id, c.attempt)
		}
		mustExec(t, pool, `UPDATE errand_tasks SET lease_until = now() - interval '1 millisecond' WHERE id = $1`, a)
		if rec, err := recoverExpired(ctx, pool, 10); err != nil || len(rec) != 1 {
			t.Fatalf("recoverExpired after attempt %d: %x, %v", attempt, rec, err)
		}
		r := mustGet(t, pool, a)
		if attempt < 1+lostLeaseAllowance {
			if r.state != stateRetrying || r.finishedAt != nil {
				t.Fatalf("after %d lost leases: %s (finished %v), want retrying", attempt, r.state, r.finishedAt)
			}
			continue
		}
		if r.state != stateFailed || r.finishedAt == nil || r.lastError == nil || !strings.Contains(*r.lastError, "given up") {
			t.Fatalf("after %d lost leases: %+v, want failed and given up", attempt, r)
		}
	}
	if c := mustFetch(t, pool, 1); len(c) != 0 {
		t.Fatalf("a given-up task was claimed again: %x", ids(c))
	}
}
