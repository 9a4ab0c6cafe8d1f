package errandprom

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/errandgo/errand"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// help is the HELP text of each metric, as expected in expositions.
var help = map[string]string{
	"tasks_total":          "Tasks that ended, by task name and outcome: succeeded, failed or canceled; rejected counts submissions refused for want of room.",
	"task_retries_total":   "Failed task attempts that were scheduled to run again, by task name.",
	"task_panics_total":    "Task attempts that panicked, by task name.",
	"schedule_skips_total": "Recurring runs skipped because the previous run was still waiting or running, by task name.",
	"workers":              "Live worker goroutines of the queue.",
	"workers_idle":         "Workers of the queue waiting for a task.",
	"tasks_queued":         "Tasks waiting for a worker.",
	"tasks_running":        "Tasks running.",
	"tasks_scheduled":      "Tasks waiting in the scheduler: delayed, or backing off before a retry.",
}

// family returns the exposition text of one metric family: its HELP and TYPE
// lines, then samples, each written after the family's full name.
func family(ns, name, typ string, samples ...string) string {
	full := ns + "_" + name
	var b strings.Builder
	fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", full, help[name], full, typ)
	for _, s := range samples {
		fmt.Fprintf(&b, "%s%s\n", full, s)
	}
	return b.String()
}

// compare checks c's exposition of the named metrics (full names) against want.
func compare(t *testing.T, c prometheus.Collector, want string, names ...string) {
	t.Helper()
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// gather registers c in a pedantic registry (which checks that what Collect
// sends matches Describe) and gathers it.
func gather(t *testing.T, c prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatalf("Register: %v", err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	return mfs
}

// histograms returns the sample count and sum of every series of the
// histogram metric name, keyed by its label pairs written as
// "name=x,outcome=y".
func histograms(t *testing.T, c prometheus.Collector, name string) map[string]sample {
	t.Helper()
	got := make(map[string]sample)
	for _, mf := range gather(t, c) {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var kv []string
			for _, lp := range m.GetLabel() {
				kv = append(kv, lp.GetName()+"="+lp.GetValue())
			}
			h := m.GetHistogram()
			got[strings.Join(kv, ",")] = sample{h.GetSampleCount(), h.GetSampleSum()}
		}
	}
	return got
}

type sample struct {
	count uint64
	sum   float64 // seconds
}

// checkHistograms compares got with want: counts exactly, sums to 1ns.
func checkHistograms(t *testing.T, name string, got, want map[string]sample) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s{%s}: missing; want count %d sum %v", name, k, w.count, w.sum)
			continue
		}
		if g.count != w.count || math.Abs(g.sum-w.sum) > 1e-9 {
			t.Errorf("%s{%s}: count %d sum %v; want count %d sum %v", name, k, g.count, g.sum, w.count, w.sum)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s{%s}: unexpected series with count %d sum %v", name, k, g.count, g.sum)
		}
	}
}

func newQueue(t *testing.T, cfg errand.Config) *errand.Queue {
	t.Helper()
	q, err := errand.New(cfg)
	if err != nil {
		t.Fatalf("errand.New: %v", err)
	}
	return q
}

func submit[T any](t *testing.T, q *errand.Queue, fn func(context.Context) (T, error), opts ...errand.Option) *errand.Future[T] {
	t.Helper()
	f, err := errand.Submit(context.Background(), q, fn, opts...)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return f
}

// sleeper returns a task that sleeps d (on the bubble's fake clock) and then
// returns err.
func sleeper(d time.Duration, err error) func(context.Context) (int, error) {
	return func(context.Context) (int, error) {
		time.Sleep(d)
		return 0, err
	}
}

var errBad = errors.New("bad")

// TestRealQueue runs tasks of every outcome through a real queue, on the
// fake clock of a synctest bubble so that every duration is exact, and
// checks every counter and histogram series, and that they agree with Stats.
func TestRealQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Options{})
		q := newQueue(t, errand.Config{Workers: 1, Capacity: 1, OnFull: errand.Reject, OnEvent: c.Observe})
		c.Watch(q)
		ctx := context.Background()

		// Succeeds after 10ms; unnamed.
		if _, err := submit(t, q, sleeper(10*time.Millisecond, nil)).Await(ctx); err != nil {
			t.Fatalf("unnamed: %v", err)
		}
		// Fails after 20ms.
		if _, err := submit(t, q, sleeper(20*time.Millisecond, errBad), errand.WithName("bad")).Await(ctx); !errors.Is(err, errBad) {
			t.Fatalf("bad: err %v, want %v", err, errBad)
		}
		// Fails after 5ms, is retried 50ms later and succeeds after 7ms.
		attempt := 0
		flaky := func(context.Context) (int, error) {
			attempt++
			if attempt == 1 {
				time.Sleep(5 * time.Millisecond)
				return 0, errBad
			}
			time.Sleep(7 * time.Millisecond)
			return 0, nil
		}
		retry := errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3, Backoff: errand.Constant(50 * time.Millisecond)})
		if _, err := submit(t, q, flaky, errand.WithName("flaky"), retry).Await(ctx); err != nil {
			t.Fatalf("flaky: %v", err)
		}
		// Panics after 3ms.
		boom := func(context.Context) (int, error) {
			time.Sleep(3 * time.Millisecond)
			panic("boom")
		}
		var pe *errand.PanicError
		if _, err := submit(t, q, boom, errand.WithName("boom")).Await(ctx); !errors.As(err, &pe) {
			t.Fatalf("boom: err %v, want a *PanicError", err)
		}
		// Panics after 4ms, then is canceled while backing off: the
		// EventCanceled has Attempt 1, Duration 0 and Panicked, and must add
		// neither a run time nor a panic.
		f := submit(t, q, func(context.Context) (int, error) {
			time.Sleep(4 * time.Millisecond)
			panic("boom")
		}, errand.WithName("boomretry"), errand.WithRetry(errand.RetryPolicy{MaxAttempts: 2, Backoff: errand.Constant(time.Hour)}))
		time.Sleep(4 * time.Millisecond)
		synctest.Wait()
		if st := f.Status(); st != errand.Retrying {
			t.Fatalf("boomretry: status %v, want retrying", st)
		}
		if !f.Cancel() {
			t.Fatal("boomretry: Cancel returned false")
		}
		if _, err := f.Await(ctx); !errors.Is(err, errand.ErrCanceled) || !errors.As(err, &pe) {
			t.Fatalf("boomretry: err %v, want ErrCanceled wrapping a *PanicError", err)
		}
		// Canceled after running 30ms.
		f = submit(t, q, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, errand.WithName("slow"))
		time.Sleep(30 * time.Millisecond)
		f.Cancel()
		if _, err := f.Await(ctx); !errors.Is(err, errand.ErrCanceled) {
			t.Fatalf("slow: err %v, want ErrCanceled", err)
		}
		// A blocker holds the one worker for 100ms. Meanwhile "queued" fills
		// the one place, "spam" is rejected, "queued" is canceled before it
		// runs, and "behind" waits the 100ms and runs for 1ms.
		release := make(chan struct{})
		blocker := submit(t, q, func(context.Context) (int, error) {
			<-release
			return 0, nil
		}, errand.WithName("blocker"))
		synctest.Wait()
		queued := submit(t, q, sleeper(time.Millisecond, nil), errand.WithName("queued"))
		if _, err := errand.Submit(ctx, q, sleeper(0, nil), errand.WithName("spam")); !errors.Is(err, errand.ErrQueueFull) {
			t.Fatalf("spam: err %v, want ErrQueueFull", err)
		}
		if !queued.Cancel() {
			t.Fatal("queued: Cancel returned false")
		}
		behind := submit(t, q, sleeper(time.Millisecond, nil), errand.WithName("behind"))
		time.Sleep(100 * time.Millisecond)
		close(release)
		for _, f := range []*errand.Future[int]{blocker, behind} {
			if _, err := f.Await(ctx); err != nil {
				t.Fatalf("blocker or behind: %v", err)
			}
		}
		if _, err := queued.Await(ctx); !errors.Is(err, errand.ErrCanceled) {
			t.Fatalf("queued: err %v, want ErrCanceled", err)
		}
		// Every 10ms a run that takes 25ms: runs at 10ms and 40ms, skips at
		// 20ms and 30ms; stopped at 45ms.
		r, err := q.Schedule(errand.Every(10*time.Millisecond), func(context.Context) error {
			time.Sleep(25 * time.Millisecond)
			return nil
		}, errand.WithName("cron"))
		if err != nil {
			t.Fatalf("Schedule: %v", err)
		}
		time.Sleep(45 * time.Millisecond)
		r.Stop()
		time.Sleep(20 * time.Millisecond) // the second run ends at 65ms
		synctest.Wait()
		q.Close() // every event has been delivered when it returns

		st := q.Stats()
		want := family("errand", "tasks_total", "counter",
			`{name="bad",outcome="failed"} 1`,
			`{name="behind",outcome="succeeded"} 1`,
			`{name="blocker",outcome="succeeded"} 1`,
			`{name="boom",outcome="failed"} 1`,
			`{name="boomretry",outcome="canceled"} 1`,
			`{name="cron",outcome="succeeded"} 2`,
			`{name="flaky",outcome="succeeded"} 1`,
			`{name="queued",outcome="canceled"} 1`,
			`{name="slow",outcome="canceled"} 1`,
			`{name="spam",outcome="rejected"} 1`,
			`{name="unnamed",outcome="succeeded"} 1`,
		) + family("errand", "task_retries_total", "counter",
			`{name="boomretry"} 1`,
			`{name="flaky"} 1`,
		) + family("errand", "task_panics_total", "counter",
			`{name="boom"} 1`,
			`{name="boomretry"} 1`,
		) + family("errand", "schedule_skips_total", "counter",
			`{name="cron"} 2`,
		) + family("errand", "workers", "gauge", " 0") +
			family("errand", "workers_idle", "gauge", " 0") +
			family("errand", "tasks_queued", "gauge", " 0") +
			family("errand", "tasks_running", "gauge", " 0") +
			family("errand", "tasks_scheduled", "gauge", " 0")
		compare(t, c, want, "errand_tasks_total", "errand_task_retries_total", "errand_task_panics_total",
			"errand_schedule_skips_total", "errand_workers", "errand_workers_idle", "errand_tasks_queued",
			"errand_tasks_running", "errand_tasks_scheduled")

		// The counters agree with the queue's own.
		wantStats := errand.Stats{Submitted: 11, Succeeded: 6, Failed: 2, Canceled: 3, Rejected: 1, Retried: 2, Panicked: 2, Skipped: 2}
		if st != wantStats {
			t.Errorf("Stats = %+v, want %+v", st, wantStats)
		}

		checkHistograms(t, "errand_task_run_seconds", histograms(t, c, "errand_task_run_seconds"), map[string]sample{
			"name=unnamed,outcome=succeeded": {1, 0.010},
			"name=bad,outcome=failed":        {1, 0.020},
			"name=flaky,outcome=retried":     {1, 0.005},
			"name=flaky,outcome=succeeded":   {1, 0.007},
			"name=boom,outcome=failed":       {1, 0.003},
			"name=boomretry,outcome=retried": {1, 0.004},
			"name=slow,outcome=canceled":     {1, 0.030},
			"name=blocker,outcome=succeeded": {1, 0.100},
			"name=behind,outcome=succeeded":  {1, 0.001},
			"name=cron,outcome=succeeded":    {2, 0.050},
		})
		// Every attempt started at once but behind's, 100ms behind blocker.
		checkHistograms(t, "errand_task_wait_seconds", histograms(t, c, "errand_task_wait_seconds"), map[string]sample{
			"name=unnamed":   {1, 0},
			"name=bad":       {1, 0},
			"name=flaky":     {2, 0},
			"name=boom":      {1, 0},
			"name=boomretry": {1, 0},
			"name=slow":      {1, 0},
			"name=blocker":   {1, 0},
			"name=behind":    {1, 0.100},
			"name=cron":      {2, 0},
		})
		lint(t, c)
	})
}

// lint checks that c's metrics pass promlint.
func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatalf("CollectAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestCloseDrops checks the three ways Close cancels tasks: a running task
// (its attempt is timed), a queued one and one backing off before a retry
// (neither ran an attempt then).
func TestCloseDrops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Options{})
		q := newQueue(t, errand.Config{Workers: 1, OnEvent: c.Observe})
		running := submit(t, q, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, errand.WithName("running"))
		queued := submit(t, q, sleeper(0, nil), errand.WithName("queued"))
		backingOff := submit(t, q, sleeper(2*time.Millisecond, errBad), errand.WithName("backoff"),
			errand.WithDelay(time.Millisecond), errand.WithRetry(errand.RetryPolicy{MaxAttempts: 2, Backoff: errand.Constant(time.Hour)}))
		// backoff comes due at 1ms and waits for the worker. At 6ms queued is
		// canceled and running too, so backoff runs; it fails at 8ms and
		// backs off for an hour, and running2, submitted at 6ms, runs from
		// 8ms until Close at 18ms.
		time.Sleep(6 * time.Millisecond)
		queued.Cancel()
		running.Cancel()
		synctest.Wait()
		running2 := submit(t, q, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, errand.WithName("running"))
		queued2 := submit(t, q, sleeper(0, nil), errand.WithName("queued"))
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if st := backingOff.Status(); st != errand.Retrying {
			t.Fatalf("backoff: status %v, want retrying", st)
		}
		if st := running2.Status(); st != errand.Running {
			t.Fatalf("running2: status %v, want running", st)
		}
		time.Sleep(10 * time.Millisecond) // running2 has run 10ms
		q.Close()
		for _, f := range []*errand.Future[int]{running2, queued2, backingOff} {
			if _, err := f.Result(); !errors.Is(err, errand.ErrClosed) {
				t.Errorf("err %v, want ErrClosed", err)
			}
		}
		compare(t, c, family("errand", "tasks_total", "counter",
			`{name="backoff",outcome="canceled"} 1`,
			`{name="queued",outcome="canceled"} 2`,
			`{name="running",outcome="canceled"} 2`,
		), "errand_tasks_total")
		checkHistograms(t, "errand_task_run_seconds", histograms(t, c, "errand_task_run_seconds"), map[string]sample{
			"name=running,outcome=canceled": {2, 0.006 + 0.010},
			"name=backoff,outcome=retried":  {1, 0.002},
		})
		checkHistograms(t, "errand_task_wait_seconds", histograms(t, c, "errand_task_wait_seconds"), map[string]sample{
			"name=running": {2, 0.002}, // running2 waited from 6ms to 8ms
			"name=backoff": {1, 0.005}, // due at 1ms, ran at 6ms
		})
	})
}

// TestCanceledAtOnce cancels a task in the instant it started: its attempt
// ran for 0s, which Observe must still record, unlike a task canceled while
// waiting, whose EventCanceled also has Duration 0.
func TestCanceledAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Options{})
		q := newQueue(t, errand.Config{Workers: 1, OnEvent: c.Observe})
		f := submit(t, q, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		}, errand.WithName("x"))
		waiting := submit(t, q, sleeper(0, nil), errand.WithName("x"))
		synctest.Wait()
		if st := f.Status(); st != errand.Running {
			t.Fatalf("status %v, want running", st)
		}
		waiting.Cancel()
		f.Cancel()
		q.Close()
		compare(t, c, family("errand", "tasks_total", "counter", `{name="x",outcome="canceled"} 2`), "errand_tasks_total")
		checkHistograms(t, "errand_task_run_seconds", histograms(t, c, "errand_task_run_seconds"), map[string]sample{
			"name=x,outcome=canceled": {1, 0},
		})
	})
}

// TestGauges reads the watched queue's Stats at collection time.
func TestGauges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Options{ConstLabels: prometheus.Labels{"queue": "mail"}})
		q := newQueue(t, errand.Config{Workers: 1, OnEvent: c.Observe})
		gauges := func(workers, idle, queued, running, scheduled int) string {
			return family("errand", "workers", "gauge", fmt.Sprintf(`{queue="mail"} %d`, workers)) +
				family("errand", "workers_idle", "gauge", fmt.Sprintf(`{queue="mail"} %d`, idle)) +
				family("errand", "tasks_queued", "gauge", fmt.Sprintf(`{queue="mail"} %d`, queued)) +
				family("errand", "tasks_running", "gauge", fmt.Sprintf(`{queue="mail"} %d`, running)) +
				family("errand", "tasks_scheduled", "gauge", fmt.Sprintf(`{queue="mail"} %d`, scheduled))
		}
		names := []string{"errand_workers", "errand_workers_idle", "errand_tasks_queued", "errand_tasks_running", "errand_tasks_scheduled"}
		if n := testutil.CollectAndCount(c, names...); n != 0 {
			t.Errorf("before Watch: %d gauges, want 0", n)
		}
		c.Watch(q)
		compare(t, c, gauges(0, 0, 0, 0, 0), names...)

		release := make(chan struct{})
		blocker := submit(t, q, func(context.Context) (int, error) {
			<-release
			return 0, nil
		})
		var fs []*errand.Future[int]
		for range 3 {
			fs = append(fs, submit(t, q, sleeper(0, nil)))
		}
		delayed := submit(t, q, sleeper(0, nil), errand.WithDelay(time.Hour))
		synctest.Wait()
		compare(t, c, gauges(1, 0, 3, 1, 1), names...)

		close(release)
		for _, f := range append(fs, blocker) {
			if _, err := f.Await(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		compare(t, c, gauges(1, 1, 0, 0, 1), names...)

		q.Close()
		if _, err := delayed.Result(); !errors.Is(err, errand.ErrClosed) {
			t.Errorf("delayed: err %v, want ErrClosed", err)
		}
		compare(t, c, gauges(0, 0, 0, 0, 0), names...)

		c.Watch(nil)
		if n := testutil.CollectAndCount(c, names...); n != 0 {
			t.Errorf("after Watch(nil): %d gauges, want 0", n)
		}
	})
}

// event makes a synthetic event; any kind but Started ends an attempt that
// ran and took d.
func event(kind errand.EventKind, id, name string, attempt int, d time.Duration) errand.Event {
	e := errand.Event{Kind: kind, Task: errand.TaskInfo{ID: id, Name: name, Attempt: attempt}}
	if kind == errand.EventStarted {
		e.Wait = d
	} else {
		e.Ran, e.Duration = true, d
	}
	return e
}

// TestMaxNames checks the bound on distinct name labels: the first MaxNames
// names keep their label, later new ones become "other", unnamed tasks do
// not count, and names that are not UTF-8 are made valid.
func TestMaxNames(t *testing.T) {
	c := New(Options{MaxNames: 3})
	for _, name := range []string{"a", "", "b", "bad\xffutf8", "c", "d", "a", "", "e", "b"} {
		c.Observe(errand.Event{Kind: errand.EventRejected, Task: errand.TaskInfo{Name: name}})
		c.Observe(event(errand.EventStarted, "id-"+name, name, 1, time.Millisecond))
		c.Observe(event(errand.EventFailed, "id-"+name, name, 1, 2*time.Millisecond))
	}
	compare(t, c, family("errand", "tasks_total", "counter",
		`{name="a",outcome="failed"} 2`,
		`{name="a",outcome="rejected"} 2`,
		`{name="b",outcome="failed"} 2`,
		`{name="b",outcome="rejected"} 2`,
		"{name=\"bad\uFFFDutf8\",outcome=\"failed\"} 1",
		"{name=\"bad\uFFFDutf8\",outcome=\"rejected\"} 1",
		`{name="other",outcome="failed"} 3`,
		`{name="other",outcome="rejected"} 3`,
		`{name="unnamed",outcome="failed"} 2`,
		`{name="unnamed",outcome="rejected"} 2`,
	), "errand_tasks_total")
	checkHistograms(t, "errand_task_wait_seconds", histograms(t, c, "errand_task_wait_seconds"), map[string]sample{
		"name=a":             {2, 0.002},
		"name=b":             {2, 0.002},
		"name=bad\uFFFDutf8": {1, 0.001},
		"name=other":         {3, 0.003},
		"name=unnamed":       {2, 0.002},
	})
}

// TestDefaultMaxNames checks that the default bound is DefaultMaxNames.
func TestDefaultMaxNames(t *testing.T) {
	c := New(Options{MaxNames: -1})
	for i := range DefaultMaxNames + 5 {
		c.Observe(errand.Event{Kind: errand.EventSkipped, Task: errand.TaskInfo{Name: fmt.Sprint("job", i)}})
	}
	if n := testutil.CollectAndCount(c, "errand_schedule_skips_total"); n != DefaultMaxNames+1 {
		t.Errorf("%d series, want %d", n, DefaultMaxNames+1)
	}
	want := family("errand", "schedule_skips_total", "counter", `{name="other"} 5`)
	if err := testutil.CollectAndCompare(onlyLabel{c, "other"}, strings.NewReader(want), "errand_schedule_skips_total"); err != nil {
		t.Error(err)
	}
}

// onlyLabel passes on the metrics of a collector whose name label is value.
type onlyLabel struct {
	c     prometheus.Collector
	value string
}

func (o onlyLabel) Describe(ch chan<- *prometheus.Desc) { o.c.Describe(ch) }

func (o onlyLabel) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() {
		o.c.Collect(all)
		close(all)
	}()
	for m := range all {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			panic(err)
		}
		if slices.ContainsFunc(pb.GetLabel(), func(lp *dto.LabelPair) bool { return lp.GetName() == "name" && lp.GetValue() == o.value }) {
			ch <- m
		}
	}
}

// TestOptions checks Namespace, ConstLabels and Buckets, with a histogram's
// full exposition.
func TestOptions(t *testing.T) {
	c := New(Options{Namespace: "jobs", ConstLabels: prometheus.Labels{"queue": "mail"}, Buckets: []float64{0.01, 0.1}})
	c.Observe(event(errand.EventStarted, "1", "send", 1, 5*time.Millisecond))
	c.Observe(event(errand.EventSucceeded, "1", "send", 1, 50*time.Millisecond))
	c.Observe(event(errand.EventStarted, "2", "send", 1, 0))
	c.Observe(event(errand.EventSucceeded, "2", "send", 1, time.Second))
	want := family("jobs", "tasks_total", "counter", `{name="send",outcome="succeeded",queue="mail"} 2`) + `
# HELP jobs_task_run_seconds Run time of task attempts, by task name and outcome: succeeded, failed, canceled, or retried (failed and scheduled again).
# TYPE jobs_task_run_seconds histogram
jobs_task_run_seconds_bucket{name="send",outcome="succeeded",queue="mail",le="0.01"} 0
jobs_task_run_seconds_bucket{name="send",outcome="succeeded",queue="mail",le="0.1"} 1
jobs_task_run_seconds_bucket{name="send",outcome="succeeded",queue="mail",le="+Inf"} 2
jobs_task_run_seconds_sum{name="send",outcome="succeeded",queue="mail"} 1.05
jobs_task_run_seconds_count{name="send",outcome="succeeded",queue="mail"} 2
# HELP jobs_task_wait_seconds Time task attempts waited in the queue for a worker, by task name.
# TYPE jobs_task_wait_seconds histogram
jobs_task_wait_seconds_bucket{name="send",queue="mail",le="0.01"} 2
jobs_task_wait_seconds_bucket{name="send",queue="mail",le="0.1"} 2
jobs_task_wait_seconds_bucket{name="send",queue="mail",le="+Inf"} 2
jobs_task_wait_seconds_sum{name="send",queue="mail"} 0.005
jobs_task_wait_seconds_count{name="send",queue="mail"} 2
`
	compare(t, c, want, "jobs_tasks_total", "jobs_task_run_seconds", "jobs_task_wait_seconds")
	if n := testutil.CollectAndCount(c, "errand_tasks_total"); n != 0 {
		t.Errorf("%d errand_tasks_total series with Namespace jobs, want 0", n)
	}
}

// TestDefaultBuckets checks that histograms use DefaultBuckets, and that New
// copied them.
func TestDefaultBuckets(t *testing.T) {
	c := New(Options{})
	c.Observe(event(errand.EventStarted, "1", "x", 1, 0))
	for _, mf := range gather(t, c) {
		if mf.GetName() != "errand_task_wait_seconds" {
			continue
		}
		var got []float64
		for _, b := range mf.GetMetric()[0].GetHistogram().GetBucket() {
			got = append(got, b.GetUpperBound())
		}
		want := prometheus.ExponentialBuckets(0.0005, 2, 16)
		if !slices.Equal(got, want) || !slices.Equal(DefaultBuckets, want) {
			t.Errorf("buckets %v, DefaultBuckets %v; want %v", got, DefaultBuckets, want)
		}
		if got[0] != 0.0005 || got[15] != 16.384 {
			t.Errorf("buckets run from %v to %v, want 0.0005 to 16.384", got[0], got[15])
		}
		return
	}
	t.Error("no errand_task_wait_seconds")
}

func TestNewPanicsOnBadBuckets(t *testing.T) {
	for _, b := range [][]float64{{1, 1}, {2, 1}, {0.1, math.NaN()}} {
		func() {
			defer func() {
				if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "strictly increasing") {
					t.Errorf("Buckets %v: recovered %v, want a panic about strictly increasing buckets", b, v)
				}
			}()
			New(Options{Buckets: b})
		}()
	}
}

// TestRegister checks registration: a pedantic registry takes a collector
// (Describe and Collect agree), two collectors with different ConstLabels
// share a registry, and two alike are refused.
func TestRegister(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	a := New(Options{ConstLabels: prometheus.Labels{"queue": "a"}})
	b := New(Options{ConstLabels: prometheus.Labels{"queue": "b"}})
	for _, c := range []*Collector{a, b} {
		if err := reg.Register(c); err != nil {
			t.Fatalf("Register: %v", err)
		}
		c.Observe(errand.Event{Kind: errand.EventRejected})
	}
	if err := reg.Register(New(Options{ConstLabels: prometheus.Labels{"queue": "a"}})); err == nil {
		t.Error("registering a second collector with the same labels: no error")
	}
	if err := reg.Register(New(Options{ConstLabels: prometheus.Labels{"name": "x"}})); err == nil {
		t.Error("registering a collector with a const label name: no error")
	}
	want := family("errand", "tasks_total", "counter",
		`{name="unnamed",outcome="rejected",queue="a"} 1`,
		`{name="unnamed",outcome="rejected",queue="b"} 1`)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "errand_tasks_total"); err != nil {
		t.Error(err)
	}
}

// TestLint checks every metric family, histograms and gauges included,
// against promlint.
func TestLint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(Options{})
		q := newQueue(t, errand.Config{OnEvent: c.Observe})
		c.Watch(q)
		for _, k := range []errand.EventKind{errand.EventStarted, errand.EventRetrying, errand.EventStarted, errand.EventSucceeded} {
			c.Observe(event(k, "1", "x", 1, time.Millisecond))
		}
		c.Observe(errand.Event{Kind: errand.EventFailed, Ran: true, Panicked: true, Task: errand.TaskInfo{ID: "2", Attempt: 1}})
		c.Observe(errand.Event{Kind: errand.EventSkipped})
		if n := len(gather(t, c)); n != 11 {
			t.Errorf("%d metric families, want 11", n)
		}
		lint(t, c)
		q.Close()
	})
}

// TestConcurrentObserve observes from many goroutines while another collects;
// run it with -race.
func TestConcurrentObserve(t *testing.T) {
	const goroutines, tasks = 8, 500
	c := New(Options{MaxNames: 2})
	c.series("a") // a and b take the two names; c, seen later, is other
	c.series("b")
	names := []string{"a", "b", "c", ""}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range tasks {
				id, name := fmt.Sprint(g, "-", i), names[i%len(names)]
				c.Observe(event(errand.EventSubmitted, id, name, 0, 0))
				c.Observe(event(errand.EventStarted, id, name, 1, time.Millisecond))
				c.Observe(event(errand.EventRetrying, id, name, 1, time.Millisecond))
				c.Observe(event(errand.EventStarted, id, name, 2, 0))
				c.Observe(event(errand.EventSucceeded, id, name, 2, time.Millisecond))
			}
		})
	}
	stop := make(chan struct{})
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for {
			select {
			case <-stop:
				return
			default:
				testutil.CollectAndCount(c)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-collected
	per := goroutines * tasks / len(names)
	compare(t, c, family("errand", "tasks_total", "counter",
		fmt.Sprintf(`{name="a",outcome="succeeded"} %d`, per),
		fmt.Sprintf(`{name="b",outcome="succeeded"} %d`, per),
		fmt.Sprintf(`{name="other",outcome="succeeded"} %d`, per),
		fmt.Sprintf(`{name="unnamed",outcome="succeeded"} %d`, per),
	)+family("errand", "task_retries_total", "counter",
		fmt.Sprintf(`{name="a"} %d`, per),
		fmt.Sprintf(`{name="b"} %d`, per),
		fmt.Sprintf(`{name="other"} %d`, per),
		fmt.Sprintf(`{name="unnamed"} %d`, per),
	), "errand_tasks_total", "errand_task_retries_total")
	checkHistograms(t, "errand_task_run_seconds", histograms(t, c, "errand_task_run_seconds"), map[string]sample{
		"name=a,outcome=retried":         {uint64(per), float64(per) * 0.001},
		"name=a,outcome=succeeded":       {uint64(per), float64(per) * 0.001},
		"name=b,outcome=retried":         {uint64(per), float64(per) * 0.001},
		"name=b,outcome=succeeded":       {uint64(per), float64(per) * 0.001},
		"name=other,outcome=retried":     {uint64(per), float64(per) * 0.001},
		"name=other,outcome=succeeded":   {uint64(per), float64(per) * 0.001},
		"name=unnamed,outcome=retried":   {uint64(per), float64(per) * 0.001},
		"name=unnamed,outcome=succeeded": {uint64(per), float64(per) * 0.001},
	})
}
