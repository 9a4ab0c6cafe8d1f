package errandprom_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// A collector counts a queue's tasks by name and outcome, and reports the
// queue's gauges. Here its OnEvent also feeds another consumer of events.
// A server would serve the registry with
// promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).
func Example() {
	c := errandprom.New(errandprom.Options{})
	var seen atomic.Int64 // another consumer of events: a log, a dashboard
	q, err := errand.New(errand.Config{
		Workers: 2,
		OnEvent: func(e errand.Event) {
			c.Observe(e)
			seen.Add(1)
		},
	})
	if err != nil {
		panic(err)
	}
	c.Watch(q)
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	ctx := context.Background()
	var fs []*errand.Future[string]
	for _, to := range []string{"ann", "bob", "cy"} {
		f, err := errand.Submit(ctx, q, func(context.Context) (string, error) {
			return "sent to " + to, nil
		}, errand.WithName("email.send"))
		if err != nil {
			panic(err)
		}
		fs = append(fs, f)
	}
	// A flaky task: its first attempt fails, the retry succeeds.
	var calls atomic.Int32
	f, err := errand.Submit(ctx, q, func(context.Context) (string, error) {
		if calls.Add(1) == 1 {
			return "", errors.New("connection reset")
		}
		return "charged", nil
	}, errand.WithName("card.charge"), errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3, Backoff: errand.Constant(time.Millisecond)}))
	if err != nil {
		panic(err)
	}
	fs = append(fs, f)
	if _, err := errand.AwaitAll(ctx, fs...); err != nil {
		panic(err)
	}
	// An unnamed task that fails.
	if err := q.Go(ctx, func(context.Context) error { return errors.New("disk full") }); err != nil {
		panic(err)
	}
	// Shutdown runs what is queued and waits; every event has been observed
	// when it returns.
	if err := q.Shutdown(ctx); err != nil {
		panic(err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	enc := expfmt.NewEncoder(os.Stdout, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if slices.Contains([]string{"errand_tasks_total", "errand_task_retries_total", "errand_tasks_running"}, mf.GetName()) {
			if err := enc.Encode(mf); err != nil {
				panic(err)
			}
		}
		if mf.GetName() == "errand_task_run_seconds" {
			// Run times vary; their counts do not.
			for _, m := range mf.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				fmt.Printf("errand_task_run_seconds_count{%s} %d\n", strings.Join(labels, ","), m.GetHistogram().GetSampleCount())
			}
		}
	}
	fmt.Println("events seen by the other consumer:", seen.Load())
	// Output:
	// # HELP errand_task_retries_total Failed task attempts that were scheduled to run again, by task name.
	// # TYPE errand_task_retries_total counter
	// errand_task_retries_total{name="card.charge"} 1
	// errand_task_run_seconds_count{name="card.charge",outcome="retried"} 1
	// errand_task_run_seconds_count{name="card.charge",outcome="succeeded"} 1
	// errand_task_run_seconds_count{name="email.send",outcome="succeeded"} 3
	// errand_task_run_seconds_count{name="unnamed",outcome="failed"} 1
	// # HELP errand_tasks_running Tasks running.
	// # TYPE errand_tasks_running gauge
	// errand_tasks_running 0
	// # HELP errand_tasks_total Tasks that ended, by task name and outcome: succeeded, failed or canceled; rejected counts submissions refused for want of room.
	// # TYPE errand_tasks_total counter
	// errand_tasks_total{name="card.charge",outcome="succeeded"} 1
	// errand_tasks_total{name="email.send",outcome="succeeded"} 3
	// errand_tasks_total{name="unnamed",outcome="failed"} 1
	// events seen by the other consumer: 18
}
