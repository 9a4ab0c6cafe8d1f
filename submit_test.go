package errand

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var errSub = errors.New("submit test failure")

type subCtxKey struct{}

func TestContextValuesReachTask(t *testing.T) {
	q := newQueue(t, Config{})
	ctx := context.WithValue(context.Background(), subCtxKey{}, "trace-1")
	f := mustSubmitCtx(t, ctx, q, func(ctx context.Context) (string, error) {
		v, _ := ctx.Value(subCtxKey{}).(string)
		return v, nil
	})
	if v, err := f.Await(context.Background()); v != "trace-1" || err != nil {
		t.Errorf("Submit: value in task = %q, %v; want trace-1", v, err)
	}

	got := make(chan any, 1)
	if err := q.Go(ctx, func(ctx context.Context) error { got <- ctx.Value(subCtxKey{}); return nil }); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "trace-1" {
		t.Errorf("Go: value in task = %v, want trace-1", v)
	}
	// Also through options and from a cancelable ctx.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := q.Go(cctx, func(ctx context.Context) error { got <- ctx.Value(subCtxKey{}); return nil }, WithName("n")); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "trace-1" {
		t.Errorf("Go with options: value in task = %v, want trace-1", v)
	}
}

func mustSubmitCtx[T any](t *testing.T, ctx context.Context, q *Queue, fn func(context.Context) (T, error), opts ...Option) *Future[T] {
	t.Helper()
	f, err := Submit(ctx, q, fn, opts...)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return f
}

func TestSubmitterCancelDoesNotCancelTask(t *testing.T) {
	q := newQueue(t, Config{})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), subCtxKey{}, 1))
	started, proceed := make(chan struct{}), make(chan struct{})
	f := mustSubmitCtx(t, ctx, q, func(ctx context.Context) (string, error) {
		close(started)
		<-proceed
		if ctx.Err() != nil || futIsClosed(ctx.Done()) {
			return "", fmt.Errorf("task ctx canceled: %v", ctx.Err())
		}
		if _, ok := ctx.Deadline(); ok {
			return "", errors.New("task ctx has a deadline")
		}
		return "done", nil
	})
	<-started
	cancel()
	close(proceed)
	if v, err := f.Await(context.Background()); v != "done" || err != nil {
		t.Errorf("Await = %q, %v; want done, nil", v, err)
	}
}

// TestHTTPHandlerTaskOutlivesRequest spawns work from a real HTTP handler:
// the request's context is canceled when the handler returns, and the task
// must not see that.
func TestHTTPHandlerTaskOutlivesRequest(t *testing.T) {
	q := newQueue(t, Config{})
	type outcome struct {
		errBefore, errAfter error
		server              any
		trace               any
	}
	reqCtxs := make(chan context.Context, 2)
	proceed := make(chan struct{})
	results := make(chan outcome, 2)
	futures := make(chan *Future[string], 1)

	task := func(ctx context.Context) outcome {
		o := outcome{errBefore: ctx.Err()}
		<-proceed // the request has finished by now
		o.errAfter = ctx.Err()
		o.server = ctx.Value(http.ServerContextKey)
		o.trace = ctx.Value(subCtxKey{})
		return o
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), subCtxKey{}, "req-1")
		reqCtxs <- r.Context()
		switch r.URL.Path {
		case "/go":
			err := q.Go(ctx, func(ctx context.Context) error {
				results <- task(ctx)
				return nil
			})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		case "/submit":
			f, err := Submit(ctx, q, func(ctx context.Context) (string, error) {
				o := task(ctx)
				results <- o
				if o.errAfter != nil {
					return "", o.errAfter
				}
				return "ok", nil
			})
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			futures <- f
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()

	for _, path := range []string{"/go", "/submit"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
		reqCtx := <-reqCtxs
		<-reqCtx.Done() // the server cancels it once the handler has returned
	}
	close(proceed)
	for range 2 {
		o := <-results
		if o.errBefore != nil || o.errAfter != nil {
			t.Errorf("task ctx.Err() = %v before, %v after the request ended; want nil, nil", o.errBefore, o.errAfter)
		}
		if o.server != srv.Config {
			t.Errorf("task ctx lacks the request's values: ServerContextKey = %v", o.server)
		}
		if o.trace != "req-1" {
			t.Errorf("task ctx value = %v, want req-1", o.trace)
		}
	}
	f := <-futures
	if v, err := f.Await(context.Background()); v != "ok" || err != nil {
		t.Errorf("future of the handler's task = %q, %v; want ok, nil", v, err)
	}
	srv.Close()
	q.Close()
	if s := q.Stats(); s.Submitted != 2 || s.Succeeded != 2 {
		t.Errorf("Stats = %+v; want Submitted 2, Succeeded 2", s)
	}
}

func TestLinkedContextWaitingTaskNeverRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		_, release := futBlocker(t, q)
		defer release()
		ctx, cancel := context.WithCancel(context.Background())
		var ran atomic.Bool
		f := mustSubmitCtx(t, ctx, q, func(context.Context) (int, error) { ran.Store(true); return 1, nil }, WithLinkedContext())
		d := mustSubmitCtx(t, ctx, q, func(context.Context) (int, error) { ran.Store(true); return 1, nil }, WithLinkedContext(), WithDelay(time.Hour))
		unlinked := mustSubmitCtx(t, ctx, q, func(context.Context) (int, error) { return 2, nil })
		cancel()
		for name, fut := range map[string]*Future[int]{"queued": f, "delayed": d} {
			<-fut.Done()
			if _, err := fut.Result(); !errors.Is(err, ErrCanceled) {
				t.Errorf("%s: err = %v, want ErrCanceled", name, err)
			}
			if st := fut.Status(); st != Canceled {
				t.Errorf("%s: Status = %v, want canceled", name, st)
			}
		}
		if s := q.Stats(); s.Scheduled != 0 || s.Queued != 1 || s.Canceled != 2 {
			t.Errorf("Stats = %+v; want Scheduled 0, Queued 1 (the unlinked task), Canceled 2", s)
		}
		release()
		if v, err := unlinked.Await(context.Background()); v != 2 || err != nil {
			t.Errorf("unlinked task: %v, %v", v, err)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if ran.Load() {
			t.Error("a linked task whose ctx ended while it waited ran")
		}
	})
}

func TestLinkedContextRunningTaskCanceled(t *testing.T) {
	q := newQueue(t, Config{Retry: RetryPolicy{MaxAttempts: 3, Backoff: Constant(0)}})
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{}, 3)
	f := mustSubmitCtx(t, ctx, q, func(ctx context.Context) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		return 0, ctx.Err()
	}, WithLinkedContext())
	<-started
	cancel()
	_, err := f.Await(context.Background())
	if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v; want ErrCanceled and context.Canceled", err)
	}
	if f.Attempts() != 1 || f.Status() != Canceled {
		t.Errorf("Attempts %d, Status %v; want 1, canceled (not retried)", f.Attempts(), f.Status())
	}

	// A linked task that finishes first is not disturbed when the ctx ends later.
	ctx2, cancel2 := context.WithCancel(context.Background())
	g := mustSubmitCtx(t, ctx2, q, func(context.Context) (int, error) { return 4, nil }, WithLinkedContext())
	if v, err := g.Await(context.Background()); v != 4 || err != nil {
		t.Fatalf("g: %v, %v", v, err)
	}
	cancel2()
	if v, err := g.Result(); v != 4 || err != nil || g.Status() != Succeeded {
		t.Errorf("after its ctx ended: %v, %v, %v", v, err, g.Status())
	}
}

func TestDerivedContextsCanceledWithTask(t *testing.T) {
	q := newQueue(t, Config{})
	type derived struct{ cancelCtx, timeoutCtx, valueCancel context.Context }
	ready := make(chan derived)
	f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
		c1, cancel1 := context.WithCancel(ctx)
		defer cancel1()
		c2, cancel2 := context.WithTimeout(ctx, time.Hour)
		defer cancel2()
		c3, cancel3 := context.WithCancel(context.WithValue(ctx, subCtxKey{}, 3))
		defer cancel3()
		ready <- derived{c1, c2, c3}
		<-c1.Done()
		return 0, c1.Err()
	})
	d := <-ready
	for _, c := range []context.Context{d.cancelCtx, d.timeoutCtx, d.valueCancel} {
		if c.Err() != nil {
			t.Fatalf("derived ctx canceled early: %v", c.Err())
		}
	}
	if !f.Cancel() {
		t.Fatal("Cancel = false")
	}
	for name, c := range map[string]context.Context{"WithCancel": d.cancelCtx, "WithTimeout": d.timeoutCtx, "WithValue+WithCancel": d.valueCancel} {
		<-c.Done()
		if c.Err() != context.Canceled {
			t.Errorf("%s: Err = %v, want context.Canceled", name, c.Err())
		}
	}
	if _, err := f.Await(context.Background()); !errors.Is(err, ErrCanceled) {
		t.Errorf("err = %v", err)
	}
}

func TestDerivedContextsTimeoutInsideTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{})
		f := mustSubmit(t, q, func(ctx context.Context) (time.Duration, error) {
			start := time.Now()
			c, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			<-c.Done()
			if c.Err() != context.DeadlineExceeded || ctx.Err() != nil {
				return 0, fmt.Errorf("derived %v, task %v", c.Err(), ctx.Err())
			}
			return time.Since(start), nil
		})
		if d, err := f.Await(context.Background()); d != 3*time.Second || err != nil {
			t.Errorf("derived timeout fired after %v, %v; want 3s", d, err)
		}
	})
}

func TestDerivingContextsStartsNoGoroutines(t *testing.T) {
	q := newQueue(t, Config{})
	const n = 1000
	type counts struct{ before, after int }
	measured := make(chan counts)
	var children []context.Context
	f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
		var cancels []context.CancelFunc
		defer func() {
			for _, c := range cancels {
				c()
			}
		}()
		before := runtime.NumGoroutine()
		for i := range n {
			var c context.Context
			var cancel context.CancelFunc
			if i%2 == 0 {
				c, cancel = context.WithCancel(ctx)
			} else {
				c, cancel = context.WithTimeout(ctx, time.Hour)
			}
			children = append(children, c)
			cancels = append(cancels, cancel)
		}
		measured <- counts{before, runtime.NumGoroutine()}
		<-ctx.Done()
		return 0, ctx.Err()
	})
	c := <-measured // the task is still running
	if c.after-c.before > 10 {
		t.Errorf("deriving %d contexts from a task's ctx started %d goroutines; want none", n, c.after-c.before)
	}
	f.Cancel()
	<-f.Done()
	for i, c := range children {
		<-c.Done()
		if c.Err() != context.Canceled {
			t.Fatalf("child %d: Err = %v, want context.Canceled", i, c.Err())
		}
	}
}

func TestWithKeySingleflight(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	_, release := futBlocker(t, q)
	var runs atomic.Int32
	started, gate := make(chan struct{}, 2), make(chan struct{})
	fn := func(context.Context) (int, error) {
		n := runs.Add(1)
		started <- struct{}{}
		<-gate
		return int(n), nil
	}
	f1 := mustSubmit(t, q, fn, WithKey("k"))
	// While it waits.
	f2 := mustSubmit(t, q, fn, WithKey("k"))
	if f2 != f1 {
		t.Fatal("second Submit with a waiting key returned a different future")
	}
	if s := q.Stats(); s.Submitted != 2 || s.Queued != 1 {
		t.Errorf("Stats = %+v; want Submitted 2 (blocker + 1), Queued 1", s)
	}
	release()
	<-started
	// While it runs.
	f3 := mustSubmit(t, q, fn, WithKey("k"), WithName("other"), WithDelay(time.Hour))
	if f3 != f1 {
		t.Fatal("Submit with a running key returned a different future")
	}
	if err := q.Go(context.Background(), func(context.Context) error { runs.Add(100); return nil }, WithKey("k")); err != nil {
		t.Errorf("Go with a live key = %v, want nil", err)
	}
	if s := q.Stats(); s.Submitted != 2 || s.Scheduled != 0 {
		t.Errorf("Stats = %+v; want Submitted 2, Scheduled 0: a duplicate adds nothing", s)
	}
	close(gate)
	if v, err := f1.Await(context.Background()); v != 1 || err != nil {
		t.Fatalf("f1 = %v, %v", v, err)
	}
	// The key is free again.
	f4 := mustSubmit(t, q, fn, WithKey("k"))
	if f4 == f1 {
		t.Fatal("Submit after the keyed task finished returned the old future")
	}
	if v, err := f4.Await(context.Background()); v != 2 || err != nil {
		t.Errorf("f4 = %v, %v; want a second run", v, err)
	}
	q.Close()
	if n := runs.Load(); n != 2 {
		t.Errorf("runs = %d, want 2", n)
	}
	if s := q.Stats(); s.Submitted != 3 || s.Succeeded != 3 {
		t.Errorf("Stats = %+v; want Submitted 3, Succeeded 3", s)
	}
}

func TestWithKeyConcurrentSubmits(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	_, release := futBlocker(t, q)
	var runs atomic.Int32
	const n = 50
	futs := make([]*Future[int], n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			f, err := Submit(context.Background(), q, func(context.Context) (int, error) { return int(runs.Add(1)), nil }, WithKey("same"))
			if err != nil {
				t.Error(err)
			}
			futs[i] = f
		})
	}
	wg.Wait()
	release()
	for i, f := range futs {
		if f != futs[0] {
			t.Fatalf("future %d differs", i)
		}
	}
	if v, err := futs[0].Await(context.Background()); v != 1 || err != nil {
		t.Errorf("Await = %v, %v", v, err)
	}
	q.Close()
	if runs.Load() != 1 || q.Stats().Submitted != 2 {
		t.Errorf("runs %d, Submitted %d; want 1, 2", runs.Load(), q.Stats().Submitted)
	}
}

func TestWithKeyHeldWhileDelayedAndRetrying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{})
		var runs atomic.Int32
		fn := func(context.Context) (int, error) {
			if runs.Add(1) == 1 {
				return 0, errSub
			}
			return 1, nil
		}
		f := mustSubmit(t, q, fn, WithKey("r"), WithDelay(time.Second), WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: Constant(time.Second)}))
		if g := mustSubmit(t, q, fn, WithKey("r")); g != f {
			t.Error("delayed task does not hold its key")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if st := f.Status(); st != Retrying {
			t.Fatalf("Status = %v, want retrying", st)
		}
		if g := mustSubmit(t, q, fn, WithKey("r")); g != f {
			t.Error("retrying task does not hold its key")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if v, err := f.Result(); v != 1 || err != nil {
			t.Errorf("Result = %v, %v", v, err)
		}
		if n := runs.Load(); n != 2 {
			t.Errorf("runs = %d, want 2", n)
		}
		if s := q.Stats(); s.Submitted != 1 {
			t.Errorf("Submitted = %d, want 1", s.Submitted)
		}
	})
}

func TestWithKeyConflict(t *testing.T) {
	q := newQueue(t, Config{Workers: 1})
	_, release := futBlocker(t, q)
	defer release()
	mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil }, WithKey("k"))
	fs, err := Submit(context.Background(), q, func(context.Context) (string, error) { return "", nil }, WithKey("k"))
	if fs != nil || !errors.Is(err, ErrKeyConflict) {
		t.Errorf("Submit[string] on a key held by a Submit[int] = %v, %v; want nil, ErrKeyConflict", fs, err)
	}
	if err := q.Go(context.Background(), func(context.Context) error { return nil }, WithKey("g")); err != nil {
		t.Fatal(err)
	}
	fi, err := Submit(context.Background(), q, func(context.Context) (int, error) { return 1, nil }, WithKey("g"))
	if fi != nil || !errors.Is(err, ErrKeyConflict) {
		t.Errorf("Submit on a key held by a Go task = %v, %v; want nil, ErrKeyConflict", fi, err)
	}
	if s := q.Stats(); s.Submitted != 3 {
		t.Errorf("Submitted = %d, want 3", s.Submitted)
	}
}

func TestGoPanicLoggedAndCounted(t *testing.T) {
	for _, c := range []struct {
		name string
		opts []Option
	}{{"plain", nil}, {"with options", []Option{WithName("panicky")}}} {
		t.Run(c.name, func(t *testing.T) {
			var logs logBuffer
			logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			q := newQueue(t, Config{Workers: 1, Logger: logger})
			if err := q.Go(context.Background(), func(context.Context) error { panic("go-boom") }, c.opts...); err != nil {
				t.Fatal(err)
			}
			// The worker survives.
			f := mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil })
			if v, err := f.Await(context.Background()); v != 1 || err != nil {
				t.Fatalf("next task: %v, %v", v, err)
			}
			q.Close()
			s := q.Stats()
			if s.Panicked != 1 || s.Failed != 1 || s.Succeeded != 1 || s.Submitted != 2 {
				t.Errorf("Stats = %+v; want Panicked 1, Failed 1, Succeeded 1, Submitted 2", s)
			}
			var found []map[string]any
			for _, r := range logs.records(t) {
				if r["level"] == "ERROR" {
					found = append(found, r)
				}
			}
			if len(found) != 1 {
				t.Fatalf("%d ERROR records, want 1:\n%s", len(found), logs.String())
			}
			r := found[0]
			msg, _ := r["msg"].(string)
			stack, _ := r["stack"].(string)
			errAttr, _ := r["error"].(string)
			if !strings.Contains(msg, "panic") {
				t.Errorf("msg = %q, want it to say the task panicked", msg)
			}
			if !strings.Contains(stack, "TestGoPanicLoggedAndCounted") {
				t.Errorf("stack attr does not name the panicking function: %q", stack)
			}
			if !strings.Contains(errAttr, "go-boom") {
				t.Errorf("error attr = %q, want the panic value", errAttr)
			}
			if c.opts != nil && r["name"] != "panicky" {
				t.Errorf("name attr = %v, want panicky", r["name"])
			}
		})
	}
}

func TestGoErrorLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		q := newQueue(t, Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		if err := q.Go(context.Background(), func(context.Context) error { return errSub }); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the task has run and the worker is idle
		q.Close()
		var recs []map[string]any
		for _, r := range logs.records(t) {
			if r["level"] == "ERROR" {
				recs = append(recs, r)
			}
		}
		if len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["error"]), errSub.Error()) {
			t.Fatalf("logs = %v; want one ERROR record with the task's error", recs)
		}
		if _, ok := recs[0]["stack"]; ok {
			t.Error("a plain error logged with a stack")
		}
		if s := q.Stats(); s.Failed != 1 || s.Panicked != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []struct {
		field string
		cfg   Config
	}{
		{"Workers", Config{Workers: -1}},
		{"Capacity", Config{Capacity: -1}},
		{"IdleTimeout", Config{IdleTimeout: -time.Second}},
		{"Timeout", Config{Timeout: -1}},
		{"Order", Config{Order: Order(7)}},
		{"OnFull", Config{OnFull: FullPolicy(7)}},
		{"OnFull", Config{OnFull: FullPolicy(-1)}},
		{"MaxAttempts", Config{Retry: RetryPolicy{MaxAttempts: -1}}},
		{"Jitter", Config{Retry: RetryPolicy{MaxAttempts: 2, Backoff: Exponential{Jitter: 2}}}},
		{"Multiplier", Config{Retry: RetryPolicy{MaxAttempts: 2, Backoff: Exponential{Multiplier: 0.5}}}},
		{"Multiplier", Config{Retry: RetryPolicy{MaxAttempts: 2, Backoff: &Exponential{Multiplier: 0.5}}}},
		{"Initial", Config{Retry: RetryPolicy{MaxAttempts: 2, Backoff: Exponential{Initial: -1}}}},
		{"Constant", Config{Retry: RetryPolicy{MaxAttempts: 2, Backoff: Constant(-1)}}},
		{"Middleware", Config{Middleware: []Middleware{func(h Handler) Handler { return h }, nil}}},
	} {
		t.Run(c.field, func(t *testing.T) {
			var q *Queue
			var err error
			func() {
				defer func() {
					if v := recover(); v != nil {
						t.Fatalf("New panicked: %v", v)
					}
				}()
				q, err = New(c.cfg)
			}()
			if err == nil {
				q.Close()
				t.Fatalf("New(%+v) = nil error", c.cfg)
			}
			if q != nil {
				t.Errorf("New returned a queue with error %v", err)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error %q does not name %s", err, c.field)
			}
		})
	}
}

func TestSubmitRejectsBadInput(t *testing.T) {
	bg := context.Background()
	var nilCtx context.Context
	ok := func(context.Context) (int, error) { return 1, nil }
	okGo := func(context.Context) error { return nil }
	badRetry := RetryPolicy{MaxAttempts: 2, Backoff: Exponential{Jitter: 2}}
	for _, c := range []struct {
		name    string
		mention string
		nilQ    bool
		ctx     context.Context
		nilFn   bool
		opts    []Option
	}{
		{name: "nil fn", mention: "function", ctx: bg, nilFn: true},
		{name: "nil ctx", mention: "context", ctx: nilCtx},
		{name: "nil queue", mention: "Queue", nilQ: true, ctx: bg},
		{name: "zero option", mention: "Option", ctx: bg, opts: []Option{WithName("x"), {}}},
		{name: "negative delay", mention: "WithDelay", ctx: bg, opts: []Option{WithDelay(-1)}},
		{name: "negative timeout", mention: "WithTimeout", ctx: bg, opts: []Option{WithTimeout(-1)}},
		{name: "zero run time", mention: "WithRunAt", ctx: bg, opts: []Option{WithRunAt(time.Time{})}},
		{name: "bad retry", mention: "WithRetry", ctx: bg, opts: []Option{WithRetry(badRetry)}},
		{name: "negative attempts", mention: "MaxAttempts", ctx: bg, opts: []Option{WithRetry(RetryPolicy{MaxAttempts: -1})}},
		{name: "bad option after good", mention: "WithDelay", ctx: bg, opts: []Option{WithKey("k"), WithDelay(-time.Second)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			q := newQueue(t, Config{})
			target := q
			if c.nilQ {
				target = nil
			}
			fn, fnGo := ok, okGo
			if c.nilFn {
				fn, fnGo = nil, nil
			}
			var (
				f           *Future[int]
				errS, errGo error
				panicked    any
			)
			func() {
				defer func() { panicked = recover() }()
				f, errS = Submit(c.ctx, target, fn, c.opts...)
				errGo = target.Go(c.ctx, fnGo, c.opts...)
			}()
			if panicked != nil {
				t.Fatalf("panicked: %v", panicked)
			}
			if f != nil || errS == nil {
				t.Errorf("Submit = %v, %v; want nil, an error", f, errS)
			} else if !strings.Contains(errS.Error(), c.mention) {
				t.Errorf("Submit error %q does not mention %s", errS, c.mention)
			}
			if errGo == nil {
				t.Error("Go = nil, want an error")
			} else if !strings.Contains(errGo.Error(), c.mention) {
				t.Errorf("Go error %q does not mention %s", errGo, c.mention)
			}
			q.Close()
			if s := q.Stats(); s != (Stats{}) {
				t.Errorf("Stats = %+v; want nothing submitted", s)
			}
		})
	}
}

func TestResizeRejectsBadInput(t *testing.T) {
	q := newQueue(t, Config{Workers: 2})
	for _, n := range []int{0, -1} {
		if err := q.Resize(n); err == nil {
			t.Errorf("Resize(%d) = nil, want an error", n)
		}
	}
	var nilQ *Queue
	if err := nilQ.Resize(1); err == nil {
		t.Error("Resize on a nil queue = nil")
	}
	// The bound is unchanged: two tasks still run at once.
	started, gate := make(chan struct{}, 2), make(chan struct{})
	for range 2 {
		mustSubmit(t, q, func(context.Context) (int, error) { started <- struct{}{}; <-gate; return 0, nil })
	}
	<-started
	<-started
	close(gate)
}

func TestWithRunAt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{})
		start := time.Now()
		at := start.Add(90 * time.Minute)
		f := mustSubmit(t, q, func(context.Context) (time.Time, error) { return time.Now(), nil }, WithRunAt(at))
		past := mustSubmit(t, q, func(context.Context) (time.Time, error) { return time.Now(), nil }, WithRunAt(start.Add(-time.Hour)))
		if st := f.Status(); st != Scheduled {
			t.Errorf("future WithRunAt: Status %v, want scheduled", st)
		}
		if v, err := past.Await(context.Background()); err != nil || !v.Equal(start) {
			t.Errorf("past WithRunAt ran at %v, %v; want at once", v.Sub(start), err)
		}
		if v, err := f.Await(context.Background()); err != nil || !v.Equal(at) {
			t.Errorf("WithRunAt ran at %v, %v; want 1h30m", v.Sub(start), err)
		}
	})
}

func TestWithTimeoutPerAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Timeout: time.Minute})
		start := time.Now()
		var deadlines []time.Duration
		f := mustSubmit(t, q, func(ctx context.Context) (int, error) {
			d, ok := ctx.Deadline()
			if !ok {
				return 0, errors.New("no deadline")
			}
			deadlines = append(deadlines, d.Sub(start))
			<-ctx.Done()
			return 0, ctx.Err()
		}, WithTimeout(2*time.Second), WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: Constant(time.Second)}))
		_, err := f.Await(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("took %v, want 5s (2s attempt, 1s back-off, 2s attempt)", d)
		}
		if fmt.Sprint(deadlines) != "[2s 5s]" || f.Attempts() != 2 || f.Status() != Failed {
			t.Errorf("deadlines %v, attempts %d, status %v; want [2s 5s], 2, failed", deadlines, f.Attempts(), f.Status())
		}
		// Config.Timeout applies without WithTimeout; WithTimeout(0) turns it off.
		g := mustSubmit(t, q, func(ctx context.Context) (bool, error) { _, ok := ctx.Deadline(); return ok, nil })
		h := mustSubmit(t, q, func(ctx context.Context) (bool, error) { _, ok := ctx.Deadline(); return ok, nil }, WithTimeout(0))
		if v, _ := g.Await(context.Background()); !v {
			t.Error("Config.Timeout not applied")
		}
		if v, _ := h.Await(context.Background()); v {
			t.Error("WithTimeout(0) did not turn the default timeout off")
		}
	})
}
