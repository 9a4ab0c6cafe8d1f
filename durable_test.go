package errand_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandtest"
)

// durableWait bounds every wait of these tests: real time, through
// channels and futures.
const durableWait = 15 * time.Second

// TestQueueSuiteInMemory runs the named-kind suite without a Store.
func TestQueueSuiteInMemory(t *testing.T) {
	errandtest.RunQueueSuite(t, func(*testing.T) errand.Store { return nil })
}

// TestQueueSuiteMemStore runs the named-kind suite on errandtest.MemStore,
// which drives the whole durable runtime.
func TestQueueSuiteMemStore(t *testing.T) {
	errandtest.RunQueueSuite(t, func(*testing.T) errand.Store { return errandtest.NewMemStore() })
}

// TestQueueSuitePerTask runs the suite with completions recorded one by
// one (a Store without BatchCompleter), and TestQueueSuiteBatched with
// them recorded in batches by the completer.
func TestQueueSuitePerTask(t *testing.T) {
	errandtest.RunQueueSuite(t, func(*testing.T) errand.Store { return perTaskStore{errandtest.NewMemStore()} })
}

func TestQueueSuiteBatched(t *testing.T) {
	errandtest.RunQueueSuite(t, func(*testing.T) errand.Store { return &batchingStore{MemStore: errandtest.NewMemStore()} })
}

// perTaskStore hides any CompleteMany of the store it wraps.
type perTaskStore struct{ errand.Store }

// batchingStore records batches with its MemStore's Complete, and counts
// the batches and outcomes.
type batchingStore struct {
	*errandtest.MemStore
	mu               sync.Mutex
	batches, records int
}

func (b *batchingStore) CompleteMany(ctx context.Context, cs []errand.Completion) ([]errand.Lease, error) {
	b.mu.Lock()
	b.batches++
	b.records += len(cs)
	b.mu.Unlock()
	var refused []errand.Lease
	for _, c := range cs {
		if err := b.MemStore.Complete(ctx, c.Lease, c.Outcome); errors.Is(err, errand.ErrLeaseLost) {
			refused = append(refused, c.Lease)
		} else if err != nil {
			return refused, err
		}
	}
	return refused, nil
}

// TestDurableBatchedCompletions: with a BatchCompleter, outcomes are
// recorded by CompleteMany, all of them, and the futures resolve.
func TestDurableBatchedCompletions(t *testing.T) {
	bs := &batchingStore{MemStore: errandtest.NewMemStore()}
	k := errand.Define("test.batched", func(ctx context.Context, n int) (int, error) { return n * 2, nil })
	q := newDurableQueue(t, errand.Config{Store: bs, Kinds: []errand.Runner{k}, Workers: 8})
	const n = 300
	fs := make([]*errand.Future[int], n)
	for i := range fs {
		f, err := k.Enqueue(context.Background(), q, i)
		if err != nil {
			t.Fatal(err)
		}
		fs[i] = f
	}
	ctx, cancel := context.WithTimeout(context.Background(), durableWait)
	defer cancel()
	got, err := errand.AwaitAll(ctx, fs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != 2*i {
			t.Fatalf("task %d: %d, want %d", i, v, 2*i)
		}
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.records != n || bs.batches == 0 || bs.batches > n {
		t.Fatalf("CompleteMany recorded %d outcomes in %d batches, want %d", bs.records, bs.batches, n)
	}
	t.Logf("%d outcomes in %d batches", bs.records, bs.batches)
}

func newDurableQueue(t *testing.T, cfg errand.Config) *errand.Queue {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	q, err := errand.New(cfg)
	if err != nil {
		t.Fatalf("errand.New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(durableWait):
		t.Fatalf("no %s after %v", what, durableWait)
		panic("unreachable")
	}
}

func awaitWithin[R any](t *testing.T, f *errand.Future[R]) (R, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), durableWait)
	defer cancel()
	v, err := f.Await(ctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		t.Fatalf("future %s unresolved after %v (status %v)", f.ID(), durableWait, f.Status())
	}
	return v, err
}

// recordingStore wraps a Store and records the claims and completions the
// queue makes; failHeartbeats makes every Heartbeat fail, and a lease whose
// token is in lose is reported lost by Heartbeat (and not renewed).
type recordingStore struct {
	errand.Store
	mu             sync.Mutex
	claims         []errand.Claim
	completes      []completion
	failHeartbeats bool
	lose           map[string]bool
}

type completion struct {
	lease errand.Lease
	out   errand.Outcome
	err   error
}

func (s *recordingStore) Claim(ctx context.Context, kinds []string, n int, d time.Duration, holder string) ([]errand.Claim, error) {
	cs, err := s.Store.Claim(ctx, kinds, n, d, holder)
	s.mu.Lock()
	s.claims = append(s.claims, cs...)
	s.mu.Unlock()
	return cs, err
}

func (s *recordingStore) Complete(ctx context.Context, l errand.Lease, o errand.Outcome) error {
	// Recorded before the store's call: a future may resolve (and the
	// test read the record) before that call returns.
	s.mu.Lock()
	i := len(s.completes)
	s.completes = append(s.completes, completion{l, o, nil})
	s.mu.Unlock()
	err := s.Store.Complete(ctx, l, o)
	s.mu.Lock()
	s.completes[i].err = err
	s.mu.Unlock()
	return err
}

func (s *recordingStore) Heartbeat(ctx context.Context, leases []errand.Lease, d time.Duration) ([]errand.Lease, error) {
	s.mu.Lock()
	fail := s.failHeartbeats
	s.mu.Unlock()
	if fail {
		return nil, errors.New("test: heartbeat refused")
	}
	var keep, lost []errand.Lease
	s.mu.Lock()
	for _, l := range leases {
		if s.lose[l.Token] {
			lost = append(lost, l)
		} else {
			keep = append(keep, l)
		}
	}
	s.mu.Unlock()
	more, err := s.Store.Heartbeat(ctx, keep, d)
	return append(lost, more...), err
}

func (s *recordingStore) record() ([]errand.Claim, []completion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]errand.Claim(nil), s.claims...), append([]completion(nil), s.completes...)
}

// leaseProbe is a kind whose first attempt runs until its context ends and
// then claims success anyway; later attempts succeed at once.
type leaseProbe struct {
	kind  *errand.Kind[int, int]
	first chan string // the task id, when the first attempt starts
	ended chan error  // the first attempt's ctx.Err(), when it ends
}

func newLeaseProbe() *leaseProbe {
	p := &leaseProbe{first: make(chan string, 1), ended: make(chan error, 1)}
	p.kind = errand.Define("test.lease", func(ctx context.Context, _ int) (int, error) {
		info, _ := errand.TaskFromContext(ctx)
		if info.Attempt > 1 {
			return info.Attempt, nil
		}
		p.first <- info.ID
		select {
		case <-ctx.Done():
		case <-time.After(durableWait):
		}
		p.ended <- ctx.Err()
		return -1, nil // a late success the store must refuse
	})
	return p
}

// checkLeaseLost runs the lease-loss scenario on store: lose is called with
// the task's id once its first attempt runs. The attempt's context must be
// canceled, its late outcome never recorded, and the task must run again
// (attempt 2) and succeed.
func checkLeaseLost(t *testing.T, rs *recordingStore, lose func(id string)) {
	t.Helper()
	p := newLeaseProbe()
	q := newDurableQueue(t, errand.Config{Store: rs, Kinds: []errand.Runner{p.kind}, Lease: time.Second})
	f, err := p.kind.Enqueue(context.Background(), q, 0)
	if err != nil {
		t.Fatal(err)
	}
	id := within(t, p.first, "first attempt")
	if id != f.ID() {
		t.Fatalf("the attempt ran task %s, want %s", id, f.ID())
	}
	lose(id)
	if err := within(t, p.ended, "end of the first attempt"); !errors.Is(err, context.Canceled) {
		t.Fatalf("first attempt's context ended with %v, want Canceled (lease lost)", err)
	}
	got, err := awaitWithin(t, f)
	if err != nil || got != 2 || f.Attempts() != 2 {
		t.Fatalf("after the lost lease: %d, %v after %d attempts; want 2 (the second attempt's) after 2", got, err, f.Attempts())
	}
	claims, completes := rs.record()
	if len(claims) != 2 || claims[0].Attempt != 1 || claims[1].Attempt != 2 || claims[0].Token == claims[1].Token {
		t.Fatalf("claims = %+v, want attempts 1 and 2 with distinct tokens", claims)
	}
	for _, c := range completes {
		if c.lease == claims[0].Lease && c.err == nil {
			t.Fatalf("the lost attempt's outcome %+v was recorded", c.out)
		}
	}
	// The store fences the stale lease.
	ctx, cancel := context.WithTimeout(context.Background(), durableWait)
	defer cancel()
	if err := rs.Store.Complete(ctx, claims[0].Lease, errand.Outcome{Status: errand.Succeeded, Result: []byte("-1")}); !errors.Is(err, errand.ErrLeaseLost) {
		t.Fatalf("Complete with the lost lease: %v, want ErrLeaseLost", err)
	}
	rec, err := q.Lookup(ctx, f.ID())
	if err != nil || rec.Status != errand.Succeeded || string(rec.Result) != "2" || rec.Attempts != 2 {
		t.Fatalf("stored task = %+v, %v; want succeeded with 2 after 2 attempts", rec, err)
	}
}

// TestDurableHeartbeatReportsLost: a lease the store's Heartbeat reports
// lost cancels the running attempt, whose outcome the queue then never
// writes, even though the store would still take it; once the lease
// expires in the store the task runs again.
func TestDurableHeartbeatReportsLost(t *testing.T) {
	rs := &recordingStore{Store: errandtest.NewMemStore()}
	checkLeaseLost(t, rs, func(string) {
		claims, _ := rs.record()
		rs.mu.Lock()
		rs.lose = map[string]bool{claims[0].Token: true}
		rs.mu.Unlock()
	})
	_, completes := rs.record()
	if len(completes) != 1 || completes[0].err != nil || completes[0].out.Status != errand.Succeeded {
		t.Fatalf("completions = %+v, want only the second attempt's success", completes)
	}
}

// TestDurableLeaseLostReclaimedHere: a lease that expires in the store is
// recovered (Maintain) and the task claimed again, here by the same queue,
// the only one running the kind: the stale attempt must still be canceled
// and its outcome refused, while the new attempt runs.
func TestDurableLeaseLostReclaimedHere(t *testing.T) {
	ms := errandtest.NewMemStore()
	checkLeaseLost(t, &recordingStore{Store: ms}, func(id string) {
		if !ms.ExpireLease(id) {
			t.Fatalf("ExpireLease(%s) = false for a running task", id)
		}
	})
}

// TestDurableHeartbeatFailing: heartbeats that fail for a whole Lease
// cancel the attempt (the lease may be gone); the lease expires in the
// store and the task runs again (here: claimed by the same queue).
func TestDurableHeartbeatFailing(t *testing.T) {
	rs := &recordingStore{Store: errandtest.NewMemStore()}
	checkLeaseLost(t, rs, func(string) {
		rs.mu.Lock()
		rs.failHeartbeats = true
		rs.mu.Unlock()
	})
}

// TestDurableCloseHandsBack: Close while a stored task runs cancels its
// context and hands it back without spending its attempt: another queue on
// the store then runs it as attempt 1.
func TestDurableCloseHandsBack(t *testing.T) {
	ms := errandtest.NewMemStore()
	type seen struct {
		attempt int
		ctxErr  error
	}
	runs := make(chan seen, 2)
	started := make(chan struct{}, 1)
	k := errand.Define("test.handback", func(ctx context.Context, n int) (int, error) {
		info, _ := errand.TaskFromContext(ctx)
		started <- struct{}{}
		<-ctx.Done() // the first process runs it until Close
		runs <- seen{info.Attempt, ctx.Err()}
		return n, ctx.Err()
	})
	q1, err := errand.New(errand.Config{Store: ms, Kinds: []errand.Runner{k}, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f1, err := k.Enqueue(context.Background(), q1, 0)
	if err != nil {
		q1.Close()
		t.Fatal(err)
	}
	within(t, started, "start of the task")
	q1.Close()
	if r := within(t, runs, "end of the first run"); r.attempt != 1 || !errors.Is(r.ctxErr, context.Canceled) {
		t.Fatalf("first run: attempt %d, context %v; want attempt 1 canceled by Close", r.attempt, r.ctxErr)
	}
	if _, err := f1.Result(); !errors.Is(err, errand.ErrClosed) {
		t.Fatalf("future after Close: %v, want ErrClosed", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), durableWait)
	defer cancel()
	recs, err := ms.Lookup(ctx, []string{f1.ID()})
	if err != nil || len(recs) != 1 || recs[0].Status != errand.Queued || recs[0].Attempts != 0 || recs[0].Holder != "" {
		t.Fatalf("handed-back task = %+v, %v; want queued with 0 attempts and no holder", recs, err)
	}

	// The second process runs it from the start, with a function of the
	// same kind that ends at once.
	k2 := errand.Define("test.handback", func(ctx context.Context, n int) (int, error) {
		info, _ := errand.TaskFromContext(ctx)
		runs <- seen{info.Attempt, ctx.Err()}
		return 7, nil
	})
	q2 := newDurableQueue(t, errand.Config{Store: ms, Kinds: []errand.Runner{k2}})
	f2, err := k2.Future(q2, f1.ID())
	if err != nil {
		t.Fatal(err)
	}
	if r := within(t, runs, "second run"); r.attempt != 1 || r.ctxErr != nil {
		t.Fatalf("second run: attempt %d, context %v; want attempt 1", r.attempt, r.ctxErr)
	}
	if v, err := awaitWithin(t, f2); err != nil || v != 7 || f2.Attempts() != 1 {
		t.Fatalf("handed-back task in the second queue: %d, %v after %d attempts; want 7 after 1", v, err, f2.Attempts())
	}
}

// TestDurableShutdownDeadlineHandsBack: a Shutdown whose deadline passes
// cancels the running stored task and hands it back, attempt unspent.
func TestDurableShutdownDeadlineHandsBack(t *testing.T) {
	ms := errandtest.NewMemStore()
	started := make(chan string, 1)
	k := errand.Define("test.stubborn", func(ctx context.Context, _ int) (int, error) {
		info, _ := errand.TaskFromContext(ctx)
		started <- info.ID
		<-ctx.Done()
		return 0, ctx.Err()
	})
	q := newDurableQueue(t, errand.Config{Store: ms, Kinds: []errand.Runner{k}})
	f, err := k.Enqueue(context.Background(), q, 1)
	if err != nil {
		t.Fatal(err)
	}
	within(t, started, "start of the task")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the deadline has passed already
	if err := q.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown with an ended context = %v, want context.Canceled", err)
	}
	q.Close()
	if _, err := f.Result(); !errors.Is(err, errand.ErrClosed) {
		t.Fatalf("future after Close: %v, want ErrClosed", err)
	}
	recs, err := ms.Lookup(context.Background(), []string{f.ID()})
	if err != nil || len(recs) != 1 || recs[0].Status != errand.Queued || recs[0].Attempts != 0 {
		t.Fatalf("task after the Shutdown deadline = %+v, %v; want queued with 0 attempts", recs, err)
	}
}

// TestDurableConfigValidation: bad durable fields make New fail with an
// error naming them, never a panic.
func TestDurableConfigValidation(t *testing.T) {
	ok := errand.Define("test.ok", func(context.Context, int) (int, error) { return 0, nil })
	twin := errand.Define("test.ok", func(context.Context, string) (int, error) { return 0, nil })
	broken := errand.Define("", func(context.Context, int) (int, error) { return 0, nil })
	var nilKind *errand.Kind[int, int]
	ms := errandtest.NewMemStore()
	for _, c := range []struct {
		name string
		cfg  errand.Config
		want string
	}{
		{"lease below 1s", errand.Config{Store: ms, Lease: 500 * time.Millisecond}, "Config.Lease"},
		{"negative lease", errand.Config{Store: ms, Lease: -time.Second}, "Config.Lease"},
		{"negative poll", errand.Config{Store: ms, PollInterval: -time.Millisecond}, "Config.PollInterval"},
		{"nil kind", errand.Config{Store: ms, Kinds: []errand.Runner{ok, nil}}, "Config.Kinds[1] is nil"},
		{"nil *Kind", errand.Config{Store: ms, Kinds: []errand.Runner{nilKind}}, "Config.Kinds[0]"},
		{"duplicate kind", errand.Config{Store: ms, Kinds: []errand.Runner{ok, twin}}, `"test.ok" twice`},
		{"broken kind", errand.Config{Store: ms, Kinds: []errand.Runner{broken}}, "empty kind name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := errand.New(c.cfg)
			if err == nil {
				q.Close()
				t.Fatalf("New = nil error, want one about %s", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New error = %q, want it to mention %q", err, c.want)
			}
		})
	}
	// The edges are valid.
	q, err := errand.New(errand.Config{Store: ms, Lease: time.Second, PollInterval: time.Millisecond, Kinds: []errand.Runner{ok}})
	if err != nil {
		t.Fatalf("New(Lease 1s, PollInterval 1ms) = %v", err)
	}
	q.Close()
}

// TestDurableSuccessAfterClose: a handler that still succeeds after Close
// canceled its context has its result recorded, not handed back to run
// again.
func TestDurableSuccessAfterClose(t *testing.T) {
	ms := errandtest.NewMemStore()
	started := make(chan string, 1)
	k := errand.Define("test.lateok", func(ctx context.Context, n int) (int, error) {
		info, _ := errand.TaskFromContext(ctx)
		started <- info.ID
		<-ctx.Done()
		return n + 1, nil // finishes its work anyway
	})
	q, err := errand.New(errand.Config{Store: ms, Kinds: []errand.Runner{k}, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Enqueue(context.Background(), q, 41); err != nil {
		q.Close()
		t.Fatal(err)
	}
	id := within(t, started, "start of the task")
	q.Close()
	ctx, cancel := context.WithTimeout(context.Background(), durableWait)
	defer cancel()
	recs, err := ms.Lookup(ctx, []string{id})
	if err != nil || len(recs) != 1 {
		t.Fatalf("Lookup: %v, %v", recs, err)
	}
	if r := recs[0]; r.Status != errand.Succeeded || string(r.Result) != "42" || r.Attempts != 1 {
		t.Fatalf("after Close: %s, result %q, %d attempts; want succeeded with 42 after 1", r.Status, r.Result, r.Attempts)
	}
}
