package errand

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var errEv = errors.New("events test failure")

// evLog collects the events a queue delivers.
type evLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *evLog) on(e Event) {
	l.mu.Lock()
	l.evs = append(l.evs, e)
	l.mu.Unlock()
}

func (l *evLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// of returns the events of the task with the given id, in order.
func (l *evLog) of(id string) []Event {
	var out []Event
	for _, e := range l.all() {
		if e.Task.ID == id {
			out = append(out, e)
		}
	}
	return out
}

func evKinds(evs []Event) []EventKind {
	ks := make([]EventKind, len(evs))
	for i, e := range evs {
		ks[i] = e.Kind
	}
	return ks
}

// evFailTwice returns a task function that fails twice, each attempt taking
// 250ms, then succeeds.
func evFailTwice() func(context.Context) (int, error) {
	var n atomic.Int32
	return func(context.Context) (int, error) {
		time.Sleep(250 * time.Millisecond)
		if n.Add(1) <= 2 {
			return 0, errEv
		}
		return 1, nil
	}
}

func TestMiddlewareSeesEveryAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen []TaskInfo
		mw := func(next Handler) Handler {
			return func(ctx context.Context, ti TaskInfo) error {
				mu.Lock()
				seen = append(seen, ti)
				mu.Unlock()
				return next(ctx, ti)
			}
		}
		q := newQueue(t, Config{Middleware: []Middleware{mw}})
		f := mustSubmit(t, q, evFailTwice(), WithName("job.x"), WithPriority(3),
			WithRetry(RetryPolicy{MaxAttempts: 5, Backoff: Constant(time.Second)}))
		if v, err := f.Await(context.Background()); v != 1 || err != nil {
			t.Fatalf("Await = %v, %v", v, err)
		}
		// Go tasks pass through middleware too, plain or not.
		for _, opts := range [][]Option{nil, {WithName("go.y")}} {
			if err := q.Go(context.Background(), func(context.Context) error { return nil }, opts...); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 5 {
			t.Fatalf("middleware saw %d attempts, want 5 (3 of the future, 2 Go tasks)", len(seen))
		}
		for i, ti := range seen[:3] {
			if ti.Attempt != i+1 || ti.Name != "job.x" || ti.ID != f.ID() || ti.Priority != 3 {
				t.Errorf("attempt %d: TaskInfo = %+v; want Attempt %d, Name job.x, ID %s, Priority 3", i+1, ti, i+1, f.ID())
			}
		}
		if f.Attempts() != 3 {
			t.Errorf("Attempts = %d", f.Attempts())
		}
		plain, named := seen[3], seen[4] // the two Go tasks may run in either order
		if plain.Name != "" {
			plain, named = named, plain
		}
		if plain.Attempt != 1 || plain.ID == "" || plain.Name != "" {
			t.Errorf("plain Go task: %+v", plain)
		}
		if named.Attempt != 1 || named.ID == "" || named.Name != "go.y" || named.ID == plain.ID {
			t.Errorf("named Go task: %+v", named)
		}
	})
}

func TestMiddlewareOrder(t *testing.T) {
	var mu sync.Mutex
	var trace []string
	rec := func(s string) {
		mu.Lock()
		trace = append(trace, s)
		mu.Unlock()
	}
	named := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, ti TaskInfo) error {
				rec(name + " in")
				err := next(ctx, ti)
				rec(fmt.Sprintf("%s out %v", name, err))
				return err
			}
		}
	}
	// A middleware may replace the error.
	wrapping := func(next Handler) Handler {
		return func(ctx context.Context, ti TaskInfo) error {
			if err := next(ctx, ti); err != nil {
				return fmt.Errorf("wrapped: %w", err)
			}
			return nil
		}
	}
	q := newQueue(t, Config{Middleware: []Middleware{named("a"), named("b"), wrapping, named("c")}})
	f := mustSubmit(t, q, func(context.Context) (int, error) { rec("task"); return 0, errEv })
	_, err := f.Await(context.Background())
	if !errors.Is(err, errEv) || err.Error() != "wrapped: "+errEv.Error() {
		t.Errorf("err = %v; want the middleware's wrapped error", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"a in", "b in", "c in", "task",
		"c out " + errEv.Error(), "b out wrapped: " + errEv.Error(), "a out wrapped: " + errEv.Error()}
	if !slices.Equal(trace, want) {
		t.Errorf("trace = %q\nwant    %q", trace, want)
	}
}

func TestMiddlewarePanicBecomesPanicError(t *testing.T) {
	var ran atomic.Bool
	mw := func(next Handler) Handler {
		return func(ctx context.Context, ti TaskInfo) error {
			if ti.Name == "poison" {
				panic("middleware boom")
			}
			return next(ctx, ti)
		}
	}
	q := newQueue(t, Config{Workers: 1, Middleware: []Middleware{mw}})
	f := mustSubmit(t, q, func(context.Context) (int, error) { ran.Store(true); return 1, nil }, WithName("poison"))
	_, err := f.Await(context.Background())
	var pe *PanicError
	if !errors.As(err, &pe) || pe.Value != "middleware boom" {
		t.Fatalf("err = %v, want *PanicError with the middleware's value", err)
	}
	if !strings.Contains(string(pe.Stack), "TestMiddlewarePanicBecomesPanicError") {
		t.Errorf("stack lacks the middleware's frame:\n%s", pe.Stack)
	}
	if ran.Load() {
		t.Error("the task ran although its middleware panicked before next")
	}
	g := mustSubmit(t, q, func(context.Context) (int, error) { return 2, nil })
	if v, err := g.Await(context.Background()); v != 2 || err != nil {
		t.Errorf("next task: %v, %v", v, err)
	}
	if s := q.Stats(); s.Panicked != 1 || s.Failed != 1 || s.Succeeded != 1 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestEventsRetrySequence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log evLog
		q := newQueue(t, Config{OnEvent: log.on})
		start := time.Now()
		f := mustSubmit(t, q, evFailTwice(), WithName("flaky"),
			WithRetry(RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Second)}))
		if v, err := f.Await(context.Background()); v != 1 || err != nil {
			t.Fatalf("Await = %v, %v", v, err)
		}
		q.Close()
		evs := log.all()
		want := []EventKind{EventSubmitted, EventStarted, EventRetrying, EventQueued, EventStarted,
			EventRetrying, EventQueued, EventStarted, EventSucceeded}
		if got := evKinds(evs); !slices.Equal(got, want) {
			t.Fatalf("events = %v\nwant     %v", got, want)
		}
		// Attempt i starts at (i-1)*1.25s and runs 250ms.
		attempt := 0
		for i, e := range evs {
			if e.Task.ID != f.ID() || e.Task.Name != "flaky" {
				t.Errorf("event %d (%v): Task = %+v; want ID %s, Name flaky", i, e.Kind, e.Task, f.ID())
			}
			switch e.Kind {
			case EventSubmitted:
				if !e.Time.Equal(start) || e.Task.Attempt != 0 {
					t.Errorf("submitted: Time %v, Attempt %d", e.Time.Sub(start), e.Task.Attempt)
				}
			case EventStarted:
				attempt++
				at := time.Duration(attempt-1) * 1250 * time.Millisecond
				if e.Task.Attempt != attempt || e.Time.Sub(start) != at || e.Wait != 0 {
					t.Errorf("started #%d: Attempt %d, at %v, Wait %v; want at %v, Wait 0", attempt, e.Task.Attempt, e.Time.Sub(start), e.Wait, at)
				}
			case EventRetrying:
				end := time.Duration(attempt-1)*1250*time.Millisecond + 250*time.Millisecond
				if !errors.Is(e.Err, errEv) || e.Task.Attempt != attempt || e.Duration != 250*time.Millisecond ||
					e.Time.Sub(start) != end || e.RetryAt.Sub(e.Time) != time.Second || e.Panicked {
					t.Errorf("retrying #%d: %+v", attempt, e)
				}
			case EventQueued:
				if e.Time.Sub(start) != time.Duration(attempt)*1250*time.Millisecond {
					t.Errorf("queued after #%d at %v", attempt, e.Time.Sub(start))
				}
			case EventSucceeded:
				if e.Err != nil || e.Task.Attempt != 3 || e.Duration != 250*time.Millisecond || e.Time.Sub(start) != 2750*time.Millisecond {
					t.Errorf("succeeded: %+v (at %v)", e, e.Time.Sub(start))
				}
			}
		}
	})
}

func TestEventsDelayedTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log evLog
		var submittedStatus atomic.Int32
		q := newQueue(t, Config{OnEvent: func(e Event) {
			if e.Kind == EventSubmitted {
				submittedStatus.Store(e.Task.t.status.Load())
			}
			log.on(e)
		}})
		start := time.Now()
		f := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil }, WithDelay(time.Second))
		synctest.Wait() // the Submitted event is delivered before the delay passes
		if st := Status(submittedStatus.Load()); st != Scheduled {
			t.Errorf("task status when Submitted was delivered = %v, want scheduled", st)
		}
		if _, err := f.Await(context.Background()); err != nil {
			t.Fatal(err)
		}
		q.Close()
		evs := log.of(f.ID())
		want := []EventKind{EventSubmitted, EventQueued, EventStarted, EventSucceeded}
		if got := evKinds(evs); !slices.Equal(got, want) {
			t.Fatalf("events = %v, want %v", got, want)
		}
		if d := evs[0].Time.Sub(start); d != 0 {
			t.Errorf("Submitted at %v, want 0", d)
		}
		if d := evs[1].Time.Sub(start); d != time.Second {
			t.Errorf("Queued at %v, want 1s", d)
		}
		if evs[2].Wait != 0 {
			t.Errorf("Started.Wait = %v, want 0: the delay is not time spent queued", evs[2].Wait)
		}
	})
}

func TestEventsCanceledWhileWaiting(t *testing.T) {
	var log evLog
	q := newQueue(t, Config{Workers: 1, OnEvent: log.on})
	_, release := futBlocker(t, q)
	f := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil })
	d := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil }, WithDelay(time.Hour))
	f.Cancel()
	d.Cancel()
	release()
	q.Close()
	for name, fut := range map[string]*Future[int]{"queued": f, "delayed": d} {
		evs := log.of(fut.ID())
		if got := evKinds(evs); !slices.Equal(got, []EventKind{EventSubmitted, EventCanceled}) {
			t.Errorf("%s: events = %v, want [submitted canceled]", name, got)
			continue
		}
		if e := evs[1]; !errors.Is(e.Err, ErrCanceled) || e.Duration != 0 || e.Task.Attempt != 0 {
			t.Errorf("%s: Canceled event = %+v; want Err ErrCanceled, Duration 0, Attempt 0", name, e)
		}
	}
}

func TestEventsRejected(t *testing.T) {
	var log evLog
	q := newQueue(t, Config{Workers: 1, Capacity: 1, OnFull: Reject, OnEvent: log.on})
	_, release := futBlocker(t, q)
	defer release()
	mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil }) // fills the queue
	f, err := Submit(context.Background(), q, func(context.Context) (int, error) { return 1, nil }, WithName("nope"), WithPriority(2))
	if f != nil || !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit into a full queue = %v, %v; want nil, ErrQueueFull", f, err)
	}
	if err := q.Go(context.Background(), func(context.Context) error { return nil }); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Go into a full queue = %v, want ErrQueueFull", err)
	}
	release()
	q.Close()
	var rejected []Event
	for _, e := range log.all() {
		if e.Kind == EventRejected {
			rejected = append(rejected, e)
		}
	}
	if len(rejected) != 2 {
		t.Fatalf("%d Rejected events, want 2", len(rejected))
	}
	if e := rejected[0]; !errors.Is(e.Err, ErrQueueFull) || e.Task.ID != "" || e.Task.Name != "nope" || e.Task.Priority != 2 {
		t.Errorf("Rejected event = %+v; want Err ErrQueueFull, no ID, Name nope, Priority 2", e)
	}
	if e := rejected[1]; !errors.Is(e.Err, ErrQueueFull) || e.Task.ID != "" {
		t.Errorf("Rejected event of Go = %+v", e)
	}
	if s := q.Stats(); s.Rejected != 2 || s.Submitted != 2 {
		t.Errorf("Stats = %+v; want Rejected 2, Submitted 2", s)
	}
}

func TestEventsWaitAndDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log evLog
		q := newQueue(t, Config{Workers: 1, OnEvent: log.on})
		first := mustSubmit(t, q, func(context.Context) (int, error) { time.Sleep(3 * time.Second); return 1, nil })
		time.Sleep(time.Second)
		second := mustSubmit(t, q, func(context.Context) (int, error) { time.Sleep(2 * time.Second); return 0, errEv })
		if _, err := AwaitAll(context.Background(), first, second); !errors.Is(err, errEv) {
			t.Fatalf("AwaitAll err = %v", err)
		}
		q.Close()
		for _, c := range []struct {
			name     string
			f        *Future[int]
			final    EventKind
			wait     time.Duration
			duration time.Duration
		}{
			{"first", first, EventSucceeded, 0, 3 * time.Second},
			{"second", second, EventFailed, 2 * time.Second, 2 * time.Second},
		} {
			evs := log.of(c.f.ID())
			if got := evKinds(evs); !slices.Equal(got, []EventKind{EventSubmitted, EventStarted, c.final}) {
				t.Errorf("%s: events %v", c.name, got)
				continue
			}
			if evs[1].Wait != c.wait {
				t.Errorf("%s: Started.Wait = %v, want %v", c.name, evs[1].Wait, c.wait)
			}
			if evs[2].Duration != c.duration {
				t.Errorf("%s: final Duration = %v, want %v", c.name, evs[2].Duration, c.duration)
			}
			if evs[2].Panicked {
				t.Errorf("%s: Panicked set", c.name)
			}
		}
		if e := log.of(second.ID())[2]; !errors.Is(e.Err, errEv) {
			t.Errorf("Failed.Err = %v", e.Err)
		}
	})
}

func TestEventsPanicked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log evLog
		q := newQueue(t, Config{OnEvent: log.on})
		f := mustSubmit(t, q, func(context.Context) (int, error) { panic("ev-boom") },
			WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: Constant(time.Second)}))
		if _, err := f.Await(context.Background()); err == nil {
			t.Fatal("no error")
		}
		if err := q.Go(context.Background(), func(context.Context) error { panic("go-boom") }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		q.Close()
		evs := log.of(f.ID())
		want := []EventKind{EventSubmitted, EventStarted, EventRetrying, EventQueued, EventStarted, EventFailed}
		if got := evKinds(evs); !slices.Equal(got, want) {
			t.Fatalf("events = %v, want %v", got, want)
		}
		var pe *PanicError
		for _, i := range []int{2, 5} {
			if e := evs[i]; !e.Panicked || !errors.As(e.Err, &pe) || pe.Value != "ev-boom" {
				t.Errorf("%v event: Panicked %v, Err %v; want Panicked and a *PanicError", e.Kind, e.Panicked, e.Err)
			}
		}
		var goFinal []Event
		for _, e := range log.all() {
			if e.Task.ID != f.ID() && e.Kind == EventFailed {
				goFinal = append(goFinal, e)
			}
		}
		if len(goFinal) != 1 || !goFinal[0].Panicked || !errors.As(goFinal[0].Err, &pe) || pe.Value != "go-boom" {
			t.Errorf("Go task's Failed events = %+v; want one with Panicked", goFinal)
		}
	})
}

func TestOnEventMayCallStats(t *testing.T) {
	var mu sync.Mutex
	var snaps []Stats
	var q *Queue
	q = newQueue(t, Config{Workers: 2, OnEvent: func(e Event) {
		s := q.Stats()
		mu.Lock()
		snaps = append(snaps, s)
		mu.Unlock()
	}})
	var fs []*Future[int]
	for i := range 20 {
		fs = append(fs, mustSubmit(t, q, func(context.Context) (int, error) { return i, nil }))
	}
	if _, err := AwaitAll(context.Background(), fs...); err != nil {
		t.Fatal(err)
	}
	q.Close()
	mu.Lock()
	defer mu.Unlock()
	if len(snaps) != 60 {
		t.Errorf("OnEvent ran %d times, want 60 (submitted, started, succeeded for 20 tasks)", len(snaps))
	}
	for i, s := range snaps {
		if s.Submitted < 1 || s.Submitted > 20 {
			t.Errorf("snapshot %d: %+v", i, s)
		}
	}
}

// TestEventsConcurrentTasksValidOrder checks, for many tasks submitted and
// canceled concurrently, that each task's events follow its lifecycle and end
// in exactly one final event.
func TestEventsConcurrentTasksValidOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log evLog
		q := newQueue(t, Config{Workers: 4, OnEvent: log.on})
		const perKind, submitters = 25, 4
		type sub struct {
			f    *Future[int]
			kind int
		}
		var mu sync.Mutex
		var subs []sub
		var wg sync.WaitGroup
		for g := range submitters {
			wg.Go(func() {
				for i := range perKind {
					kind := (g + i) % 5
					var fn func(context.Context) (int, error)
					var opts []Option
					switch kind {
					case 0: // succeeds
						fn = func(context.Context) (int, error) { time.Sleep(time.Millisecond); return 1, nil }
					case 1: // fails twice, then succeeds
						fn = evFailTwice()
						opts = []Option{WithRetry(RetryPolicy{MaxAttempts: 3, Backoff: Constant(10 * time.Millisecond)})}
					case 2: // delayed
						fn = func(context.Context) (int, error) { return 1, nil }
						opts = []Option{WithDelay(5 * time.Millisecond)}
					case 3: // fails for good
						fn = func(context.Context) (int, error) { return 0, errEv }
					case 4: // canceled, wherever it is
						fn = func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, ctx.Err() }
					}
					f, err := Submit(context.Background(), q, fn, opts...)
					if err != nil {
						t.Error(err)
						return
					}
					if kind == 4 && !f.Cancel() {
						t.Error("Cancel of an unfinished task = false")
					}
					mu.Lock()
					subs = append(subs, sub{f, kind})
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, s := range subs {
			<-s.f.Done()
		}
		q.Close()

		next := map[EventKind][]EventKind{
			0:              {EventSubmitted},
			EventSubmitted: {EventQueued, EventStarted, EventCanceled},
			EventQueued:    {EventStarted, EventCanceled},
			EventStarted:   {EventRetrying, EventSucceeded, EventFailed, EventCanceled},
			EventRetrying:  {EventQueued, EventCanceled},
		}
		byID := map[string][]Event{}
		for _, e := range log.all() {
			byID[e.Task.ID] = append(byID[e.Task.ID], e)
		}
		if len(byID) != len(subs) {
			t.Errorf("events for %d tasks, want %d", len(byID), len(subs))
		}
		wantFinal := map[int]EventKind{0: EventSucceeded, 1: EventSucceeded, 2: EventSucceeded, 3: EventFailed, 4: EventCanceled}
		counts := map[EventKind]uint64{}
		for _, s := range subs {
			evs := byID[s.f.ID()]
			prev := EventKind(0)
			finals := 0
			for i, e := range evs {
				if !slices.Contains(next[prev], e.Kind) {
					t.Errorf("task %s (kind %d): %v after %v; events %v", s.f.ID(), s.kind, e.Kind, prev, evKinds(evs))
					break
				}
				if i > 0 && e.Time.Before(evs[i-1].Time) {
					t.Errorf("task %s: event times go backwards", s.f.ID())
				}
				if e.Kind == EventStarted && e.Task.Attempt < 1 {
					t.Errorf("task %s: Started with Attempt %d", s.f.ID(), e.Task.Attempt)
				}
				counts[e.Kind]++
				if e.Kind >= EventSucceeded && e.Kind <= EventCanceled {
					finals++
				}
				prev = e.Kind
			}
			if finals != 1 || len(evs) == 0 || evs[len(evs)-1].Kind != wantFinal[s.kind] {
				t.Errorf("task %s (kind %d): %d final events, events %v; want exactly one, %v, last", s.f.ID(), s.kind, finals, evKinds(evs), wantFinal[s.kind])
			}
			if n := s.f.Attempts(); s.kind == 1 && n != 3 {
				t.Errorf("task %s: %d attempts, want 3", s.f.ID(), n)
			}
		}
		st := q.Stats()
		total := uint64(perKind * submitters)
		if st.Submitted != total || st.Succeeded+st.Failed+st.Canceled != total {
			t.Errorf("Stats = %+v; want Submitted %d = Succeeded + Failed + Canceled", st, total)
		}
		if counts[EventSubmitted] != st.Submitted || counts[EventSucceeded] != st.Succeeded ||
			counts[EventFailed] != st.Failed || counts[EventCanceled] != st.Canceled || counts[EventRetrying] != st.Retried {
			t.Errorf("event counts %v disagree with Stats %+v", counts, st)
		}
		if counts[EventRetrying] != 2*total/5 {
			t.Errorf("%d Retrying events, want %d", counts[EventRetrying], 2*total/5)
		}
	})
}

// TestTaskInfoCancel: a task seen only through an event can be canceled
// through its TaskInfo, while waiting and while running; a zero TaskInfo
// cancels nothing.
func TestTaskInfoCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu   sync.Mutex
			seen = map[string]TaskInfo{}
		)
		q := newQueue(t, Config{Workers: 1, OnEvent: func(e Event) {
			if e.Kind == EventSubmitted {
				mu.Lock()
				seen[e.Task.Name] = e.Task
				mu.Unlock()
			}
		}})
		started := make(chan struct{})
		running := mustSubmit(t, q, func(ctx context.Context) (int, error) {
			close(started)
			<-ctx.Done()
			return 0, ctx.Err()
		}, WithName("running"))
		waiting := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil }, WithName("waiting"))
		<-started
		synctest.Wait()
		mu.Lock()
		w, r := seen["waiting"], seen["running"]
		mu.Unlock()
		if !w.Cancel() || !r.Cancel() {
			t.Fatal("Cancel through TaskInfo reported false")
		}
		if _, err := waiting.Await(context.Background()); !errors.Is(err, ErrCanceled) {
			t.Fatalf("waiting task: %v, want ErrCanceled", err)
		}
		if _, err := running.Await(context.Background()); !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("running task: %v, want ErrCanceled and context.Canceled", err)
		}
		if w.Cancel() || (TaskInfo{}).Cancel() {
			t.Fatal("Cancel of a finished task, or of a zero TaskInfo, reported true")
		}
	})
}

// TestEventRanAndPanicked: Ran marks the events that end an attempt that
// ran, and Panicked only the attempt that panicked, not a later event whose
// error wraps the old panic.
func TestEventRanAndPanicked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu  sync.Mutex
			evs = map[string][]Event{}
		)
		q, err := New(Config{Workers: 2, OnEvent: func(e Event) {
			mu.Lock()
			evs[e.Task.Name] = append(evs[e.Task.Name], e)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		retry := WithRetry(RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Hour)})
		mustSubmit(t, q, func(context.Context) (int, error) { panic("once") }, WithName("backing-off"), retry)
		started := make(chan struct{})
		running := mustSubmit(t, q, func(ctx context.Context) (int, error) {
			close(started)
			<-ctx.Done()
			return 0, ctx.Err()
		}, WithName("running"))
		<-started
		waiting := mustSubmit(t, q, func(context.Context) (int, error) { return 0, nil }, WithName("waiting"), WithDelay(time.Minute))
		synctest.Wait()
		running.Cancel()
		waiting.Cancel()
		q.Close() // drops the backing-off task
		type got struct {
			kind          EventKind
			ran, panicked bool
		}
		want := map[string][]got{
			"backing-off": {{EventSubmitted, false, false}, {EventStarted, false, false}, {EventRetrying, true, true}, {EventCanceled, false, false}},
			"running":     {{EventSubmitted, false, false}, {EventStarted, false, false}, {EventCanceled, true, false}},
			"waiting":     {{EventSubmitted, false, false}, {EventCanceled, false, false}},
		}
		for name, w := range want {
			var g []got
			for _, e := range evs[name] {
				g = append(g, got{e.Kind, e.Ran, e.Panicked})
			}
			if !slices.Equal(g, w) {
				t.Errorf("%s: events %v, want %v", name, g, w)
			}
		}
	})
}
