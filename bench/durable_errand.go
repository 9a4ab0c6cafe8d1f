package main

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandpg"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The errand side of the durable benchmark: errandpg with the core's
// durable runtime, every setting at its default but Workers.

const (
	// errandInserters and errandTxBatch: the bulk enqueue runs
	// errandInserters goroutines, each committing transactions of
	// errandTxBatch EnqueueTx calls (one INSERT each).
	errandInserters = 8
	errandTxBatch   = 500
)

func errandLib() *durLib {
	return &durLib{
		name: durErrand,
		settings: "errandpg.New(pool) with its defaults (LISTEN/NOTIFY on); errand.Config{Store, Kinds, Workers} with the defaults " +
			"PollInterval 1s and Lease 30s (heartbeat every 10s); one Claim asks for up to 100 tasks (the core's maxClaim, capped by free workers); " +
			"finished tasks are recorded by the core's completer goroutine in batches, one UPDATE per batch (errandpg's errand.BatchCompleter, CompleteMany; a worker is free once its handler returns), and announced with one notification per statement (migration 3); bulk enqueue: errandpg.EnqueueTx in transactions of " +
			strconv.Itoa(errandTxBatch) + " from " + strconv.Itoa(errandInserters) + " goroutines",
		migrate:   func(ctx context.Context, pool *pgxpool.Pool, _ string) error { return errandpg.Migrate(ctx, pool) },
		pending:   `SELECT EXISTS (SELECT 1 FROM errand_tasks WHERE state IN ('queued', 'scheduled', 'retrying', 'running'))`,
		succeeded: `SELECT count(*) FROM errand_tasks WHERE state = 'succeeded'`,
		newInserter: func(_ context.Context, pool *pgxpool.Pool, _ string) (durInserter, error) {
			return &errandInserter{pool: pool, store: errandpg.New(pool), kind: errandNoop(nil)}, nil
		},
		newWorker: func(pool *pgxpool.Pool, spec workerSpec, stats *workerStats) (durWorker, error) {
			return &errandWorker{pool: pool, workers: spec.Workers, kind: errandNoop(stats)}, nil
		},
	}
}

// errandNoop is the no-op kind; stats may be nil in the parent, which only
// enqueues.
func errandNoop(stats *workerStats) *errand.Kind[durArgs, struct{}] {
	return errand.Define(durKind, func(_ context.Context, a durArgs) (struct{}, error) {
		if stats != nil {
			stats.handle(a)
		}
		return struct{}{}, nil
	})
}

type errandInserter struct {
	pool  *pgxpool.Pool
	store *errandpg.Store
	kind  *errand.Kind[durArgs, struct{}]
}

// bulk inserts n tasks from errandInserters goroutines, each committing
// transactions of up to errandTxBatch EnqueueTx calls.
func (e *errandInserter) bulk(ctx context.Context, n int) error {
	batches := make(chan int)
	errs := make(chan error, errandInserters)
	var wg sync.WaitGroup
	for range errandInserters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for size := range batches {
				if first == nil {
					first = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
						for range size {
							if _, err := errandpg.EnqueueTx(ctx, tx, e.kind, durArgs{}); err != nil {
								return err
							}
						}
						return nil
					})
				}
			}
			errs <- first
		}()
	}
	for left := n; left > 0; left -= errandTxBatch {
		batches <- min(left, errandTxBatch)
	}
	close(batches)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// one stores one task through the Store, as Kind.Enqueue on a queue does.
func (e *errandInserter) one(ctx context.Context, a durArgs) error {
	nt, err := e.kind.NewTask(a)
	if err != nil {
		return err
	}
	_, _, err = e.store.Enqueue(ctx, nt)
	return err
}

func (e *errandInserter) close() {}

type errandWorker struct {
	pool    *pgxpool.Pool
	workers int
	kind    *errand.Kind[durArgs, struct{}]
	q       *errand.Queue
}

func (w *errandWorker) start(context.Context) error {
	q, err := errand.New(errand.Config{
		Store:   errandpg.New(w.pool),
		Kinds:   []errand.Runner{w.kind},
		Workers: w.workers,
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	w.q = q
	return nil
}

func (w *errandWorker) stop(ctx context.Context) error { return w.q.Shutdown(ctx) }
