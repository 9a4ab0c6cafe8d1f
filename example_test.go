package errand_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/errandgo/errand"
)

// Submit runs a function on the queue and returns a typed future of its result.
func ExampleSubmit() {
	q, err := errand.New(errand.Config{Workers: 4})
	if err != nil {
		panic(err)
	}
	defer q.Close()

	ctx := context.Background()
	f, err := errand.Submit(ctx, q, func(ctx context.Context) (int, error) {
		return 6 * 7, nil
	})
	if err != nil {
		panic(err) // ErrClosed, ErrQueueFull, or a bad option
	}
	answer, err := f.Await(ctx) // ctx bounds the wait, not the task
	fmt.Println(answer, err)
	// Output: 42 <nil>
}

// Go spawns a task and forgets it: its error or panic goes to Config.Logger
// and Stats. Shutdown waits for the queued tasks to run.
func ExampleQueue_Go() {
	q, err := errand.New(errand.Config{Workers: 2})
	if err != nil {
		panic(err)
	}
	defer q.Close()

	var sent atomic.Int32
	for range 3 {
		err := q.Go(context.Background(), func(ctx context.Context) error {
			sent.Add(1) // send an email
			return nil
		})
		if err != nil {
			panic(err)
		}
	}
	if err := q.Shutdown(context.Background()); err != nil {
		panic(err)
	}
	st := q.Stats()
	fmt.Println("emails sent:", sent.Load())
	fmt.Println("submitted:", st.Submitted, "succeeded:", st.Succeeded, "workers left:", st.Workers)
	// Output:
	// emails sent: 3
	// submitted: 3 succeeded: 3 workers left: 0
}

// A Config's zero value is valid; New reports the first bad field.
func ExampleNew() {
	q, err := errand.New(errand.Config{
		Workers:  8,             // at most 8 tasks run at once
		Capacity: 1000,          // at most 1000 wait for a worker...
		OnFull:   errand.Reject, // ...beyond that, Submit and Go return ErrQueueFull
		Timeout:  30 * time.Second,
		Retry:    errand.RetryPolicy{MaxAttempts: 3}, // exponential backoff by default
		Logger:   slog.Default(),
	})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	fmt.Println("workers running:", q.Stats().Workers) // they start on demand

	_, err = errand.New(errand.Config{Workers: -1})
	fmt.Println(err)
	// Output:
	// workers running: 0
	// errand: Config.Workers is -1, want 0 (default) or more
}

// Under OrderPriority the highest priority runs first, FIFO among equals.
func ExampleWithPriority() {
	q, err := errand.New(errand.Config{Workers: 1, Order: errand.OrderPriority})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	ctx := context.Background()

	// Keep the only worker busy so that the next tasks wait in the queue.
	busy, gate := make(chan struct{}), make(chan struct{})
	q.Go(ctx, func(context.Context) error { close(busy); <-gate; return nil })
	<-busy

	for _, t := range []struct {
		name string
		prio int
	}{{"newsletter", 0}, {"password reset", 10}, {"receipt", 5}, {"digest", 0}} {
		q.Go(ctx, func(context.Context) error {
			fmt.Println(t.name)
			return nil
		}, errand.WithPriority(t.prio))
	}
	close(gate)
	q.Shutdown(ctx)
	// Output:
	// password reset
	// receipt
	// newsletter
	// digest
}

// While a task with a key is waiting or running, submitting the same key
// returns its future instead of adding a task.
func ExampleWithKey() {
	q, err := errand.New(errand.Config{})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	ctx := context.Background()

	release := make(chan struct{})
	build := func(ctx context.Context) (string, error) {
		<-release // a slow report
		return "report for 2024", nil
	}
	f1, _ := errand.Submit(ctx, q, build, errand.WithKey("report:2024"))
	f2, _ := errand.Submit(ctx, q, build, errand.WithKey("report:2024"))
	fmt.Println("same future:", f1 == f2)
	close(release)
	fmt.Println(f2.Await(ctx))
	fmt.Println("tasks submitted:", q.Stats().Submitted)

	// Once the task has finished, the key is free again.
	f3, _ := errand.Submit(ctx, q, build, errand.WithKey("report:2024"))
	fmt.Println("same future:", f3 == f1)
	// Output:
	// same future: true
	// report for 2024 <nil>
	// tasks submitted: 1
	// same future: false
}

// A failed attempt is tried again after the backoff, up to MaxAttempts.
func ExampleWithRetry() {
	q, err := errand.New(errand.Config{})
	if err != nil {
		panic(err)
	}
	defer q.Close()

	attempt := 0 // attempts run one after another: no data race
	f, _ := errand.Submit(context.Background(), q, func(ctx context.Context) (string, error) {
		attempt++
		if attempt < 3 {
			fmt.Println("attempt", attempt, "failed")
			return "", errors.New("connection reset")
		}
		return "delivered", nil
	}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 5, Backoff: errand.Constant(5 * time.Millisecond)}))

	v, err := f.Await(context.Background())
	fmt.Println(v, err, "after", f.Attempts(), "attempts")
	// Output:
	// attempt 1 failed
	// attempt 2 failed
	// delivered <nil> after 3 attempts
}

// Cancel drops a waiting task and cancels the context of a running one.
func ExampleFuture_Cancel() {
	q, err := errand.New(errand.Config{Workers: 1})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	ctx := context.Background()

	started := make(chan struct{})
	running, _ := errand.Submit(ctx, q, func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done() // a long computation that checks its context
		return 0, ctx.Err()
	})
	waiting, _ := errand.Submit(ctx, q, func(ctx context.Context) (int, error) {
		fmt.Println("never runs")
		return 1, nil
	})
	<-started

	fmt.Println("waiting:", waiting.Cancel(), waiting.Status())
	fmt.Println("running:", running.Cancel())
	_, err = running.Await(ctx)
	fmt.Println(err)
	fmt.Println(running.Status(), errors.Is(err, errand.ErrCanceled))
	fmt.Println("again:", running.Cancel()) // it has finished
	// Output:
	// waiting: true canceled
	// running: true
	// errand: task canceled: context canceled
	// canceled true
	// again: false
}

// AwaitAll waits for several futures and returns their results in order.
func ExampleAwaitAll() {
	q, err := errand.New(errand.Config{Workers: 4})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	ctx := context.Background()

	var fs []*errand.Future[int]
	for _, n := range []int{1, 2, 3, 4} {
		f, err := errand.Submit(ctx, q, func(context.Context) (int, error) { return n * n, nil })
		if err != nil {
			panic(err)
		}
		fs = append(fs, f)
	}
	squares, err := errand.AwaitAll(ctx, fs...)
	fmt.Println(squares, err)
	// Output: [1 4 9 16] <nil>
}

// Shutdown stops intake, drops delayed tasks, runs what is queued and waits;
// its context bounds the wait (when it ends, running tasks are canceled).
func ExampleQueue_Shutdown() {
	q, err := errand.New(errand.Config{Workers: 1})
	if err != nil {
		panic(err)
	}
	defer q.Close()
	bg := context.Background()

	for i := 1; i <= 3; i++ {
		q.Go(bg, func(context.Context) error { fmt.Println("task", i); return nil })
	}
	later, _ := errand.Submit(bg, q, func(context.Context) (int, error) { return 1, nil },
		errand.WithDelay(time.Hour))

	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	fmt.Println("shutdown:", q.Shutdown(ctx))
	_, err = later.Await(bg)
	fmt.Println("delayed task:", err)
	fmt.Println("after shutdown:", q.Go(bg, func(context.Context) error { return nil }))
	// Output:
	// task 1
	// task 2
	// task 3
	// shutdown: <nil>
	// delayed task: errand: queue closed
	// after shutdown: errand: queue closed
}

// Permanent marks an error that no retry can fix.
func ExamplePermanent() {
	q, err := errand.New(errand.Config{
		Retry: errand.RetryPolicy{MaxAttempts: 5, Backoff: errand.Constant(time.Millisecond)},
	})
	if err != nil {
		panic(err)
	}
	defer q.Close()

	errNoSuchUser := errors.New("no such user")
	f, _ := errand.Submit(context.Background(), q, func(ctx context.Context) (string, error) {
		return "", errand.Permanent(errNoSuchUser)
	})
	_, err = f.Await(context.Background())
	fmt.Println(err, errors.Is(err, errNoSuchUser), f.Attempts())
	// Output: no such user true 1
}

// A middleware wraps every attempt of every task: here, a log line.
func ExampleConfig_middleware() {
	logAttempts := func(next errand.Handler) errand.Handler {
		return func(ctx context.Context, t errand.TaskInfo) error {
			err := next(ctx, t)
			fmt.Printf("%s attempt %d: %v\n", t.Name, t.Attempt, err)
			return err
		}
	}
	q, err := errand.New(errand.Config{Middleware: []errand.Middleware{logAttempts}})
	if err != nil {
		panic(err)
	}
	defer q.Close()

	calls := 0
	f, _ := errand.Submit(context.Background(), q, func(ctx context.Context) (int, error) {
		if calls++; calls == 1 {
			return 0, errors.New("flaky")
		}
		return calls, nil
	}, errand.WithName("sync"), errand.WithRetry(errand.RetryPolicy{MaxAttempts: 2, Backoff: errand.Constant(time.Millisecond)}))
	fmt.Println(f.Await(context.Background()))
	// Output:
	// sync attempt 1: flaky
	// sync attempt 2: <nil>
	// 2 <nil>
}

// OnEvent sees every transition of every task, in order, on one goroutine.
// Close returns once every event has been delivered.
func ExampleConfig_onEvent() {
	var kinds []string // appended to by the event goroutine only
	q, err := errand.New(errand.Config{
		OnEvent: func(e errand.Event) { kinds = append(kinds, e.Kind.String()) },
	})
	if err != nil {
		panic(err)
	}

	calls := 0
	f, _ := errand.Submit(context.Background(), q, func(ctx context.Context) (int, error) {
		if calls++; calls == 1 {
			return 0, errors.New("flaky")
		}
		return calls, nil
	}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 2, Backoff: errand.Constant(time.Millisecond)}))
	f.Await(context.Background())
	q.Close()
	fmt.Println(strings.Join(kinds, " "))
	// Output: submitted started retrying queued started succeeded
}
