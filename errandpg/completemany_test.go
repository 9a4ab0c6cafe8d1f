package errandpg

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandgo/errand"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sameRow compares what an outcome writes in two rows completed the same
// way, one by Complete and one by CompleteMany.
func sameRow(a, b taskRow) error {
	switch {
	case a.state != b.state:
		return fmt.Errorf("state %q vs %q", a.state, b.state)
	case !bytes.Equal(a.result, b.result) || (a.result == nil) != (b.result == nil):
		return fmt.Errorf("result %q vs %q", a.result, b.result)
	case (a.lastError == nil) != (b.lastError == nil) || deref(a.lastError) != deref(b.lastError):
		return fmt.Errorf("last_error %v vs %v", a.lastError, b.lastError)
	case a.attempts != b.attempts:
		return fmt.Errorf("attempts %d vs %d", a.attempts, b.attempts)
	case (a.finishedAt == nil) != (b.finishedAt == nil):
		return fmt.Errorf("finished_at %v vs %v", a.finishedAt, b.finishedAt)
	case a.leaseToken != nil || b.leaseToken != nil || a.leaseUntil != nil || b.leaseUntil != nil:
		return fmt.Errorf("lease kept: %v %v / %v %v", a.leaseToken, a.leaseUntil, b.leaseToken, b.leaseUntil)
	}
	return nil
}

// TestStoreCompleteManyMatchesComplete records every kind of outcome both
// ways, in one batch for CompleteMany, and compares the rows.
func TestStoreCompleteManyMatchesComplete(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	outcomes := []errand.Outcome{
		{Status: errand.Succeeded, Result: []byte(`42`), Error: "ignored"},
		{Status: errand.Succeeded},
		{Status: errand.Failed, Error: "boom", Result: []byte(`"ignored"`)},
		{Status: errand.Failed},
		{Status: errand.Canceled, Error: "context canceled"},
		{Status: errand.Retrying, Error: "later", RetryIn: time.Hour},
		{Status: errand.Retrying, RetryIn: 0},
	}
	for range 2 * len(outcomes) {
		mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.MaxAttempts = 3 }))
	}
	cs := mustClaim(t, s, []string{"a"}, 2*len(outcomes))
	if len(cs) != 2*len(outcomes) {
		t.Fatalf("claimed %d", len(cs))
	}
	// A result from an earlier attempt: retrying keeps it, finals replace it.
	mustExec(t, pool, `UPDATE errand_tasks SET result = '"prior"' WHERE state = 'running'`)
	runAt := make(map[string]time.Time)
	for _, c := range cs {
		runAt[c.ID] = mustGet(t, pool, uuid.MustParse(c.ID)).runAt
	}
	one, batch := cs[:len(outcomes)], cs[len(outcomes):]
	before := dbNow(t, pool)
	var comps []errand.Completion
	for i, o := range outcomes {
		if err := s.Complete(ctx, one[i].Lease, o); err != nil {
			t.Fatalf("Complete(%+v): %v", o, err)
		}
		comps = append(comps, errand.Completion{Lease: batch[i].Lease, Outcome: o})
	}
	refused, err := s.CompleteMany(ctx, comps)
	if err != nil || len(refused) != 0 {
		t.Fatalf("CompleteMany: refused %v, %v", refused, err)
	}
	after := dbNow(t, pool)
	for i, o := range outcomes {
		a, b := mustGet(t, pool, uuid.MustParse(one[i].ID)), mustGet(t, pool, uuid.MustParse(batch[i].ID))
		if err := sameRow(a, b); err != nil {
			t.Fatalf("outcome %+v: Complete and CompleteMany differ: %v", o, err)
		}
		if b.state != statusName(o.Status) {
			t.Fatalf("outcome %+v: state %q", o, b.state)
		}
		if o.Status == errand.Retrying {
			// Due RetryIn after the statement's now() (between before and
			// after), by the database clock; the previous result is kept.
			if b.runAt.Before(before.Add(o.RetryIn)) || b.runAt.After(after.Add(o.RetryIn)) || string(b.result) != `"prior"` {
				t.Fatalf("outcome %+v: run_at %v (want %v + %v), result %q", o, b.runAt, before, o.RetryIn, b.result)
			}
		} else if !b.runAt.Equal(runAt[batch[i].ID]) {
			t.Fatalf("outcome %+v: run_at moved from %v to %v", o, runAt[batch[i].ID], b.runAt)
		}
	}
}

// statusName is the stored state of a Status.
func statusName(st errand.Status) string { return st.String() }

// TestStoreCompleteManyFencing mixes held, stale, repeated, malformed and
// unknown leases in one batch: only the held ones are recorded, the others
// are returned, in order.
func TestStoreCompleteManyFencing(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	staleID := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.MaxAttempts = 3 }))
	stale := claimOne(t, s)
	expireLease(t, pool, staleID)
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := claimOne(t, s)
	if fresh.ID != staleID || fresh.Token == stale.Token {
		t.Fatalf("re-claim: %+v", fresh)
	}
	okID := mustEnqueue(t, s, task())
	ok := claimOne(t, s)
	doneID := mustEnqueue(t, s, task())
	done := claimOne(t, s)
	if err := s.Complete(ctx, done.Lease, errand.Outcome{Status: errand.Succeeded, Result: []byte(`1`)}); err != nil {
		t.Fatal(err)
	}
	malformed := errand.Lease{ID: "not-a-uuid", Token: uuid.NewString()}
	unknown := errand.Lease{ID: uuid.NewString(), Token: uuid.NewString()}
	// The same lease in upper case names the same claim: a repeat.
	upper := errand.Lease{ID: strings.ToUpper(ok.ID), Token: strings.ToUpper(ok.Token)}

	refused, err := s.CompleteMany(ctx, []errand.Completion{
		{Lease: stale.Lease, Outcome: errand.Outcome{Status: errand.Failed, Error: "stale"}},
		{Lease: ok.Lease, Outcome: errand.Outcome{Status: errand.Succeeded, Result: []byte(`"ok"`)}},
		{Lease: malformed, Outcome: errand.Outcome{Status: errand.Succeeded}},
		{Lease: fresh.Lease, Outcome: errand.Outcome{Status: errand.Retrying, Error: "again", RetryIn: time.Hour}},
		{Lease: upper, Outcome: errand.Outcome{Status: errand.Failed, Error: "repeat"}},
		{Lease: done.Lease, Outcome: errand.Outcome{Status: errand.Failed, Error: "late"}},
		{Lease: unknown, Outcome: errand.Outcome{Status: errand.Canceled}},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []errand.Lease{stale.Lease, malformed, upper, done.Lease, unknown}
	if !slices.Equal(refused, want) {
		t.Fatalf("refused %v, want %v", refused, want)
	}
	if rec := mustLookup(t, s, okID); rec.Status != errand.Succeeded || string(rec.Result) != `"ok"` || rec.Error != "" {
		t.Fatalf("held lease: %+v", rec)
	}
	if rec := mustLookup(t, s, staleID); rec.Status != errand.Retrying || rec.Error != "again" || rec.Attempts != 2 {
		t.Fatalf("fresh lease's outcome (the stale one refused): %+v", rec)
	}
	if rec := mustLookup(t, s, doneID); rec.Status != errand.Succeeded || string(rec.Result) != "1" || rec.Error != "" {
		t.Fatalf("a finished task was overwritten: %+v", rec)
	}
	// Everything recorded released its lease: a second batch is refused.
	again := []errand.Completion{
		{Lease: ok.Lease, Outcome: errand.Outcome{Status: errand.Failed}},
		{Lease: fresh.Lease, Outcome: errand.Outcome{Status: errand.Failed}},
	}
	if refused, err := s.CompleteMany(ctx, again); err != nil || !slices.Equal(refused, []errand.Lease{ok.Lease, fresh.Lease}) {
		t.Fatalf("second batch: refused %v, %v", refused, err)
	}
}

func TestStoreCompleteManyBadInput(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	for _, cs := range [][]errand.Completion{nil, {}} {
		if refused, err := s.CompleteMany(ctx, cs); err != nil || refused != nil {
			t.Fatalf("CompleteMany(%#v) = %v, %v; want nil, nil", cs, refused, err)
		}
	}
	id := mustEnqueue(t, s, task())
	c := claimOne(t, s)
	for _, st := range []errand.Status{0, errand.Queued, errand.Running, errand.Status(99)} {
		_, err := s.CompleteMany(ctx, []errand.Completion{
			{Lease: c.Lease, Outcome: errand.Outcome{Status: errand.Succeeded}},
			{Lease: c.Lease, Outcome: errand.Outcome{Status: st}},
		})
		if err == nil || !strings.Contains(err.Error(), "outcome status") {
			t.Fatalf("status %v: err %v, want an outcome status error", st, err)
		}
	}
	if rec := mustLookup(t, s, id); rec.Status != errand.Running {
		t.Fatalf("a batch with a bad status recorded something: %+v", rec)
	}
	// Only malformed leases: refused without a round trip (the pool is
	// closed, so one would fail).
	closed := New(newClosedPool(t, pool))
	bad := []errand.Lease{{ID: "x", Token: "y"}, {ID: c.ID, Token: ""}}
	refused, err := closed.CompleteMany(ctx, []errand.Completion{
		{Lease: bad[0], Outcome: errand.Outcome{Status: errand.Failed}},
		{Lease: bad[1], Outcome: errand.Outcome{Status: errand.Succeeded}},
	})
	if err != nil || !slices.Equal(refused, bad) {
		t.Fatalf("malformed leases: refused %v, %v; want %v", refused, err, bad)
	}
	// A database error is returned, and the batch is not reported refused.
	refused, err = closed.CompleteMany(ctx, []errand.Completion{{Lease: c.Lease, Outcome: errand.Outcome{Status: errand.Succeeded}}})
	if err == nil || refused != nil {
		t.Fatalf("CompleteMany on a closed pool: %v, %v; want an error", refused, err)
	}
	if _, err := New(nil).CompleteMany(ctx, nil); err == nil {
		t.Fatal("CompleteMany on New(nil) succeeded")
	}
}

// newClosedPool returns a closed pool on pool's database.
func newClosedPool(t *testing.T, pool *pgxpool.Pool) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.NewWithConfig(testCtx(t), pool.Config())
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	return p
}

// TestStoreCompleteManyNotifiesOncePerStatement checks migration 3's done
// notifications: a batch finishing 450 tasks (and retrying one) sends 3
// notifications of up to 200 comma-separated ids, each under 7,900 bytes,
// and updates that finish nothing (claims, heartbeats, retries) send none.
func TestStoreCompleteManyNotifiesOncePerStatement(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	_, doneCh, err := notifyChannels(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{doneCh}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	const n = 451
	for range n {
		mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.MaxAttempts = 2 }))
	}
	cs := mustClaim(t, s, []string{"a"}, n)
	if len(cs) != n {
		t.Fatalf("claimed %d", len(cs))
	}
	leases := make([]errand.Lease, n)
	for i, c := range cs {
		leases[i] = c.Lease
	}
	if lost, err := s.Heartbeat(ctx, leases, time.Hour); err != nil || len(lost) != 0 {
		t.Fatal(lost, err)
	}
	comps := make([]errand.Completion, n)
	want := make([]string, 0, n-1)
	for i, c := range cs {
		comps[i] = errand.Completion{Lease: c.Lease, Outcome: errand.Outcome{Status: errand.Succeeded}}
		switch {
		case i == 7:
			comps[i].Status, comps[i].RetryIn = errand.Retrying, time.Hour
			continue
		case i%3 == 1:
			comps[i].Status = errand.Failed
		case i%3 == 2:
			comps[i].Status = errand.Canceled
		}
		want = append(want, c.ID)
	}
	if refused, err := s.CompleteMany(ctx, comps); err != nil || len(refused) != 0 {
		t.Fatal(refused, err)
	}
	const sentinel = "sentinel"
	mustExec(t, pool, `SELECT pg_notify($1, $2)`, doneCh, sentinel)
	var got []string
	var sizes []int
	for {
		wctx, cancel := context.WithTimeout(ctx, notifyWait)
		note, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("waiting for notifications (got %d ids in %v): %v", len(got), sizes, err)
		}
		if note.Payload == sentinel {
			break
		}
		sizes = append(sizes, len(note.Payload))
		got = append(got, strings.Split(note.Payload, ",")...)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("notified %d ids, want the %d finished", len(got), len(want))
	}
	if len(sizes) != 3 {
		t.Fatalf("%d notifications of %v bytes, want 3 (200 ids each at most)", len(sizes), sizes)
	}
	for _, sz := range sizes {
		if sz > 7900 {
			t.Fatalf("payload of %d bytes", sz)
		}
	}
}

// TestStoreListenSplitsBatches runs Store.Listen over a batch: done is
// called once per finished task.
func TestStoreListenSplitsBatches(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	lr := listenFor(t, s)
	var comps []errand.Completion
	want := map[string]bool{}
	for range 3 {
		want[mustEnqueue(t, s, task())] = true
	}
	for _, c := range mustClaim(t, s, []string{"a"}, 3) {
		comps = append(comps, errand.Completion{Lease: c.Lease, Outcome: errand.Outcome{Status: errand.Succeeded}})
	}
	if refused, err := s.CompleteMany(ctx, comps); err != nil || len(refused) != 0 {
		t.Fatal(refused, err)
	}
	for range len(comps) {
		select {
		case id := <-lr.done:
			if !want[id] {
				t.Fatalf("done(%q): not one of the batch, or twice", id)
			}
			delete(want, id)
		case <-time.After(notifyWait):
			t.Fatalf("done not called for %v within %v", want, notifyWait)
		}
	}
}

// TestHeartbeatAndHandBackNeverWait: heartbeat and handBackAll skip a row
// another transaction has locked (as a batch of completions does while it
// writes), so they cannot deadlock with one. The heartbeat renews the
// others and still reports the locked lease held; the hand-back leaves it.
func TestHeartbeatAndHandBackNeverWait(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	for range 3 {
		mustInsert(t, pool, newTask{maxAttempts: 2})
	}
	cs := mustFetch(t, pool, 3)
	ls := []lease{leaseOf(cs[0]), leaseOf(cs[1]), leaseOf(cs[2])}
	locked, free := ls[1], []lease{ls[0], ls[2]}
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	mustExec(t, holder, `SELECT 1 FROM errand_tasks WHERE id = $1 FOR UPDATE`, locked.id)
	leaseUntil := mustGet(t, pool, locked.id).leaseUntil

	// A wait would last until the deadline: the holder commits only later.
	wctx, cancel := context.WithTimeout(ctx, notifyWait)
	defer cancel()
	held, err := heartbeat(wctx, pool, ls, 2*time.Hour)
	if err != nil {
		t.Fatalf("heartbeat with a row locked: %v", err)
	}
	if len(held) != 3 || !held[locked.id] {
		t.Fatalf("heartbeat held %v, want all 3 (the locked one too)", held)
	}
	if got := mustGet(t, pool, locked.id).leaseUntil; !got.Equal(deref(leaseUntil)) {
		t.Fatalf("the locked row was renewed: %v -> %v", leaseUntil, got)
	}
	for _, l := range free {
		if !dbBool(t, pool, l.id, `lease_until > now() + interval '90 minutes'`) {
			t.Fatalf("lease %x not renewed", l.id)
		}
	}
	n, err := handBackAll(wctx, pool, ls)
	if err != nil || n != 2 {
		t.Fatalf("handBackAll with a row locked = %d, %v; want 2", n, err)
	}
	for _, l := range free {
		if r := mustGet(t, pool, l.id); r.state != stateQueued {
			t.Fatalf("not handed back: %+v", r)
		}
	}
	if r := mustGet(t, pool, locked.id); r.state != stateRunning {
		t.Fatalf("the locked row was handed back: %+v", r)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	// Unlocked, it is renewed and handed back as usual.
	if held, err := heartbeat(ctx, pool, []lease{locked}, 2*time.Hour); err != nil || !held[locked.id] ||
		!dbBool(t, pool, locked.id, `lease_until > now() + interval '90 minutes'`) {
		t.Fatalf("heartbeat after the unlock: %v, %v", held, err)
	}
	if ok, err := handBack(ctx, pool, locked); err != nil || !ok {
		t.Fatalf("handBack after the unlock: %v, %v", ok, err)
	}
}

// TestLeaseStatementsProbeByID: the statements on many leases find their
// rows by primary key (or one hash join), never by scanning every running
// task per lease, even when the statistics say almost nothing runs (taken
// after a bulk insert) and under a prepared statement's generic plan, as
// pgx's statement cache gets after five runs. That plan made a batch of
// 1,000 completions among 15,000 running tasks take seconds.
func TestLeaseStatementsProbeByID(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	mustExec(t, pool, `INSERT INTO errand_tasks (id, kind) SELECT gen_random_uuid(), 'bulk' FROM generate_series(1, 20000)`)
	mustExec(t, pool, `ANALYZE errand_tasks`)
	mustExec(t, pool, `UPDATE errand_tasks SET state = 'running', attempts = 1, lease_token = gen_random_uuid(),
		lease_until = now() + interval '1 hour' WHERE id IN (SELECT id FROM errand_tasks LIMIT 15000)`)
	rows, err := pool.Query(ctx, `SELECT id, lease_token FROM errand_tasks WHERE state = 'running' ORDER BY random() LIMIT 1000`)
	if err != nil {
		t.Fatal(err)
	}
	var ids, tokens [][16]byte
	var id, tok [16]byte
	if _, err := pgx.ForEachRow(rows, []any{&id, &tok}, func() error {
		ids, tokens = append(ids, id), append(tokens, tok)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	states := make([]string, len(ids))
	results := make([][]byte, len(ids))
	errs := make([]*string, len(ids))
	delays := make([]int64, len(ids))
	for i := range states {
		states[i] = stateSucceeded
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
		mustExec(t, conn, "SET plan_cache_mode = "+mode)
		for _, tt := range []struct {
			name, sql string
			args      []any
		}{
			{"heartbeat", sqlHeartbeat, []any{ids, tokens, int64(30000)}},
			{"completeMany", sqlCompleteMany, []any{ids, tokens, states, results, errs, delays}},
			{"handBack", sqlHandBack, []any{ids, tokens}},
		} {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				plan, text := explain(t, conn, tt.sql, tt.args...)
				var check func(n planNode, underHash bool)
				check = func(n planNode, underHash bool) {
					if n.RelationName == "errand_tasks" && n.NodeType != "ModifyTable" {
						byID := (n.NodeType == "Index Scan" || n.NodeType == "Index Only Scan") && n.IndexName == "errand_tasks_pkey"
						hashed := n.NodeType == "Seq Scan" && underHash
						if !byID && !hashed {
							t.Errorf("errand_tasks read by %s %s, want primary-key probes or one hashed scan:\n%s", n.NodeType, n.IndexName, text)
						}
					}
					for _, c := range n.Plans {
						check(c, n.NodeType == "Hash")
					}
				}
				check(plan, false)
			})
		}
	}
	mustExec(t, conn, "RESET plan_cache_mode")
}
