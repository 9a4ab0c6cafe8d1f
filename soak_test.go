package errand

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// soakKind is what a soak task does.
type soakKind int

const (
	soakSucceed soakKind = iota
	soakFail
	soakPanic
	soakTimeout // WithTimeout; waits for its context
	soakCancel  // waits for its context; canceled from another goroutine
	soakRetry   // fails until attempt succeedAt, under a random policy
	soakKinds
)

var (
	errSoakFail  = errors.New("soak: fail")
	errSoakRetry = errors.New("soak: retry me")
)

type soakPanicValue struct{ id int }

// soakTask is one submission of the soak test and what happened to it.
type soakTask struct {
	id        int
	kind      soakKind
	future    bool // Submit, else Go
	plain     bool // Go without options
	keyed     bool
	linked    bool
	retryMax  int // MaxAttempts of the retry policy (retry kind)
	succeedAt int // retry kind: the attempt that succeeds

	submitErr error
	dupOf     *soakTask                   // a keyed Submit that returned the future of an earlier task
	f         atomic.Pointer[Future[int]] // set once Submit returned a new future
	unlink    context.CancelFunc          // the linked context's cancel

	runs            atomic.Int32
	ranAfterResolve atomic.Bool
	cancelAsked     atomic.Bool // Cancel or the linked context's cancel was called
	canceledWaiting atomic.Bool // Cancel returned true before the task ever started
}

func (s *soakTask) body(ctx context.Context, panics *atomic.Int64) (int, error) {
	n := s.runs.Add(1)
	if f := s.f.Load(); f != nil {
		select {
		case <-f.Done():
			s.ranAfterResolve.Store(true)
		default:
		}
	}
	switch s.kind {
	case soakSucceed:
		return s.id, nil
	case soakFail:
		return 0, errSoakFail
	case soakPanic:
		panics.Add(1)
		panic(soakPanicValue{s.id})
	case soakTimeout, soakCancel:
		<-ctx.Done()
		return 0, ctx.Err()
	case soakRetry:
		if int(n) >= s.succeedAt {
			return s.id, nil
		}
		return 0, errSoakRetry
	}
	panic("unknown kind")
}

// cancel cancels the task the way it was set up to be canceled.
func (s *soakTask) cancel() {
	s.cancelAsked.Store(true)
	if s.unlink != nil {
		s.unlink()
		return
	}
	if f := s.f.Load(); f != nil && f.Cancel() && f.Attempts() == 0 {
		s.canceledWaiting.Store(true)
	}
}

func soakSeed(t *testing.T) uint64 {
	if s := os.Getenv("ERRAND_SOAK_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ERRAND_SOAK_SEED: %v", err)
		}
		return seed
	}
	return uint64(time.Now().UnixNano())
}

// TestSoak submits thousands of random tasks (succeeding, failing, panicking,
// timing out, canceled, retried; delayed, keyed, prioritized; futures and Go
// tasks) from several goroutines, cancels some from another, and shuts the
// queue down at a random moment. Every future must resolve exactly once in a
// state consistent with what its task did, no task may run more often than
// it has attempts nor after its future resolved, and the counts must add up.
// Set ERRAND_SOAK_SEED to replay a run.
func TestSoak(t *testing.T) {
	for _, events := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "events"}[events], func(t *testing.T) {
			n := 20000
			if events {
				n = 8000
			}
			if testing.Short() {
				n = 3000
			}
			seed := soakSeed(t)
			t.Logf("seed %d (ERRAND_SOAK_SEED=%d to replay), %d tasks", seed, seed, n)
			soak(t, seed, n, events)
		})
	}
}

// soakEvents collects the events of the events variant.
type soakEvents struct {
	mu     sync.Mutex
	byTask map[string][]EventKind
	counts map[EventKind]uint64
}

func soak(t *testing.T, seed uint64, n int, withEvents bool) {
	r := rand.New(rand.NewPCG(seed, 0x50a4))
	cfg := Config{
		Workers:  2 + r.IntN(8),
		Capacity: []int{0, 16, 256}[r.IntN(3)],
		Order:    []Order{OrderFIFO, OrderPriority}[r.IntN(2)],
	}
	var evs soakEvents
	if withEvents {
		evs.byTask = map[string][]EventKind{}
		evs.counts = map[EventKind]uint64{}
		cfg.OnEvent = func(e Event) {
			evs.mu.Lock()
			evs.byTask[e.Task.ID] = append(evs.byTask[e.Task.ID], e.Kind)
			evs.counts[e.Kind]++
			evs.mu.Unlock()
		}
	}
	t.Logf("config: Workers %d, Capacity %d, Order %d", cfg.Workers, cfg.Capacity, cfg.Order)
	q := newQueue(t, cfg)

	// Decide every task up front, from the seed.
	const submitters = 4
	tasks := make([]*soakTask, n)
	for i := range tasks {
		s := &soakTask{id: i, kind: soakKind(r.IntN(int(soakKinds))), future: r.IntN(2) == 0}
		if s.kind == soakRetry {
			s.retryMax = 1 + r.IntN(4)
			s.succeedAt = 1 + r.IntN(5)
		}
		tasks[i] = s
	}
	opts := make([][]Option, n)
	for i, s := range tasks {
		var o []Option
		switch s.kind {
		case soakTimeout:
			o = append(o, WithTimeout(time.Duration(50+r.IntN(950))*time.Microsecond))
		case soakRetry:
			o = append(o, WithRetry(RetryPolicy{MaxAttempts: s.retryMax, Backoff: Constant(time.Duration(r.IntN(200)) * time.Microsecond)}))
		case soakCancel:
			s.linked = !s.future || r.IntN(2) == 0 // a Go task can only be canceled through its context
		}
		if r.IntN(5) == 0 {
			o = append(o, WithDelay(time.Duration(r.IntN(2000))*time.Microsecond))
		}
		if r.IntN(6) == 0 {
			s.keyed = true
			o = append(o, WithKey(fmt.Sprintf("%v-%d-%d", s.future, i%submitters, r.IntN(4)))) // never shared across submitters, nor by futures and Go tasks
		}
		if r.IntN(3) == 0 {
			o = append(o, WithPriority(r.IntN(11)-5))
		}
		if s.linked {
			o = append(o, WithLinkedContext())
		}
		s.plain = !s.future && len(o) == 0
		opts[i] = o
	}
	shutdownAt := int64(r.IntN(n))
	shutdownWait := time.Duration(r.IntN(5000)) * time.Microsecond
	t.Logf("shutdown after %d submissions, with %v to drain", shutdownAt, shutdownWait)

	var panics atomic.Int64
	var submitted atomic.Int64
	trigger := make(chan struct{})
	cancelCh := make(chan *soakTask, n)
	var owners sync.Map // *Future[int] -> *soakTask

	// The canceler: cancels every cancel-kind task and a few others, at random
	// moments, and whenever it has nothing new to look at.
	cancelerDone := make(chan struct{})
	go func() {
		defer close(cancelerDone)
		cr := rand.New(rand.NewPCG(seed, 0xca9c))
		var pending []*soakTask
		open := true
		for open || len(pending) > 0 {
			if open {
				var s *soakTask
				ok := true
				if len(pending) == 0 {
					s, ok = <-cancelCh
				} else {
					select {
					case s, ok = <-cancelCh:
					default:
					}
				}
				if !ok {
					open = false
					continue
				}
				if s != nil {
					pending = append(pending, s)
					if cr.IntN(3) != 0 {
						continue
					}
				}
			}
			i := cr.IntN(len(pending))
			s := pending[i]
			pending[i] = pending[len(pending)-1]
			pending = pending[:len(pending)-1]
			s.cancel()
		}
	}()

	// The shutdown: Shutdown with a deadline at a random moment, then Close.
	var shutdownStarted atomic.Bool
	var shutdownErr, closeErr error
	shutdownDone := make(chan struct{})
	go func() {
		defer close(shutdownDone)
		<-trigger
		shutdownStarted.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
		defer cancel()
		shutdownErr = q.Shutdown(ctx)
		closeErr = q.Close()
	}()

	var wg sync.WaitGroup
	for g := range submitters {
		wg.Go(func() {
			pr := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := g; i < n; i += submitters {
				s := tasks[i]
				ctx := context.Background()
				if s.linked {
					ctx, s.unlink = context.WithCancel(ctx)
				}
				if s.future {
					f, err := Submit(ctx, q, func(ctx context.Context) (int, error) { return s.body(ctx, &panics) }, opts[i]...)
					s.submitErr = err
					if err == nil {
						if prev, loaded := owners.LoadOrStore(f, s); loaded {
							s.dupOf = prev.(*soakTask)
						} else {
							s.f.Store(f)
							if s.kind == soakCancel || pr.IntN(20) == 0 {
								cancelCh <- s
							}
						}
					}
				} else {
					s.submitErr = q.Go(ctx, func(ctx context.Context) error { _, err := s.body(ctx, &panics); return err }, opts[i]...)
					if s.submitErr == nil && s.linked {
						cancelCh <- s
					}
				}
				if s.unlink != nil && (s.submitErr != nil || s.dupOf != nil) {
					s.unlink() // nothing to cancel: release the context
				}
				if submitted.Add(1) == shutdownAt+1 {
					close(trigger)
				}
			}
		})
	}
	wg.Wait()
	close(cancelCh)
	<-cancelerDone
	<-shutdownDone
	if shutdownErr != nil && shutdownErr != context.DeadlineExceeded {
		t.Errorf("Shutdown = %v, want nil or context.DeadlineExceeded", shutdownErr)
	}
	if closeErr != nil {
		t.Errorf("Close = %v", closeErr)
	}
	if err := q.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	t.Logf("Shutdown returned %v", shutdownErr)

	// Check every submission.
	var accepted, acceptedGo, keyedGo, closedSubmits uint64
	var byStatus [Canceled + 1]uint64
	for _, s := range tasks {
		if s.submitErr != nil {
			if s.submitErr != ErrClosed || !shutdownStarted.Load() {
				t.Fatalf("task %d: submission error %v (shutdown started: %v)", s.id, s.submitErr, shutdownStarted.Load())
			}
			closedSubmits++
			if s.runs.Load() != 0 {
				t.Fatalf("task %d was refused but ran %d times", s.id, s.runs.Load())
			}
			continue
		}
		if s.ranAfterResolve.Load() {
			t.Fatalf("task %d ran after its future resolved", s.id)
		}
		if !s.future {
			maxRuns := int32(1)
			if s.kind == soakRetry {
				maxRuns = int32(s.retryMax)
			}
			if got := s.runs.Load(); got > maxRuns {
				t.Fatalf("Go task %d (kind %d) ran %d times, at most %d attempts", s.id, s.kind, got, maxRuns)
			}
			if s.keyed {
				keyedGo++
			} else {
				acceptedGo++
			}
			continue
		}
		if s.dupOf != nil {
			if s.runs.Load() != 0 {
				t.Fatalf("task %d was deduplicated into task %d but ran", s.id, s.dupOf.id)
			}
			continue
		}
		accepted++
		f := s.f.Load()
		select {
		case <-f.Done():
		default:
			t.Fatalf("task %d: future not resolved after Close (status %v)", s.id, f.Status())
		}
		v, err := f.Result()
		st := f.Status()
		if err == ErrNotDone || !st.Final() {
			t.Fatalf("task %d: Result() = %v, status %v after Close", s.id, err, st)
		}
		byStatus[st]++
		runs := int(s.runs.Load())
		if f.Attempts() != runs {
			t.Fatalf("task %d: Attempts() = %d but the task ran %d times", s.id, f.Attempts(), runs)
		}
		if s.canceledWaiting.Load() && (runs != 0 || st != Canceled || !errors.Is(err, ErrCanceled)) {
			t.Fatalf("task %d, canceled before it started: ran %d times, %v, %v", s.id, runs, st, err)
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("task %d (kind %d, %d runs, cancel asked %v, max %d, succeeds at %d): %v, %v, %v: %s",
				s.id, s.kind, runs, s.cancelAsked.Load(), s.retryMax, s.succeedAt, st, v, err, fmt.Sprintf(format, args...))
		}
		switch st {
		case Succeeded:
			if err != nil || v != s.id {
				fail("a success must have the task's value and no error")
			}
			switch {
			case s.kind == soakSucceed && runs == 1:
			case s.kind == soakRetry && runs == s.succeedAt && runs <= s.retryMax:
			default:
				fail("this task cannot succeed")
			}
		case Failed:
			if v != 0 {
				fail("a failure has the zero value")
			}
			switch s.kind {
			case soakFail:
				if err != errSoakFail || runs != 1 {
					fail("want errSoakFail after 1 run")
				}
			case soakPanic:
				var pe *PanicError
				if !errors.As(err, &pe) || pe.Value != (soakPanicValue{s.id}) || len(pe.Stack) == 0 || runs != 1 {
					fail("want a *PanicError with the panic value and a stack")
				}
			case soakTimeout:
				if err != context.DeadlineExceeded || runs != 1 {
					fail("want context.DeadlineExceeded")
				}
			case soakRetry:
				if err != errSoakRetry || runs != s.retryMax || s.succeedAt <= s.retryMax {
					fail("want errSoakRetry after all %d attempts", s.retryMax)
				}
			default:
				fail("this task cannot fail")
			}
		case Canceled:
			if v != 0 {
				fail("a canceled task has the zero value")
			}
			isCanceled, isClosed := errors.Is(err, ErrCanceled), errors.Is(err, ErrClosed)
			switch {
			case isCanceled == isClosed:
				fail("want exactly one of ErrCanceled and ErrClosed")
			case isCanceled && !s.cancelAsked.Load():
				fail("ErrCanceled but nobody canceled it")
			case isClosed && !shutdownStarted.Load():
				fail("ErrClosed before the queue closed")
			}
		}
	}

	// The counts.
	st := expectClosedStats(t, q)
	if got := uint64(panics.Load()); st.Panicked != got {
		t.Errorf("Stats.Panicked = %d, but %d attempts panicked", st.Panicked, got)
	}
	var minRetried, maxRetried uint64
	for _, s := range tasks {
		if s.kind != soakRetry || s.submitErr != nil || s.dupOf != nil {
			continue
		}
		runs := uint64(s.runs.Load())
		if runs > 0 {
			minRetried += runs - 1
			maxRetried += runs - 1
			if int(runs) < s.retryMax && int(runs) < s.succeedAt {
				maxRetried++ // its last failure may have been scheduled for a retry that the close dropped
			}
		}
	}
	if st.Retried < minRetried || st.Retried > maxRetried {
		t.Errorf("Stats.Retried = %d, want %d..%d from the task bodies", st.Retried, minRetried, maxRetried)
	}
	if low, high := accepted+acceptedGo, accepted+acceptedGo+keyedGo; st.Submitted < low || st.Submitted > high {
		t.Errorf("Stats.Submitted = %d, want %d..%d", st.Submitted, low, high)
	}
	if st.Succeeded < byStatus[Succeeded] || st.Failed < byStatus[Failed] || st.Canceled < byStatus[Canceled] {
		t.Errorf("Stats %+v count fewer final states than the futures: %v", st, byStatus)
	}
	if st.Rejected != 0 {
		t.Errorf("Stats.Rejected = %d, want 0 (no submission had a deadline)", st.Rejected)
	}
	t.Logf("stats %+v; futures by status %v; %d refused as closed", st, byStatus[Succeeded:], closedSubmits)

	if withEvents {
		evs.mu.Lock()
		defer evs.mu.Unlock()
		checkSoakEvents(t, &evs, st, tasks)
	}
}

// checkSoakEvents checks the event stream against Stats and the futures:
// each task's events start with Submitted and end with its one final event,
// one Started per attempt; the counts match Stats exactly.
func checkSoakEvents(t *testing.T, evs *soakEvents, st Stats, tasks []*soakTask) {
	t.Helper()
	if got := evs.counts[EventSubmitted]; got != st.Submitted {
		t.Errorf("%d Submitted events, Stats.Submitted %d", got, st.Submitted)
	}
	if got := evs.counts[EventSucceeded]; got != st.Succeeded {
		t.Errorf("%d Succeeded events, Stats.Succeeded %d", got, st.Succeeded)
	}
	if got := evs.counts[EventFailed]; got != st.Failed {
		t.Errorf("%d Failed events, Stats.Failed %d", got, st.Failed)
	}
	if got := evs.counts[EventCanceled]; got != st.Canceled {
		t.Errorf("%d Canceled events, Stats.Canceled %d", got, st.Canceled)
	}
	if got := evs.counts[EventRetrying]; got != st.Retried {
		t.Errorf("%d Retrying events, Stats.Retried %d", got, st.Retried)
	}
	if got := uint64(len(evs.byTask)); got != st.Submitted {
		t.Errorf("events for %d tasks, Stats.Submitted %d", got, st.Submitted)
	}
	for id, kinds := range evs.byTask {
		if len(kinds) < 2 || kinds[0] != EventSubmitted {
			t.Fatalf("task %s: events %v, want Submitted first and a final event", id, kinds)
		}
		for i, k := range kinds[1:] {
			final := k == EventSucceeded || k == EventFailed || k == EventCanceled
			if final != (i == len(kinds)-2) {
				t.Fatalf("task %s: events %v, want exactly one final event, last", id, kinds)
			}
			if k == EventSubmitted || k == EventRejected || k == EventSkipped {
				t.Fatalf("task %s: events %v", id, kinds)
			}
		}
	}
	for _, s := range tasks {
		f := s.f.Load()
		if f == nil {
			continue
		}
		kinds := evs.byTask[f.ID()]
		started, retrying := 0, 0
		for _, k := range kinds {
			switch k {
			case EventStarted:
				started++
			case EventRetrying:
				retrying++
			}
		}
		if started != f.Attempts() {
			t.Fatalf("task %d: %d Started events for %d attempts (%v)", s.id, started, f.Attempts(), kinds)
		}
		if retrying != started && retrying != max(started-1, 0) {
			t.Fatalf("task %d: %d Retrying events for %d attempts (%v)", s.id, retrying, started, kinds)
		}
		if st := f.Status(); (st == Succeeded || st == Failed) && retrying != started-1 {
			t.Fatalf("task %d %v: %d Retrying events for %d attempts", s.id, st, retrying, started)
		}
	}
}
