// Command scheduler runs recurring work on an errand queue: a cleanup job
// every 2 seconds (an interval trigger, Every), a report every 10 seconds of
// the clock (a cron expression with a seconds field) and a few one-off
// delayed tasks. Each run is printed with its time, its schedule's id and
// when that schedule runs next.
//
//	go run ./examples/scheduler
//
// Press Ctrl-C: the schedules stop, the runs in progress finish (for up to
// 5s), and the program exits.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/errandgo/errand"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}

// run schedules the jobs, prints their runs to stdout until ctx ends, then
// shuts the queue down.
func run(ctx context.Context, stdout io.Writer) error {
	out := log.New(stdout, "", 0) // one line per call, safe for concurrent use
	clock := func(t time.Time) string { return t.Format("15:04:05") }

	var q *errand.Queue // set by New below, before any task runs
	// printRuns is a middleware: it sees every task as it starts. For a run of
	// a schedule, TaskInfo.Schedule is the schedule's id.
	printRuns := func(next errand.Handler) errand.Handler {
		return func(ctx context.Context, ti errand.TaskInfo) error {
			if ti.Schedule == "" {
				out.Printf("%s %-8s one-off", clock(time.Now()), ti.Name)
			} else {
				out.Printf("%s %-8s schedule=%s next=%s", clock(time.Now()), ti.Name, ti.Schedule[:8], clock(nextRun(q, ti.Schedule)))
			}
			return next(ctx, ti)
		}
	}
	q, err := errand.New(errand.Config{Workers: 4, Middleware: []errand.Middleware{printRuns}})
	if err != nil {
		return err
	}
	defer q.Close() // on an early return

	// Every counts elapsed time: runs at start+2s, start+4s, ...
	cleanup, err := q.Schedule(errand.Every(2*time.Second), func(ctx context.Context) error {
		return nil // delete expired sessions, temporary files, ...
	}, errand.WithName("cleanup"))
	if err != nil {
		return err
	}
	// Cron follows the clock: runs at :00, :10, :20, ... of every minute.
	every10s, err := errand.ParseCron("*/10 * * * * *") // second minute hour dom month dow
	if err != nil {
		return err
	}
	report, err := q.Schedule(every10s, func(ctx context.Context) error {
		s := q.Stats()
		out.Printf("%s report:  %d tasks done, %d runs skipped", clock(time.Now()), s.Succeeded+s.Failed, s.Skipped)
		return nil
	}, errand.WithName("report"), errand.WithTimeout(5*time.Second))
	if err != nil {
		return err
	}
	// r.Stop() would end one schedule; Shutdown below ends them all.
	out.Printf("%s scheduled cleanup schedule=%s next=%s", clock(time.Now()), cleanup.ID()[:8], clock(cleanup.Next()))
	out.Printf("%s scheduled report  schedule=%s next=%s", clock(time.Now()), report.ID()[:8], clock(report.Next()))

	// One-off tasks wait in the same timer heap as the schedules.
	for _, d := range []time.Duration{time.Second, 3 * time.Second, 5 * time.Second} {
		err := q.Go(ctx, func(ctx context.Context) error {
			return nil // send a welcome email
		}, errand.WithDelay(d), errand.WithName("welcome"))
		if err != nil {
			return err
		}
	}

	<-ctx.Done()
	out.Printf("%s shutting down", clock(time.Now()))
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := q.Shutdown(sctx); err != nil { // stops the schedules, lets the runs in progress finish
		return err
	}
	s := q.Stats()
	out.Printf("%s stopped: %d tasks succeeded, %d failed, %d runs skipped", clock(time.Now()), s.Succeeded, s.Failed, s.Skipped)
	return nil
}

// nextRun returns when the live schedule with the given id runs next.
func nextRun(q *errand.Queue, id string) time.Time {
	for _, r := range q.Recurring() {
		if r.ID() == id {
			return r.Next()
		}
	}
	return time.Time{} // stopped
}
