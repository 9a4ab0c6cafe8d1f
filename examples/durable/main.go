// Command durable runs named tasks on PostgreSQL: the same kind of task that
// runs in memory, stored and shared by every process pointing at the same
// database. It migrates the schema (explicitly, as errandpg requires),
// enqueues n thumbnail tasks, runs them and prints each result as its future
// resolves. Start it twice at once and the two processes share the work.
//
//	go run ./examples/durable                  # DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test
//	go run ./examples/durable -n 50 -schema demo
//
// The tables go into -schema (default errand_example), created if missing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandpg"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ThumbArgs and Thumb are the task's arguments and result: they are stored
// as JSON.
type ThumbArgs struct {
	Image string `json:"image"`
	Width int    `json:"width"`
}

type Thumb struct {
	Image  string `json:"image"`
	Bytes  int    `json:"bytes"`
	By     int    `json:"by"` // the process that made it
	Try    int    `json:"try"`
	TaskID string `json:"task_id"`
}

// MakeThumb is the named kind. A handler of a stored task may run more than
// once (at-least-once): this one is idempotent, keyed by the task id.
var MakeThumb = errand.Define("thumb.make", func(ctx context.Context, a ThumbArgs) (Thumb, error) {
	if a.Width <= 0 {
		return Thumb{}, errand.Permanent(fmt.Errorf("width %d", a.Width))
	}
	info, _ := errand.TaskFromContext(ctx)
	return Thumb{Image: a.Image, Bytes: a.Width * a.Width / 10, By: os.Getpid(), Try: info.Attempt, TaskID: info.ID}, nil
}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3}), errand.WithTimeout(10*time.Second))

func main() {
	n := flag.Int("n", 10, "tasks to enqueue")
	schema := flag.String("schema", "errand_example", "the schema of errand's tables")
	flag.Parse()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, url, *schema, *n); err != nil {
		fmt.Fprintln(os.Stderr, "durable:", err)
		os.Exit(1)
	}
}

// run connects, migrates, enqueues n tasks and prints their results.
func run(ctx context.Context, out io.Writer, url, schema string, n int) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return err
	}
	if err := errandpg.Migrate(ctx, pool); err != nil {
		return err
	}

	// The switch from memory to PostgreSQL is this one field.
	q, err := errand.New(errand.Config{Store: errandpg.New(pool), Kinds: []errand.Runner{MakeThumb}, Workers: 4})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = q.Shutdown(sctx) // hands unfinished leases back
		_ = q.Close()
	}()

	fs := make([]*errand.Future[Thumb], n)
	for i := range fs {
		if fs[i], err = MakeThumb.Enqueue(ctx, q, ThumbArgs{Image: fmt.Sprintf("img-%03d.png", i), Width: 64 + i}); err != nil {
			return err
		}
	}
	for i, f := range fs {
		th, err := f.Await(ctx)
		if err != nil {
			return fmt.Errorf("task %d (%s): %w", i, f.ID(), err)
		}
		fmt.Fprintf(out, "%s: %d bytes (attempt %d)\n", th.Image, th.Bytes, th.Try)
	}
	rec, err := q.Lookup(ctx, fs[0].ID())
	if err != nil && !errors.Is(err, errand.ErrNotFound) {
		return err
	}
	if err == nil {
		fmt.Fprintf(out, "stored: task %s is %s after %d attempt(s)\n", rec.ID, rec.Status, rec.Attempts)
	}
	return nil
}
