package errandpg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandgo/errand"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The Store's methods, each against a real PostgreSQL.

func newStore(t *testing.T, opts ...Option) (*Store, *pgxpool.Pool) {
	t.Helper()
	pool := migratedPool(t)
	s := New(pool, opts...)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s, pool
}

// task is a NewTask of kind "a" with a fresh id.
func task(mod ...func(*errand.NewTask)) errand.NewTask {
	nt := errand.NewTask{ID: uuid.NewString(), Kind: "a", Args: []byte(`{"n":1}`), MaxAttempts: 1}
	for _, m := range mod {
		m(&nt)
	}
	return nt
}

func mustEnqueue(t *testing.T, s *Store, nt errand.NewTask) string {
	t.Helper()
	id, existing, err := s.Enqueue(testCtx(t), nt)
	if err != nil || existing || id != nt.ID {
		t.Fatalf("Enqueue: %q, existing %v, %v; want %q", id, existing, err, nt.ID)
	}
	return id
}

func mustLookup(t *testing.T, s *Store, id string) errand.TaskRecord {
	t.Helper()
	recs, err := s.Lookup(testCtx(t), []string{id})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Lookup(%s): %+v, %v", id, recs, err)
	}
	return recs[0]
}

func mustClaim(t *testing.T, s *Store, kinds []string, n int) []errand.Claim {
	t.Helper()
	cs, err := s.Claim(testCtx(t), kinds, n, testLease, "holder-1")
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return cs
}

func claimOne(t *testing.T, s *Store) errand.Claim {
	t.Helper()
	cs := mustClaim(t, s, []string{"a"}, 1)
	if len(cs) != 1 {
		t.Fatalf("Claim claimed %d, want 1", len(cs))
	}
	return cs[0]
}

func claimIDs(cs []errand.Claim) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// expireLease moves a running task's lease into the past, as the database
// clock passing it would.
func expireLease(t *testing.T, pool *pgxpool.Pool, id string) {
	t.Helper()
	if n := mustExec(t, pool, `UPDATE errand_tasks SET lease_until = now() - interval '1 millisecond' WHERE id = $1 AND state = 'running'`, id); n != 1 {
		t.Fatalf("expireLease updated %d rows", n)
	}
}

func TestNewRecordsErrors(t *testing.T) {
	// A pool that never connects: none of these may touch it.
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var nilStore *Store
	for _, tt := range []struct {
		name string
		s    *Store
		want string
	}{
		{"nil pool", New(nil), "nil *pgxpool.Pool"},
		{"zero retention", New(pool, WithRetention(0)), "WithRetention(0s)"},
		{"negative retention", New(pool, WithRetention(-time.Hour)), "WithRetention(-1h0m0s)"},
		{"zero batch", New(pool, WithMaintainBatch(0)), "WithMaintainBatch(0)"},
		{"nil option", New(pool, nil), "option 0 is nil"},
		{"nil store", nilStore, "nil *Store"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			check := func(method string, err error) {
				t.Helper()
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("%s: %v, want an error containing %q", method, err, tt.want)
				}
			}
			check("Err", tt.s.Err())
			_, _, err := tt.s.Enqueue(ctx, task())
			check("Enqueue", err)
			_, err = tt.s.Claim(ctx, []string{"a"}, 1, time.Second, "h")
			check("Claim", err)
			_, err = tt.s.Heartbeat(ctx, nil, time.Second)
			check("Heartbeat", err)
			check("Complete", tt.s.Complete(ctx, errand.Lease{}, errand.Outcome{Status: errand.Succeeded}))
			check("Release", tt.s.Release(ctx, nil))
			_, err = tt.s.Cancel(ctx, uuid.NewString())
			check("Cancel", err)
			_, err = tt.s.Lookup(ctx, []string{uuid.NewString()})
			check("Lookup", err)
			check("Schedule", tt.s.Schedule(ctx, errand.ScheduleRecord{ID: "x", Kind: "a", Spec: "@every 1m", MaxAttempts: 1}, time.Now()))
			check("Unschedule", tt.s.Unschedule(ctx, "x"))
			_, err = tt.s.FireSchedules(ctx, func(string, time.Time) (time.Time, error) { return time.Time{}, nil })
			check("FireSchedules", err)
			check("Maintain", tt.s.Maintain(ctx))
			check("Listen", tt.s.Listen(ctx, func() {}, func(string) {}))
		})
	}
	if err := New(pool, WithRetention(time.Hour), WithMaintainBatch(5), WithNotifications(false)).Err(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
}

func TestStoreEnqueue(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)

	id := mustEnqueue(t, s, task(func(nt *errand.NewTask) {
		nt.Priority, nt.MaxAttempts, nt.Timeout, nt.Key = -7, 3, 1500*time.Millisecond, "k1"
	}))
	rec := mustLookup(t, s, id)
	if rec.ID != id || rec.Kind != "a" || rec.Status != errand.Queued || rec.Priority != -7 || rec.MaxAttempts != 3 ||
		rec.Attempts != 0 || string(rec.Args) != `{"n":1}` || rec.Key != "k1" || rec.Created.IsZero() ||
		!rec.Started.IsZero() || !rec.Finished.IsZero() || rec.Holder != "" {
		t.Fatalf("Lookup of a new task: %+v", rec)
	}
	if got := mustGet(t, pool, uuid.MustParse(id)); got.timeout != 1500*time.Millisecond {
		t.Fatalf("stored timeout %v", got.timeout)
	}

	t.Run("Delay by the database clock", func(t *testing.T) {
		before := dbNow(t, pool)
		id := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.Delay = time.Hour }))
		rec := mustLookup(t, s, id)
		if rec.Status != errand.Scheduled || rec.RunAt.Before(before.Add(time.Hour)) || rec.RunAt.After(dbNow(t, pool).Add(time.Hour)) {
			t.Fatalf("delayed task: status %v, run at %v (db now before %v)", rec.Status, rec.RunAt, before)
		}
	})
	t.Run("RunAt absolute", func(t *testing.T) {
		at := dbNow(t, pool).Add(90 * time.Minute).Truncate(time.Microsecond)
		id := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.RunAt, nt.Delay = at, time.Second }))
		rec := mustLookup(t, s, id)
		if rec.Status != errand.Scheduled || !rec.RunAt.Equal(at) {
			t.Fatalf("RunAt task: status %v, run at %v, want %v (RunAt wins over Delay)", rec.Status, rec.RunAt, at)
		}
		past := dbNow(t, pool).Add(-time.Hour).Truncate(time.Microsecond)
		id = mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.RunAt, nt.Kind = past, "past" }))
		rec = mustLookup(t, s, id)
		if rec.Status != errand.Queued || !rec.RunAt.Equal(past) {
			t.Fatalf("RunAt in the past: status %v, run at %v, want queued at %v", rec.Status, rec.RunAt, past)
		}
		if cs := mustClaim(t, s, []string{"past"}, 5); len(cs) != 1 || cs[0].ID != id {
			t.Fatalf("a task with RunAt in the past is not claimable: %+v", cs)
		}
	})
	t.Run("key held by a live task", func(t *testing.T) {
		dup := task(func(nt *errand.NewTask) { nt.Key = "k1" })
		got, existing, err := s.Enqueue(ctx, dup)
		if err != nil || !existing || got != id {
			t.Fatalf("Enqueue with a held key: %q, existing %v, %v; want %q, true", got, existing, err, id)
		}
		if recs, _ := s.Lookup(ctx, []string{dup.ID}); len(recs) != 0 {
			t.Fatalf("the duplicate was stored: %+v", recs)
		}
		// Held while it runs; free once it finished.
		c := claimOne(t, s)
		if c.ID != id {
			t.Fatalf("claimed %s, want %s", c.ID, id)
		}
		if got, existing, _ := s.Enqueue(ctx, dup); !existing || got != id {
			t.Fatalf("key not held while running: %q, %v", got, existing)
		}
		if err := s.Complete(ctx, c.Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
			t.Fatal(err)
		}
		if got, existing, err := s.Enqueue(ctx, dup); err != nil || existing || got != dup.ID {
			t.Fatalf("key not free after the holder finished: %q, %v, %v", got, existing, err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for name, nt := range map[string]errand.NewTask{
			"id not a UUID":     task(func(nt *errand.NewTask) { nt.ID = "nope" }),
			"empty kind":        task(func(nt *errand.NewTask) { nt.Kind = "" }),
			"zero MaxAttempts":  task(func(nt *errand.NewTask) { nt.MaxAttempts = 0 }),
			"negative timeout":  task(func(nt *errand.NewTask) { nt.Timeout = -time.Second }),
			"priority overflow": task(func(nt *errand.NewTask) { nt.Priority = 1 << 40 }),
		} {
			if _, _, err := s.Enqueue(ctx, nt); err == nil {
				t.Errorf("%s: Enqueue accepted %+v", name, nt)
			}
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM errand_tasks WHERE kind = '' OR max_attempts = 0`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("bad tasks stored: %d, %v", n, err)
		}
	})
	t.Run("duplicate id", func(t *testing.T) {
		nt := task()
		mustEnqueue(t, s, nt)
		if _, _, err := s.Enqueue(ctx, nt); err == nil {
			t.Fatal("Enqueue of an id already stored succeeded")
		}
	})
}

func TestStoreClaimOrderAndKinds(t *testing.T) {
	s, pool := newStore(t)
	now := dbNow(t, pool)
	at := func(d time.Duration) time.Time { return now.Add(d).Truncate(time.Microsecond) }
	// Inserted out of order: want priority desc, then due time, then id.
	idLow := "00000000-0000-4000-8000-000000000001"
	idHigh := "ffffffff-0000-4000-8000-000000000001"
	add := func(id string, prio int, runAt time.Time, kind string) string {
		nt := task(func(nt *errand.NewTask) { nt.Priority, nt.RunAt, nt.Kind = prio, runAt, kind })
		if id != "" {
			nt.ID = id
		}
		return mustEnqueue(t, s, nt)
	}
	c := add("", 0, at(-time.Minute), "a")
	b2 := add(idHigh, 5, at(-time.Hour), "a")
	b1 := add(idLow, 5, at(-time.Hour), "a")
	a := add("", 9, at(-time.Second), "a")
	d := add("", 5, at(-time.Second), "a")
	add("", 100, at(-time.Hour), "other") // another kind
	add("", 100, at(time.Hour), "a")      // not due
	want := []string{a, b1, b2, d, c}

	got := mustClaim(t, s, []string{"a", "b"}, 10)
	if !slices.Equal(claimIDs(got), want) {
		t.Fatalf("claimed %v, want %v", claimIDs(got), want)
	}
	for _, c := range got {
		rec := mustLookup(t, s, c.ID)
		if c.Attempt != 1 || c.MaxAttempts != 1 || c.Kind != "a" || string(c.Args) != `{"n":1}` || c.Token == "" ||
			rec.Status != errand.Running || rec.Holder != "holder-1" || rec.Attempts != 1 || rec.Started.IsZero() {
			t.Fatalf("claim %+v, record %+v", c, rec)
		}
	}
	if cs := mustClaim(t, s, []string{"a"}, 10); len(cs) != 0 {
		t.Fatalf("claimed again: %v", claimIDs(cs))
	}
	if cs := mustClaim(t, s, []string{"other"}, 10); len(cs) != 1 {
		t.Fatalf("claimed %d of kind other, want 1", len(cs))
	}
	if cs, err := s.Claim(testCtx(t), []string{"a"}, 0, testLease, "h"); err != nil || cs != nil {
		t.Fatalf("Claim of 0: %v, %v", cs, err)
	}
	if _, err := s.Claim(testCtx(t), []string{"a"}, 1, 0, "h"); err == nil {
		t.Fatal("Claim with a zero lease succeeded")
	}
}

func TestStoreConcurrentClaimersNeverShare(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	const n, claimers = 400, 8
	mustExec(t, pool, `INSERT INTO errand_tasks (id, kind, priority)
		SELECT gen_random_uuid(), 'a', (random() * 3)::int FROM generate_series(1, $1)`, n)
	seen := claimConcurrently(t, claimers, func(i int) ([]string, error) {
		cs, err := s.Claim(ctx, []string{"a"}, 7, testLease, fmt.Sprintf("h%d", i))
		return claimIDs(cs), err
	})
	if len(seen) != n {
		t.Fatalf("claimed %d distinct tasks, want %d", len(seen), n)
	}
}

func TestStoreHeartbeat(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	mustEnqueue(t, s, task())
	mustEnqueue(t, s, task())
	cs := mustClaim(t, s, []string{"a"}, 2)
	if len(cs) != 2 {
		t.Fatalf("claimed %d", len(cs))
	}
	keep, lose := cs[0], cs[1]
	// lose's lease expires and another process recovers it.
	expireLease(t, pool, lose.ID)
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	before := mustGet(t, pool, uuid.MustParse(keep.ID)).leaseUntil
	bogus := errand.Lease{ID: "not-a-uuid", Token: "x"}
	lost, err := s.Heartbeat(ctx, []errand.Lease{keep.Lease, lose.Lease, bogus}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(lost, func(a, b errand.Lease) int { return strings.Compare(a.ID, b.ID) })
	want := []errand.Lease{lose.Lease, bogus}
	slices.SortFunc(want, func(a, b errand.Lease) int { return strings.Compare(a.ID, b.ID) })
	if !slices.Equal(lost, want) {
		t.Fatalf("Heartbeat lost %v, want %v", lost, want)
	}
	after := mustGet(t, pool, uuid.MustParse(keep.ID)).leaseUntil
	if !after.After(before.Add(50 * time.Minute)) {
		t.Fatalf("lease not renewed for an hour: %v -> %v", before, after)
	}
	if lost, err := s.Heartbeat(ctx, nil, time.Hour); err != nil || len(lost) != 0 {
		t.Fatalf("empty Heartbeat: %v, %v", lost, err)
	}
}

func TestStoreCompleteFencing(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	id := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.MaxAttempts = 3 }))
	stale := claimOne(t, s)
	expireLease(t, pool, id)
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if rec := mustLookup(t, s, id); rec.Status != errand.Retrying || !strings.Contains(rec.Error, "lease expired") {
		t.Fatalf("recovered task: %+v", rec)
	}
	fresh := claimOne(t, s)
	if fresh.ID != id || fresh.Attempt != 2 || fresh.Token == stale.Token {
		t.Fatalf("re-claim: %+v", fresh)
	}
	for _, st := range []errand.Status{errand.Succeeded, errand.Failed, errand.Canceled, errand.Retrying} {
		err := s.Complete(ctx, stale.Lease, errand.Outcome{Status: st, Result: []byte(`"stale"`), Error: "stale"})
		if !errors.Is(err, errand.ErrLeaseLost) {
			t.Fatalf("stale Complete(%v): %v, want ErrLeaseLost", st, err)
		}
	}
	if err := s.Complete(ctx, fresh.Lease, errand.Outcome{Status: errand.Succeeded, Result: []byte(`42`)}); err != nil {
		t.Fatal(err)
	}
	rec := mustLookup(t, s, id)
	if rec.Status != errand.Succeeded || string(rec.Result) != "42" || rec.Error != "" || rec.Finished.IsZero() || rec.Attempts != 2 {
		t.Fatalf("after Complete: %+v", rec)
	}
	if err := s.Complete(ctx, fresh.Lease, errand.Outcome{Status: errand.Failed, Error: "again"}); !errors.Is(err, errand.ErrLeaseLost) {
		t.Fatalf("second Complete: %v, want ErrLeaseLost", err)
	}
	if string(mustLookup(t, s, id).Result) != "42" {
		t.Fatal("the result was overwritten")
	}
	if err := s.Complete(ctx, errand.Lease{ID: "x", Token: "y"}, errand.Outcome{Status: errand.Succeeded}); err == nil {
		t.Fatal("Complete of a malformed lease succeeded")
	}
}

func TestStoreCompleteOutcomes(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	for _, tt := range []struct {
		o    errand.Outcome
		want errand.Status
	}{
		{errand.Outcome{Status: errand.Failed, Error: "boom"}, errand.Failed},
		{errand.Outcome{Status: errand.Canceled, Error: "context canceled"}, errand.Canceled},
		{errand.Outcome{Status: errand.Retrying, Error: "later", RetryIn: time.Hour}, errand.Retrying},
	} {
		id := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.MaxAttempts = 2 }))
		c := claimOne(t, s)
		before := dbNow(t, pool)
		if err := s.Complete(ctx, c.Lease, tt.o); err != nil {
			t.Fatal(err)
		}
		rec := mustLookup(t, s, id)
		if rec.Status != tt.want || rec.Error != tt.o.Error || rec.Attempts != 1 {
			t.Fatalf("Complete(%+v): %+v", tt.o, rec)
		}
		switch tt.want {
		case errand.Retrying:
			if !rec.Finished.IsZero() || rec.RunAt.Before(before.Add(time.Hour)) || rec.RunAt.After(dbNow(t, pool).Add(time.Hour)) {
				t.Fatalf("retry due at %v, want an hour after %v", rec.RunAt, before)
			}
			if cs := mustClaim(t, s, []string{"a"}, 5); len(cs) != 0 {
				t.Fatalf("a task backing off was claimed: %v", claimIDs(cs))
			}
			makeDue(t, pool, uuid.MustParse(id))
			if c2 := claimOne(t, s); c2.ID != id || c2.Attempt != 2 {
				t.Fatalf("retry claim: %+v", c2)
			}
		default:
			if rec.Finished.IsZero() {
				t.Fatalf("final task without Finished: %+v", rec)
			}
		}
	}
	mustEnqueue(t, s, task())
	c := claimOne(t, s)
	if err := s.Complete(ctx, c.Lease, errand.Outcome{Status: errand.Running}); err == nil {
		t.Fatal("Complete with status Running succeeded")
	}
}

func TestStoreReleaseKeepsAttempts(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	id1 := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.MaxAttempts = 2 }))
	id2 := mustEnqueue(t, s, task())
	cs := mustClaim(t, s, []string{"a"}, 2)
	if len(cs) != 2 {
		t.Fatalf("claimed %d", len(cs))
	}
	// id1 is on its second attempt: fail the first, then claim again.
	if err := s.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Retrying, Error: "x"}); err != nil {
		t.Fatal(err)
	}
	makeDue(t, pool, uuid.MustParse(id1))
	second := claimOne(t, s)
	if second.Attempt != 2 {
		t.Fatalf("attempt %d", second.Attempt)
	}
	stale := errand.Lease{ID: id2, Token: uuid.NewString()}
	if err := s.Release(ctx, []errand.Lease{second.Lease, cs[1].Lease, stale, {ID: "bad"}}); err != nil {
		t.Fatal(err)
	}
	for id, attempts := range map[string]int{id1: 1, id2: 0} {
		if rec := mustLookup(t, s, id); rec.Status != errand.Queued || rec.Attempts != attempts || rec.Holder != "" {
			t.Fatalf("released %s: %+v, want queued with %d attempts", id, rec, attempts)
		}
	}
	got := mustClaim(t, s, []string{"a"}, 2)
	attempts := map[string]int{}
	for _, c := range got {
		attempts[c.ID] = c.Attempt
	}
	if attempts[id1] != 2 || attempts[id2] != 1 {
		t.Fatalf("after Release, claims %v", attempts)
	}
	if err := s.Release(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

func TestStoreCancel(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	waiting := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.Delay = time.Hour }))
	running := mustEnqueue(t, s, task())
	claimOne(t, s)
	for _, tt := range []struct {
		id   string
		want bool
	}{{waiting, true}, {waiting, false}, {running, false}, {uuid.NewString(), false}, {"not-a-uuid", false}} {
		if ok, err := s.Cancel(ctx, tt.id); err != nil || ok != tt.want {
			t.Fatalf("Cancel(%s): %v, %v; want %v", tt.id, ok, err, tt.want)
		}
	}
	if rec := mustLookup(t, s, waiting); rec.Status != errand.Canceled || rec.Finished.IsZero() {
		t.Fatalf("canceled: %+v", rec)
	}
	if rec := mustLookup(t, s, running); rec.Status != errand.Running {
		t.Fatalf("running task after Cancel: %+v", rec)
	}
}

func TestStoreLookup(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	var ids []string
	for range 3 {
		ids = append(ids, mustEnqueue(t, s, task()))
	}
	recs, err := s.Lookup(ctx, append([]string{uuid.NewString(), "junk"}, ids...))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.ID)
	}
	slices.Sort(got)
	slices.Sort(ids)
	if !slices.Equal(got, ids) {
		t.Fatalf("Lookup returned %v, want %v", got, ids)
	}
	if recs, err := s.Lookup(ctx, nil); err != nil || len(recs) != 0 {
		t.Fatalf("Lookup(nil): %v, %v", recs, err)
	}
}

// scheduleRow reads a schedule's next due time and args.
func scheduleRow(t *testing.T, pool *pgxpool.Pool, id string) (next time.Time, args []byte, spec string) {
	t.Helper()
	if err := pool.QueryRow(testCtx(t), `SELECT next_run_at, args, spec FROM errand_schedules WHERE id = $1`, id).Scan(&next, &args, &spec); err != nil {
		t.Fatal(err)
	}
	return next, args, spec
}

func TestStoreScheduleUpsert(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	first := dbNow(t, pool).Add(time.Hour).Truncate(time.Microsecond)
	rec := errand.ScheduleRecord{ID: "nightly", Kind: "a", Spec: "@every 1h", Args: []byte(`1`), MaxAttempts: 1}
	if err := s.Schedule(ctx, rec, first); err != nil {
		t.Fatal(err)
	}
	// Registered again (another process starting): keeps its due time, takes the new args.
	rec.Args = []byte(`2`)
	if err := s.Schedule(ctx, rec, first.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if next, args, _ := scheduleRow(t, pool, "nightly"); !next.Equal(first) || string(args) != "2" {
		t.Fatalf("same spec: next %v args %s; want %v, 2", next, args, first)
	}
	// A new spec: due at the new first time.
	rec.Spec = "@every 2h"
	if err := s.Schedule(ctx, rec, first.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if next, _, spec := scheduleRow(t, pool, "nightly"); !next.Equal(first.Add(time.Minute)) || spec != "@every 2h" {
		t.Fatalf("new spec: next %v spec %s", next, spec)
	}
	for name, bad := range map[string]errand.ScheduleRecord{
		"no id":          {Kind: "a", Spec: "@hourly", MaxAttempts: 1},
		"no kind":        {ID: "x", Spec: "@hourly", MaxAttempts: 1},
		"no spec":        {ID: "x", Kind: "a", MaxAttempts: 1},
		"no attempts":    {ID: "x", Kind: "a", Spec: "@hourly"},
		"negative limit": {ID: "x", Kind: "a", Spec: "@hourly", MaxAttempts: 1, Timeout: -1},
	} {
		if err := s.Schedule(ctx, bad, first); err == nil {
			t.Errorf("%s: Schedule accepted %+v", name, bad)
		}
	}
	if err := s.Schedule(ctx, errand.ScheduleRecord{ID: "x", Kind: "a", Spec: "@hourly", MaxAttempts: 1}, time.Time{}); err == nil {
		t.Error("Schedule with a zero first time succeeded")
	}
}

// everyMinute is a next function for FireSchedules: a minute after, and
// records what it was asked.
type everyMinute struct {
	mu    sync.Mutex
	after []time.Time
}

func (e *everyMinute) next(spec string, after time.Time) (time.Time, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.after = append(e.after, after)
	if spec == "broken" {
		return time.Time{}, errors.New("cannot parse")
	}
	if spec == "last" {
		return time.Time{}, nil
	}
	return after.Add(time.Minute), nil
}

// runsOf returns the ids of the runs of schedule id.
func runsOf(t *testing.T, pool *pgxpool.Pool, id string) []string {
	t.Helper()
	rows, err := pool.Query(testCtx(t), `SELECT id::text FROM errand_tasks WHERE schedule_id = $1 ORDER BY created_at`, id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// makeScheduleDue moves a schedule's next due time to just before now.
func makeScheduleDue(t *testing.T, pool *pgxpool.Pool, id string) {
	t.Helper()
	if n := mustExec(t, pool, `UPDATE errand_schedules SET next_run_at = now() - interval '1 millisecond' WHERE id = $1`, id); n != 1 {
		t.Fatalf("makeScheduleDue updated %d rows", n)
	}
}

func TestStoreFireSchedulesOnceAcrossCallers(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	due := dbNow(t, pool).Add(-time.Second).Truncate(time.Microsecond)
	rec := errand.ScheduleRecord{ID: "s1", Kind: "a", Spec: "@every 1m", Args: []byte(`{"x":1}`), Priority: 3, MaxAttempts: 4, Timeout: time.Second}
	if err := s.Schedule(ctx, rec, due); err != nil {
		t.Fatal(err)
	}
	var e everyMinute
	const callers = 8
	stored := make([]int, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			<-start
			stored[i], errs[i] = s.FireSchedules(ctx, e.next)
		})
	}
	close(start)
	wg.Wait()
	total := 0
	for i := range callers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += stored[i]
	}
	runs := runsOf(t, pool, "s1")
	if total != 1 || len(runs) != 1 {
		t.Fatalf("%d callers stored %d runs (%d in the table), want 1", callers, total, len(runs))
	}
	run := mustLookup(t, s, runs[0])
	if run.Kind != "a" || string(run.Args) != `{"x":1}` || run.Priority != 3 || run.MaxAttempts != 4 ||
		run.Schedule != "s1" || run.Key != "errand:schedule:s1" || run.Status != errand.Queued {
		t.Fatalf("run: %+v", run)
	}
	if got := mustGet(t, pool, uuid.MustParse(runs[0])); got.timeout != time.Second {
		t.Fatalf("run timeout %v", got.timeout)
	}
	if next, _, _ := scheduleRow(t, pool, "s1"); !next.Equal(due.Add(time.Minute)) {
		t.Fatalf("next due %v, want %v", next, due.Add(time.Minute))
	}

	// No overlap: due again while the run still waits: skipped, but the
	// schedule moves on.
	makeScheduleDue(t, pool, "s1")
	if n, err := s.FireSchedules(ctx, e.next); err != nil || n != 0 {
		t.Fatalf("FireSchedules with the previous run waiting: %d, %v", n, err)
	}
	if next, _, _ := scheduleRow(t, pool, "s1"); !next.After(dbNow(t, pool)) {
		t.Fatalf("a skipped run did not advance the schedule: next %v", next)
	}
	if runs := runsOf(t, pool, "s1"); len(runs) != 1 {
		t.Fatalf("runs overlap: %v", runs)
	}
	// Still skipped while it runs; fires again once it finished.
	c := claimOne(t, s)
	makeScheduleDue(t, pool, "s1")
	if n, err := s.FireSchedules(ctx, e.next); err != nil || n != 0 {
		t.Fatalf("FireSchedules with the previous run running: %d, %v", n, err)
	}
	if c.Schedule != "s1" {
		t.Fatalf("claim of a run: Schedule %q", c.Schedule)
	}
	if err := s.Complete(ctx, c.Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
		t.Fatal(err)
	}
	makeScheduleDue(t, pool, "s1")
	if n, err := s.FireSchedules(ctx, e.next); err != nil || n != 1 {
		t.Fatalf("FireSchedules after the run finished: %d, %v", n, err)
	}
	if runs := runsOf(t, pool, "s1"); len(runs) != 2 {
		t.Fatalf("runs: %v", runs)
	}
}

func TestStoreFireSchedulesCoalescesMissedRuns(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	due := dbNow(t, pool).Add(-10 * time.Minute).Truncate(time.Microsecond)
	if err := s.Schedule(ctx, errand.ScheduleRecord{ID: "late", Kind: "a", Spec: "@every 1m", MaxAttempts: 1}, due); err != nil {
		t.Fatal(err)
	}
	var e everyMinute
	n, err := s.FireSchedules(ctx, e.next)
	if err != nil || n != 1 {
		t.Fatalf("FireSchedules: %d, %v", n, err)
	}
	if runs := runsOf(t, pool, "late"); len(runs) != 1 {
		t.Fatalf("ten missed runs stored %d runs, want 1", len(runs))
	}
	next, _, _ := scheduleRow(t, pool, "late")
	now := dbNow(t, pool)
	if !next.After(now.Add(-time.Second)) || next.After(now.Add(time.Minute)) {
		t.Fatalf("next due %v, want within a minute after now %v", next, now)
	}
	if len(e.after) != 2 || !e.after[0].Equal(due) || !e.after[1].After(due) {
		t.Fatalf("next asked after %v, want the due time %v and then the database's now", e.after, due)
	}
	// Nothing due now.
	if n, err := s.FireSchedules(ctx, e.next); err != nil || n != 0 {
		t.Fatalf("FireSchedules again: %d, %v", n, err)
	}
}

func TestStoreFireSchedulesErrorsAndLastRun(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	due := dbNow(t, pool).Add(-time.Second)
	for _, rec := range []errand.ScheduleRecord{
		{ID: "broken", Kind: "a", Spec: "broken", MaxAttempts: 1},
		{ID: "last", Kind: "a", Spec: "last", MaxAttempts: 1},
		{ID: "ok", Kind: "a", Spec: "@every 1m", MaxAttempts: 1},
	} {
		if err := s.Schedule(ctx, rec, due); err != nil {
			t.Fatal(err)
		}
	}
	var e everyMinute
	n, err := s.FireSchedules(ctx, e.next)
	if n != 2 || err == nil || !strings.Contains(err.Error(), `"broken"`) || !strings.Contains(err.Error(), "cannot parse") {
		t.Fatalf("FireSchedules: %d, %v; want 2 runs and broken's error", n, err)
	}
	if runs := runsOf(t, pool, "broken"); len(runs) != 0 {
		t.Fatalf("a schedule whose next failed fired: %v", runs)
	}
	var infinite bool
	if err := pool.QueryRow(ctx, `SELECT next_run_at = 'infinity' FROM errand_schedules WHERE id = 'last'`).Scan(&infinite); err != nil || !infinite {
		t.Fatalf("a schedule with no next run: infinite %v, %v", infinite, err)
	}
	if _, err := s.FireSchedules(ctx, nil); err == nil {
		t.Fatal("FireSchedules(nil) succeeded")
	}
}

func TestStoreUnschedule(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	if err := s.Schedule(ctx, errand.ScheduleRecord{ID: "gone", Kind: "a", Spec: "@every 1m", MaxAttempts: 1}, dbNow(t, pool).Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	var e everyMinute
	if n, err := s.FireSchedules(ctx, e.next); err != nil || n != 1 {
		t.Fatalf("FireSchedules: %d, %v", n, err)
	}
	run := runsOf(t, pool, "gone")[0]
	if err := s.Unschedule(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM errand_schedules`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schedules left: %d, %v", n, err)
	}
	if rec := mustLookup(t, s, run); rec.Status != errand.Queued || rec.Schedule != "" {
		t.Fatalf("the run after Unschedule: %+v", rec)
	}
	if err := s.Unschedule(ctx, "never-was"); err != nil {
		t.Fatalf("Unschedule of an unknown id: %v", err)
	}
}

func TestStoreMaintainRecoversInBatches(t *testing.T) {
	s, pool := newStore(t, WithMaintainBatch(2))
	ctx := testCtx(t)
	for range 5 {
		mustEnqueue(t, s, task())
	}
	cs := mustClaim(t, s, []string{"a"}, 5)
	mustExec(t, pool, `UPDATE errand_tasks SET lease_until = now() - interval '1 millisecond'`)
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if rec := mustLookup(t, s, c.ID); rec.Status != errand.Retrying || rec.Attempts != 1 || rec.Holder != "" {
			t.Fatalf("after Maintain: %+v", rec)
		}
	}
	again := mustClaim(t, s, []string{"a"}, 10)
	if len(again) != 5 {
		t.Fatalf("re-claimed %d of 5", len(again))
	}
	for _, c := range again {
		if c.Attempt != 2 {
			t.Fatalf("re-claim attempt %d", c.Attempt)
		}
	}
}

func TestStoreMaintainRetention(t *testing.T) {
	s, pool := newStore(t, WithRetention(time.Hour), WithMaintainBatch(2))
	ctx := testCtx(t)
	var old []string
	for range 5 {
		id := mustEnqueue(t, s, task())
		c := claimOne(t, s)
		if err := s.Complete(ctx, c.Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
			t.Fatal(err)
		}
		old = append(old, id)
	}
	mustExec(t, pool, `UPDATE errand_tasks SET finished_at = now() - interval '61 minutes'`)
	recent := mustEnqueue(t, s, task())
	c := claimOne(t, s)
	if err := s.Complete(ctx, c.Lease, errand.Outcome{Status: errand.Failed, Error: "x"}); err != nil {
		t.Fatal(err)
	}
	waiting := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.Delay = time.Hour }))
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.Lookup(ctx, old); err != nil || len(recs) != 0 {
		t.Fatalf("finished past retention still there: %d, %v", len(recs), err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM errand_tasks`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows left, want 2 (deleted for real), %v", n, err)
	}
	mustLookup(t, s, recent)
	mustLookup(t, s, waiting)
}

// listenFor runs s.Listen until the test ends, reporting work and done on
// channels, and returns once it listens.
type listenRun struct {
	work chan struct{}
	done chan string
}

func listenFor(t *testing.T, s *Store) *listenRun {
	t.Helper()
	lr := &listenRun{work: make(chan struct{}, 1), done: make(chan string, 100)}
	started := make(chan *listener, 1)
	s.onListen = func(l *listener) { started <- l }
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() {
		exited <- s.Listen(ctx, func() {
			select {
			case lr.work <- struct{}{}:
			default:
			}
		}, func(id string) { lr.done <- id })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-exited; err != nil {
			t.Errorf("Listen returned %v after its context ended, want nil", err)
		}
	})
	select {
	case l := <-started:
		(&testListener{listener: l}).waitState(t, "listening", func(polling bool, _ uint32) bool { return !polling })
	case err := <-exited:
		t.Fatalf("Listen returned %v", err)
	}
	return lr
}

func (lr *listenRun) waitWork(t *testing.T) {
	t.Helper()
	select {
	case <-lr.work:
	case <-time.After(notifyWait):
		t.Fatalf("no work within %v", notifyWait)
	}
}

func (lr *listenRun) waitDone(t *testing.T, want string) {
	t.Helper()
	select {
	case id := <-lr.done:
		if id != want {
			t.Fatalf("done(%q), want %q", id, want)
		}
	case <-time.After(notifyWait):
		t.Fatalf("no done within %v", notifyWait)
	}
}

func TestStoreListen(t *testing.T) {
	s, _ := newStore(t)
	ctx := testCtx(t)
	lr := listenFor(t, s)
	id := mustEnqueue(t, s, task())
	lr.waitWork(t)
	c := claimOne(t, s)
	if err := s.Complete(ctx, c.Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
		t.Fatal(err)
	}
	lr.waitDone(t, id)
	// A canceled waiting task is done too.
	id2 := mustEnqueue(t, s, task(func(nt *errand.NewTask) { nt.Delay = time.Hour }))
	if ok, err := s.Cancel(ctx, id2); err != nil || !ok {
		t.Fatal(ok, err)
	}
	lr.waitDone(t, id2)
}

func TestStoreListenReturnsWhenContextEnds(t *testing.T) {
	s, _ := newStore(t)
	started := make(chan *listener, 1)
	s.onListen = func(l *listener) { started <- l }
	ctx, cancel := context.WithCancel(context.Background())
	exited := make(chan error, 1)
	go func() { exited <- s.Listen(ctx, func() {}, func(string) {}) }()
	l := <-started
	(&testListener{listener: l}).waitState(t, "listening", func(polling bool, _ uint32) bool { return !polling })
	cancel()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("Listen: %v, want nil", err)
		}
	case <-time.After(notifyWait):
		t.Fatal("Listen did not return after its context ended")
	}
	select {
	case <-l.Exited():
	default:
		t.Fatal("Listen returned before its listener exited")
	}
}

func TestStoreListenDisabled(t *testing.T) {
	s, _ := newStore(t, WithNotifications(false))
	err := s.Listen(context.Background(), func() {}, func(string) {})
	if err == nil || !strings.Contains(err.Error(), "WithNotifications(false)") {
		t.Fatalf("Listen with notifications off: %v", err)
	}
}

func TestEnqueueTx(t *testing.T) {
	s, pool := newStore(t)
	ctx := testCtx(t)
	k := errand.Define("tx.kind", func(_ context.Context, n int) (int, error) { return n, nil })

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	rolled, err := EnqueueTx(ctx, tx, k, 1, errand.WithPriority(4))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.Lookup(ctx, []string{rolled}); err != nil || len(recs) != 0 {
		t.Fatalf("a rolled back task exists: %+v, %v", recs, err)
	}

	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // after Commit: a no-op
	id, err := EnqueueTx(ctx, tx, k, 2, errand.WithPriority(4), errand.WithKey("once"))
	if err != nil {
		t.Fatal(err)
	}
	// Invisible to others until commit.
	if recs, _ := s.Lookup(ctx, []string{id}); len(recs) != 0 {
		t.Fatal("uncommitted task visible outside the transaction")
	}
	// The key is held inside the transaction already.
	if again, err := EnqueueTx(ctx, tx, k, 3, errand.WithKey("once")); err != nil || again != id {
		t.Fatalf("second EnqueueTx with the key: %q, %v; want %q", again, err, id)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rec := mustLookup(t, s, id)
	if rec.Kind != "tx.kind" || string(rec.Args) != "2" || rec.Priority != 4 || rec.Status != errand.Queued || rec.Key != "once" {
		t.Fatalf("committed task: %+v", rec)
	}
	// Committed: held against the pool too.
	if got, existing, err := s.Enqueue(ctx, errand.NewTask{ID: uuid.NewString(), Kind: "tx.kind", MaxAttempts: 1, Key: "once"}); err != nil || !existing || got != id {
		t.Fatalf("Enqueue with the key: %q, %v, %v", got, existing, err)
	}

	if _, err := EnqueueTx(ctx, nil, k, 1); err == nil {
		t.Fatal("EnqueueTx with a nil tx succeeded")
	}
	tx, err = pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := EnqueueTx(ctx, tx, errand.Define("", func(context.Context, int) (int, error) { return 0, nil }), 1); err == nil {
		t.Fatal("EnqueueTx of a kind with an empty name succeeded")
	}
	if _, err := EnqueueTx(ctx, tx, k, 1, errand.WithLinkedContext()); err == nil {
		t.Fatal("EnqueueTx WithLinkedContext succeeded")
	}
}
