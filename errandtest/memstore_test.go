package errandtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/errandgo/errand"
	"github.com/google/uuid"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func mustEnqueue(t *testing.T, s *MemStore, nt errand.NewTask) string {
	t.Helper()
	if nt.ID == "" {
		nt.ID = uuid.NewString()
	}
	if nt.MaxAttempts == 0 {
		nt.MaxAttempts = 1
	}
	id, existing, err := s.Enqueue(context.Background(), nt)
	if err != nil || existing {
		t.Fatalf("Enqueue(%+v) = %s, existing %v, %v", nt, id, existing, err)
	}
	return id
}

func mustClaim(t *testing.T, s *MemStore, kinds []string, n int) []errand.Claim {
	t.Helper()
	cs, err := s.Claim(context.Background(), kinds, n, 10*time.Second, "test")
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return cs
}

func mustLookup(t *testing.T, s *MemStore, id string) errand.TaskRecord {
	t.Helper()
	recs, err := s.Lookup(context.Background(), []string{id})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Lookup(%s) = %+v, %v", id, recs, err)
	}
	return recs[0]
}

func claimedIDs(cs []errand.Claim) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

// TestMemStoreClaimOrder: Claim takes due tasks of the named kinds only,
// highest priority first, then earliest due, then first stored, at most n.
func TestMemStoreClaimOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s MemStore // the zero value is ready
		now := time.Now()
		low := mustEnqueue(t, &s, errand.NewTask{Kind: "a", Priority: 1})
		highLate := mustEnqueue(t, &s, errand.NewTask{Kind: "a", Priority: 9, RunAt: now.Add(-time.Second)})
		highEarly := mustEnqueue(t, &s, errand.NewTask{Kind: "a", Priority: 9, RunAt: now.Add(-time.Minute)})
		mid1 := mustEnqueue(t, &s, errand.NewTask{Kind: "a", Priority: 5})
		mid2 := mustEnqueue(t, &s, errand.NewTask{Kind: "a", Priority: 5})
		mustEnqueue(t, &s, errand.NewTask{Kind: "other", Priority: 100})
		delayed := mustEnqueue(t, &s, errand.NewTask{Kind: "a", Priority: 100, Delay: time.Minute})
		if st := mustLookup(t, &s, delayed).Status; st != errand.Scheduled {
			t.Fatalf("delayed task status %v, want scheduled", st)
		}
		if cs := mustClaim(t, &s, []string{"a"}, 0); len(cs) != 0 {
			t.Fatalf("Claim(n=0) = %v", cs)
		}
		got := claimedIDs(mustClaim(t, &s, []string{"a"}, 4))
		if want := []string{highEarly, highLate, mid1, mid2}; !slices.Equal(got, want) {
			t.Fatalf("claimed %v, want %v", got, want)
		}
		got = claimedIDs(mustClaim(t, &s, []string{"a", "b"}, 10))
		if want := []string{low}; !slices.Equal(got, want) {
			t.Fatalf("then claimed %v, want %v (not the other kind, not the delayed task)", got, want)
		}
		time.Sleep(time.Minute) // fake time: the delay passes
		cs := mustClaim(t, &s, []string{"a"}, 10)
		if len(cs) != 1 || cs[0].ID != delayed || cs[0].Attempt != 1 || cs[0].Priority != 100 || cs[0].Kind != "a" {
			t.Fatalf("after the delay claimed %+v, want the delayed task", cs)
		}
	})
}

// TestMemStoreLeases: a claim's token fences Heartbeat, Complete and
// Release; an unrenewed lease expires, Maintain recovers its task, and the
// next claim draws a new token.
func TestMemStoreLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemStore()
		ctx := context.Background()
		id := mustEnqueue(t, s, errand.NewTask{Kind: "k", Args: []byte(`{"a":1}`), MaxAttempts: 1, Timeout: time.Minute})
		cs := mustClaim(t, s, []string{"k"}, 1)
		if len(cs) != 1 || cs[0].Token == "" || string(cs[0].Args) != `{"a":1}` || cs[0].Timeout != time.Minute || cs[0].MaxAttempts != 1 {
			t.Fatalf("claim = %+v", cs)
		}
		l := cs[0].Lease
		if rec := mustLookup(t, s, id); rec.Status != errand.Running || rec.Holder != "test" || rec.Attempts != 1 || rec.Started.IsZero() {
			t.Fatalf("claimed task = %+v", rec)
		}
		if more := mustClaim(t, s, []string{"k"}, 1); len(more) != 0 {
			t.Fatalf("a running task was claimed again: %+v", more)
		}
		time.Sleep(8 * time.Second)
		forged := errand.Lease{ID: id, Token: uuid.NewString()}
		lost, err := s.Heartbeat(ctx, []errand.Lease{l, forged}, 10*time.Second)
		if err != nil || len(lost) != 1 || lost[0] != forged {
			t.Fatalf("Heartbeat = %v, %v; want only the forged lease lost", lost, err)
		}
		time.Sleep(8 * time.Second) // 16s after the claim, 8s after the renewal
		if err := s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		if rec := mustLookup(t, s, id); rec.Status != errand.Running {
			t.Fatalf("a renewed lease was recovered: %+v", rec)
		}
		time.Sleep(2 * time.Second) // the renewed lease has expired now
		if lost, _ := s.Heartbeat(ctx, []errand.Lease{l}, 10*time.Second); len(lost) != 1 {
			t.Fatal("Heartbeat renewed an expired lease")
		}
		if err := s.Complete(ctx, l, errand.Outcome{Status: errand.Succeeded}); !errors.Is(err, errand.ErrLeaseLost) {
			t.Fatalf("Complete with an expired lease = %v, want ErrLeaseLost", err)
		}
		if err := s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		rec := mustLookup(t, s, id)
		if rec.Status != errand.Retrying || rec.Attempts != 1 || rec.Holder != "" || rec.Error == "" {
			t.Fatalf("recovered task = %+v, want retrying after 1 attempt with the reason", rec)
		}
		cs = mustClaim(t, s, []string{"k"}, 1)
		if len(cs) != 1 || cs[0].Attempt != 2 || cs[0].Token == l.Token {
			t.Fatalf("claim after recovery = %+v, want attempt 2 with a new token (past MaxAttempts 1)", cs)
		}
		// Release: the stale lease is ignored, the live one hands the task
		// back without spending its attempt.
		if err := s.Release(ctx, []errand.Lease{l}); err != nil {
			t.Fatal(err)
		}
		if rec := mustLookup(t, s, id); rec.Status != errand.Running {
			t.Fatalf("Release with a stale lease changed the task: %+v", rec)
		}
		if err := s.Release(ctx, []errand.Lease{cs[0].Lease}); err != nil {
			t.Fatal(err)
		}
		if rec := mustLookup(t, s, id); rec.Status != errand.Queued || rec.Attempts != 1 || rec.Holder != "" {
			t.Fatalf("released task = %+v, want queued after 1 attempt", rec)
		}
		if err := s.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Succeeded}); !errors.Is(err, errand.ErrLeaseLost) {
			t.Fatalf("Complete after Release = %v, want ErrLeaseLost", err)
		}
		cs = mustClaim(t, s, []string{"k"}, 1)
		if len(cs) != 1 || cs[0].Attempt != 2 {
			t.Fatalf("claim after Release = %+v, want attempt 2 again", cs)
		}
		// ExpireLease: the holder loses it at once.
		if !s.ExpireLease(id) {
			t.Fatal("ExpireLease of a running task = false")
		}
		if lost, _ := s.Heartbeat(ctx, []errand.Lease{cs[0].Lease}, 10*time.Second); len(lost) != 1 {
			t.Fatal("Heartbeat renewed a lease ExpireLease expired")
		}
		if s.ExpireLease(uuid.NewString()) {
			t.Fatal("ExpireLease of an unknown task = true")
		}
	})
}

// TestMemStoreComplete: outcomes are recorded; Retrying makes the task due
// again RetryIn later; the store refuses outcomes that are not outcomes.
func TestMemStoreComplete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemStore()
		ctx := context.Background()
		ok := mustEnqueue(t, s, errand.NewTask{Kind: "k", Priority: 3})
		bad := mustEnqueue(t, s, errand.NewTask{Kind: "k", Priority: 2})
		flaky := mustEnqueue(t, s, errand.NewTask{Kind: "k", Priority: 1, MaxAttempts: 2})
		cs := mustClaim(t, s, []string{"k"}, 3)
		if err := s.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Running}); err == nil {
			t.Fatal("Complete(Running): no error")
		}
		if err := s.Complete(ctx, cs[2].Lease, errand.Outcome{Status: errand.Retrying, RetryIn: -time.Second}); err == nil {
			t.Fatal("Complete(negative RetryIn): no error")
		}
		if err := s.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Succeeded, Result: []byte("42")}); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Failed}); !errors.Is(err, errand.ErrLeaseLost) {
			t.Fatalf("second Complete = %v, want ErrLeaseLost", err)
		}
		if err := s.Complete(ctx, cs[1].Lease, errand.Outcome{Status: errand.Failed, Error: "boom"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Complete(ctx, cs[2].Lease, errand.Outcome{Status: errand.Retrying, Error: "again", RetryIn: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
		checkOutcomes(t, s, ok, bad, flaky)
	})
}

// checkOutcomes checks, in a synctest bubble, the tasks TestMemStoreComplete
// and TestMemStoreCompleteMany complete: ok succeeded with 42, bad failed
// with "boom", and flaky waits to retry after "again", due in 5s, and is
// then the only task to claim, as its second attempt (the fake clock's
// sleeps are the store's clock passing, not waits).
func checkOutcomes(t *testing.T, s *MemStore, ok, bad, flaky string) {
	t.Helper()
	if rec := mustLookup(t, s, ok); rec.Status != errand.Succeeded || string(rec.Result) != "42" || rec.Finished.IsZero() {
		t.Fatalf("succeeded task = %+v", rec)
	}
	if rec := mustLookup(t, s, bad); rec.Status != errand.Failed || rec.Error != "boom" || rec.Finished.IsZero() {
		t.Fatalf("failed task = %+v", rec)
	}
	if rec := mustLookup(t, s, flaky); rec.Status != errand.Retrying || rec.Error != "again" || !rec.Finished.IsZero() {
		t.Fatalf("retrying task = %+v", rec)
	}
	time.Sleep(5*time.Second - time.Millisecond)
	if cs := mustClaim(t, s, []string{"k"}, 3); len(cs) != 0 {
		t.Fatalf("claimed %+v before the retry was due", cs)
	}
	time.Sleep(time.Millisecond)
	if cs := mustClaim(t, s, []string{"k"}, 3); len(cs) != 1 || cs[0].ID != flaky || cs[0].Attempt != 2 {
		t.Fatalf("claimed %+v, want the retry as attempt 2", cs)
	}
}

// TestMemStoreCompleteMany: a batch records each outcome as Complete does,
// refuses the leases no longer held (expired, repeated, finished, unknown)
// in order, and records nothing when one outcome is invalid.
func TestMemStoreCompleteMany(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemStore()
		ctx := context.Background()
		if refused, err := s.CompleteMany(ctx, nil); err != nil || refused != nil {
			t.Fatalf("empty batch = %v, %v", refused, err)
		}
		ok := mustEnqueue(t, s, errand.NewTask{Kind: "k", Priority: 5})
		bad := mustEnqueue(t, s, errand.NewTask{Kind: "k", Priority: 4})
		flaky := mustEnqueue(t, s, errand.NewTask{Kind: "k", Priority: 3, MaxAttempts: 2})
		expired := mustEnqueue(t, s, errand.NewTask{Kind: "k", Priority: 2})
		done := mustEnqueue(t, s, errand.NewTask{Kind: "k", Priority: 1})
		cs := mustClaim(t, s, []string{"k"}, 5)
		if got := claimedIDs(cs); !slices.Equal(got, []string{ok, bad, flaky, expired, done}) {
			t.Fatalf("claimed %v", got)
		}
		if err := s.Complete(ctx, cs[4].Lease, errand.Outcome{Status: errand.Succeeded, Result: []byte("1")}); err != nil {
			t.Fatal(err)
		}
		if !s.ExpireLease(expired) {
			t.Fatal("ExpireLease = false")
		}
		good := []errand.Completion{
			{Lease: cs[0].Lease, Outcome: errand.Outcome{Status: errand.Succeeded, Result: []byte("42")}},
			{Lease: cs[1].Lease, Outcome: errand.Outcome{Status: errand.Failed, Error: "boom"}},
		}
		for _, o := range []errand.Outcome{{Status: errand.Running}, {Status: errand.Retrying, RetryIn: -time.Second}} {
			if _, err := s.CompleteMany(ctx, append(slices.Clone(good), errand.Completion{Lease: cs[2].Lease, Outcome: o})); err == nil {
				t.Fatalf("CompleteMany with %+v: no error", o)
			}
			if rec := mustLookup(t, s, ok); rec.Status != errand.Running {
				t.Fatalf("a batch with an invalid outcome recorded %+v", rec)
			}
		}
		unknown := errand.Lease{ID: "unknown", Token: "x"}
		batch := append(good,
			errand.Completion{Lease: cs[2].Lease, Outcome: errand.Outcome{Status: errand.Retrying, Error: "again", RetryIn: 5 * time.Second}},
			errand.Completion{Lease: cs[3].Lease, Outcome: errand.Outcome{Status: errand.Succeeded}},
			errand.Completion{Lease: cs[0].Lease, Outcome: errand.Outcome{Status: errand.Failed, Error: "repeat"}},
			errand.Completion{Lease: cs[4].Lease, Outcome: errand.Outcome{Status: errand.Failed, Error: "late"}},
			errand.Completion{Lease: unknown, Outcome: errand.Outcome{Status: errand.Canceled}},
		)
		refused, err := s.CompleteMany(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		if want := []errand.Lease{cs[3].Lease, cs[0].Lease, cs[4].Lease, unknown}; !slices.Equal(refused, want) {
			t.Fatalf("refused %v, want %v", refused, want)
		}
		if rec := mustLookup(t, s, expired); rec.Status != errand.Running {
			t.Fatalf("expired lease's outcome recorded: %+v", rec)
		}
		if rec := mustLookup(t, s, done); rec.Status != errand.Succeeded || string(rec.Result) != "1" || rec.Error != "" {
			t.Fatalf("finished task overwritten: %+v", rec)
		}
		checkOutcomes(t, s, ok, bad, flaky)
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.CompleteMany(canceled, good); !errors.Is(err, context.Canceled) {
			t.Fatalf("CompleteMany with a canceled context = %v", err)
		}
	})
}

// TestMemStoreKeysAndCancel: a key is held while its task waits or runs;
// Cancel cancels waiting tasks only and frees their key.
func TestMemStoreKeysAndCancel(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
	first := mustEnqueue(t, s, errand.NewTask{Kind: "k", Key: "x"})
	enqueueKey := func(key string) (string, bool) {
		t.Helper()
		id, existing, err := s.Enqueue(ctx, errand.NewTask{ID: uuid.NewString(), Kind: "k", Key: key, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		return id, existing
	}
	if id, existing := enqueueKey("x"); id != first || !existing {
		t.Fatalf("key held while waiting: Enqueue = %s, %v; want %s, true", id, existing, first)
	}
	cs := mustClaim(t, s, []string{"k"}, 1)
	if id, existing := enqueueKey("x"); id != first || !existing {
		t.Fatalf("key held while running: Enqueue = %s, %v", id, existing)
	}
	if ok, err := s.Cancel(ctx, first); ok || err != nil {
		t.Fatalf("Cancel of a running task = %v, %v; want false", ok, err)
	}
	if err := s.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
		t.Fatal(err)
	}
	second, existing := enqueueKey("x")
	if existing || second == first {
		t.Fatal("the key was still held after its task finished")
	}
	if ok, err := s.Cancel(ctx, second); !ok || err != nil {
		t.Fatalf("Cancel of a waiting task = %v, %v; want true", ok, err)
	}
	if rec := mustLookup(t, s, second); rec.Status != errand.Canceled || rec.Finished.IsZero() {
		t.Fatalf("canceled task = %+v", rec)
	}
	for _, id := range []string{second, first, uuid.NewString()} {
		if ok, _ := s.Cancel(ctx, id); ok {
			t.Fatalf("Cancel(%s) of a finished or unknown task = true", id)
		}
	}
	if _, existing := enqueueKey("x"); existing {
		t.Fatal("the key of a canceled task was still held")
	}
	if cs := mustClaim(t, s, []string{"k"}, 10); len(cs) != 1 {
		t.Fatalf("claimed %d tasks, want only the last one (the canceled task never runs)", len(cs))
	}
	recs, err := s.Lookup(ctx, []string{first, uuid.NewString(), second})
	if err != nil || len(recs) != 2 || recs[0].ID != first || recs[1].ID != second {
		t.Fatalf("Lookup with an unknown id = %+v, %v", recs, err)
	}
}

// TestMemStoreBadInput: malformed calls get errors, never a panic.
func TestMemStoreBadInput(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
	for _, nt := range []errand.NewTask{
		{Kind: "k", MaxAttempts: 1},
		{ID: "a", MaxAttempts: 1},
		{ID: "a", Kind: "k"},
		{ID: "a", Kind: "k", MaxAttempts: 1, Delay: -1},
		{ID: "a", Kind: "k", MaxAttempts: 1, Timeout: -1},
	} {
		if _, _, err := s.Enqueue(ctx, nt); err == nil {
			t.Errorf("Enqueue(%+v): no error", nt)
		}
	}
	mustEnqueue(t, s, errand.NewTask{ID: "dup", Kind: "k"})
	if _, _, err := s.Enqueue(ctx, errand.NewTask{ID: "dup", Kind: "k", MaxAttempts: 1}); err == nil {
		t.Error("Enqueue of a stored id: no error")
	}
	if _, err := s.Claim(ctx, []string{"k"}, 1, 0, "h"); err == nil {
		t.Error("Claim with a zero lease: no error")
	}
	if _, err := s.Heartbeat(ctx, nil, -1); err == nil {
		t.Error("Heartbeat with a negative lease: no error")
	}
	for _, r := range []errand.ScheduleRecord{
		{Kind: "k", Spec: "@every 1s", MaxAttempts: 1},
		{ID: "s", Spec: "@every 1s", MaxAttempts: 1},
		{ID: "s", Kind: "k", MaxAttempts: 1},
		{ID: "s", Kind: "k", Spec: "@every 1s"},
		{ID: "s", Kind: "k", Spec: "@every 1s", MaxAttempts: 1, Timeout: -1},
	} {
		if err := s.Schedule(ctx, r, time.Now()); err == nil {
			t.Errorf("Schedule(%+v): no error", r)
		}
	}
	if err := s.Listen(ctx, nil, func(string) {}); err == nil {
		t.Error("Listen(nil work): no error")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.Enqueue(canceled, errand.NewTask{ID: "c", Kind: "k", MaxAttempts: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Enqueue with a canceled context = %v", err)
	}
}

func nextOf(spec string, after time.Time) (time.Time, error) {
	tr, err := errand.ParseCron(spec)
	if err != nil {
		return time.Time{}, err
	}
	return tr.Next(after), nil
}

// TestMemStoreSchedules: a schedule fires once per due time, never while
// its previous run waits or runs, coalesces missed due times, keeps its
// next due time when registered again with the same spec, and stops at
// Unschedule.
func TestMemStoreSchedules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemStore()
		ctx := context.Background()
		fire := func() int {
			t.Helper()
			n, err := s.FireSchedules(ctx, nextOf)
			if err != nil {
				t.Fatalf("FireSchedules: %v", err)
			}
			return n
		}
		rec := errand.ScheduleRecord{ID: "tick", Kind: "k", Spec: "@every 1m", Args: []byte(`"a"`), Priority: 4, MaxAttempts: 2, Timeout: time.Second}
		start := time.Now()
		if err := s.Schedule(ctx, rec, start.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n := fire(); n != 0 {
			t.Fatalf("fired %d before the first due time", n)
		}
		time.Sleep(time.Minute)
		if n := fire(); n != 1 {
			t.Fatalf("fired %d at the due time, want 1", n)
		}
		if n := fire(); n != 0 {
			t.Fatalf("fired the same due time again: %d", n)
		}
		cs, err := s.Claim(ctx, []string{"k"}, 10, time.Hour, "test")
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].Schedule != "tick" || string(cs[0].Args) != `"a"` || cs[0].Priority != 4 || cs[0].MaxAttempts != 2 || cs[0].Timeout != time.Second {
			t.Fatalf("scheduled run = %+v", cs)
		}
		// The run is still running at the next due time: skipped.
		time.Sleep(time.Minute)
		if n := fire(); n != 0 {
			t.Fatalf("fired %d while the previous run runs", n)
		}
		if err := s.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
			t.Fatal(err)
		}
		// Registering again with the same spec keeps the next due time
		// (start+3m): it is not due yet.
		time.Sleep(30 * time.Second)
		rec.Args = []byte(`"b"`)
		if err := s.Schedule(ctx, rec, time.Now()); err != nil {
			t.Fatal(err)
		}
		if n := fire(); n != 0 {
			t.Fatalf("re-registering with the same spec made it due: fired %d", n)
		}
		// Ten due times missed coalesce into one run; the next is a minute on.
		time.Sleep(10 * time.Minute)
		if n := fire(); n != 1 {
			t.Fatalf("after missed due times fired %d, want 1", n)
		}
		cs = mustClaim(t, s, []string{"k"}, 10)
		if len(cs) != 1 || string(cs[0].Args) != `"b"` {
			t.Fatalf("run after re-registering = %+v, want the new args", cs)
		}
		if err := s.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Failed}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Second)
		if n := fire(); n != 0 {
			t.Fatalf("fired %d before the next due time", n)
		}
		// A new spec takes the new first time.
		rec.Spec = "@every 2m"
		if err := s.Schedule(ctx, rec, time.Now()); err != nil {
			t.Fatal(err)
		}
		if n := fire(); n != 1 {
			t.Fatalf("after a spec change fired %d, want 1 at the new first time", n)
		}
		// A failing next keeps the others firing and returns the error.
		if err := s.Schedule(ctx, errand.ScheduleRecord{ID: "broken", Kind: "k", Spec: "not a spec", MaxAttempts: 1}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := s.Schedule(ctx, errand.ScheduleRecord{ID: "fine", Kind: "k", Spec: "@every 1h", MaxAttempts: 1}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if n, err := s.FireSchedules(ctx, nextOf); n != 1 || err == nil {
			t.Fatalf("FireSchedules with a bad spec = %d, %v; want 1 and an error", n, err)
		}
		if err := s.Unschedule(ctx, "broken"); err != nil {
			t.Fatal(err)
		}
		if err := s.Unschedule(ctx, "tick"); err != nil {
			t.Fatal(err)
		}
		if err := s.Unschedule(ctx, "never registered"); err != nil {
			t.Fatalf("Unschedule of an unknown id = %v", err)
		}
		for _, c := range mustClaim(t, s, []string{"k"}, 10) {
			if err := s.Complete(ctx, c.Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(24 * time.Hour)
		if n := fire(); n != 1 {
			t.Fatalf("after Unschedule fired %d, want 1 (only the remaining schedule)", n)
		}
		if cs := mustClaim(t, s, []string{"k"}, 10); len(cs) != 1 || cs[0].Schedule != "fine" {
			t.Fatalf("runs after Unschedule = %+v, want one of the remaining schedule", cs)
		}
	})
}

// TestMemStoreRetention: Maintain deletes finished tasks past Retention
// and keeps the rest; the zero Retention keeps them.
func TestMemStoreRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		keep, s := NewMemStore(), &MemStore{Retention: time.Hour}
		for _, st := range []*MemStore{keep, s} {
			mustEnqueue(t, st, errand.NewTask{ID: "done", Kind: "k"})
			mustEnqueue(t, st, errand.NewTask{ID: "waiting", Kind: "k", Delay: 48 * time.Hour})
			cs := mustClaim(t, st, []string{"k"}, 1)
			if err := st.Complete(ctx, cs[0].Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Hour)
		for _, st := range []*MemStore{keep, s} {
			if err := st.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
		}
		mustLookup(t, s, "done") // exactly Retention old: kept
		time.Sleep(time.Millisecond)
		for _, st := range []*MemStore{keep, s} {
			if err := st.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if recs, _ := s.Lookup(ctx, []string{"done", "waiting"}); len(recs) != 1 || recs[0].ID != "waiting" {
			t.Fatalf("after Retention Lookup = %+v, want only the waiting task", recs)
		}
		mustLookup(t, keep, "done")
	})
}

// TestMemStoreListen: Listen reports due work and finished tasks on its own
// goroutine until its context ends, then returns nil and reports nothing
// more.
func TestMemStoreListen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewMemStore()
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var works int
		var dones []string
		returned := make(chan error)
		go func() {
			returned <- s.Listen(ctx, func() {
				mu.Lock()
				works++
				mu.Unlock()
			}, func(id string) {
				mu.Lock()
				dones = append(dones, id)
				mu.Unlock()
			})
		}()
		synctest.Wait() // Listen is listening
		snapshot := func() (int, []string) {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			w := works
			works = 0
			return w, slices.Clone(dones)
		}
		mustEnqueue(t, s, errand.NewTask{ID: "later", Kind: "k", Delay: time.Hour})
		if w, _ := snapshot(); w != 0 {
			t.Fatalf("a delayed task was announced as due work (%d)", w)
		}
		mustEnqueue(t, s, errand.NewTask{ID: "now", Kind: "k"})
		if w, _ := snapshot(); w != 1 {
			t.Fatalf("work calls after a due enqueue: %d, want 1", w)
		}
		cs := mustClaim(t, s, []string{"k"}, 1)
		if err := s.Complete(context.Background(), cs[0].Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.Cancel(context.Background(), "later"); !ok {
			t.Fatal("Cancel = false")
		}
		if _, d := snapshot(); !slices.Equal(d, []string{"now", "later"}) {
			t.Fatalf("done ids = %v, want now, later", d)
		}
		cancel()
		if err := <-returned; err != nil {
			t.Fatalf("Listen returned %v, want nil", err)
		}
		mustEnqueue(t, s, errand.NewTask{ID: "after", Kind: "k"})
		if w, d := snapshot(); w != 0 || len(d) != 2 {
			t.Fatalf("called after Listen returned: %d works, dones %v", w, d)
		}
	})
}

// TestMemStoreConcurrentClaims: claimers racing never get the same task,
// and every task is claimed once.
func TestMemStoreConcurrentClaims(t *testing.T) {
	s := NewMemStore()
	const tasks, claimers = 500, 8
	for i := range tasks {
		mustEnqueue(t, s, errand.NewTask{ID: fmt.Sprint(i), Kind: "k", Priority: i % 7})
	}
	var mu sync.Mutex
	seen := make(map[string]int)
	var wg sync.WaitGroup
	for range claimers {
		wg.Go(func() {
			for {
				cs, err := s.Claim(context.Background(), []string{"k"}, 3, time.Minute, "h")
				if err != nil {
					t.Error(err)
					return
				}
				if len(cs) == 0 {
					return
				}
				for _, c := range cs {
					if err := s.Complete(context.Background(), c.Lease, errand.Outcome{Status: errand.Succeeded}); err != nil {
						t.Error(err)
					}
					mu.Lock()
					seen[c.ID]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != tasks {
		t.Fatalf("%d tasks claimed, want %d", len(seen), tasks)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("task %s claimed %d times", id, n)
		}
	}
}

// TestMemStoreGivesUpAPoisonTask: a task whose lease keeps expiring runs
// LostLeaseAllowance times past MaxAttempts, then fails.
func TestMemStoreGivesUpAPoisonTask(t *testing.T) {
	s := NewMemStore()
	ctx := context.Background()
	id, _, err := s.Enqueue(ctx, errand.NewTask{ID: uuid.NewString(), Kind: "k", MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 1+LostLeaseAllowance; attempt++ {
		cs, err := s.Claim(ctx, []string{"k"}, 1, time.Minute, "h")
		if err != nil || len(cs) != 1 || cs[0].Attempt != attempt {
			t.Fatalf("claim %d: %+v, %v", attempt, cs, err)
		}
		if !s.ExpireLease(id) {
			t.Fatalf("ExpireLease after claim %d: false", attempt)
		}
		if err := s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		recs, _ := s.Lookup(ctx, []string{id})
		want := errand.Retrying
		if attempt == 1+LostLeaseAllowance {
			want = errand.Failed
		}
		if recs[0].Status != want {
			t.Fatalf("after %d lost leases: %s (%s), want %s", attempt, recs[0].Status, recs[0].Error, want)
		}
	}
	if cs, _ := s.Claim(ctx, []string{"k"}, 1, time.Minute, "h"); len(cs) != 0 {
		t.Fatalf("a given-up task was claimed again: %+v", cs)
	}
}
