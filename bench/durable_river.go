package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// The River side of the durable benchmark.

// riverFastCooldown is river-fast's FetchCooldown: River's minimum.
const riverFastCooldown = time.Millisecond

// riverBatch is how many jobs one InsertMany call inserts.
const riverBatch = 5000

// riverLib is River with the given FetchCooldown (0: River's default,
// 100 ms); FetchPollInterval stays River's default (1 s).
func riverLib(name string, cooldown time.Duration) *durLib {
	settings := "River defaults: FetchCooldown 100ms, FetchPollInterval 1s, LISTEN/NOTIFY (insert notifications at most once per FetchCooldown), async batch completer"
	if cooldown != 0 {
		settings = fmt.Sprintf("River with FetchCooldown %v (River's minimum; default 100ms), FetchPollInterval 1s, LISTEN/NOTIFY, async batch completer", cooldown)
	}
	return &durLib{
		name:      name,
		settings:  settings,
		migrate:   riverMigrate,
		pending:   `SELECT EXISTS (SELECT 1 FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded'))`,
		succeeded: `SELECT count(*) FROM river_job WHERE state = 'completed'`,
		newInserter: func(ctx context.Context, pool *pgxpool.Pool, schema string) (durInserter, error) {
			c, err := river.NewClient(riverpgxv5.New(pool), riverConfig(schema, cooldown))
			if err != nil {
				return nil, err
			}
			return &riverInserter{c: c}, nil
		},
		newWorker: func(pool *pgxpool.Pool, spec workerSpec, stats *workerStats) (durWorker, error) {
			workers := river.NewWorkers()
			if err := river.AddWorkerSafely(workers, &riverNoop{stats: stats}); err != nil {
				return nil, err
			}
			cfg := riverConfig(spec.Schema, cooldown)
			cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: spec.Workers}}
			cfg.Workers = workers
			c, err := river.NewClient(riverpgxv5.New(pool), cfg)
			if err != nil {
				return nil, err
			}
			return &riverWorker{c: c}, nil
		},
	}
}

// riverConfig is the client configuration shared by the parent's inserting
// client and the workers' (the insert notifications are limited by the
// inserting client's FetchCooldown).
func riverConfig(schema string, cooldown time.Duration) *river.Config {
	return &river.Config{
		Schema:        schema,
		FetchCooldown: cooldown,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func riverMigrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{
		Schema: schema,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

type riverInserter struct{ c *river.Client[pgx.Tx] }

func (r *riverInserter) bulk(ctx context.Context, n int) error {
	params := make([]river.InsertManyParams, 0, min(n, riverBatch))
	for n > 0 {
		params = params[:0]
		for range min(n, riverBatch) {
			params = append(params, river.InsertManyParams{Args: durArgs{}})
		}
		if _, err := r.c.InsertMany(ctx, params); err != nil {
			return err
		}
		n -= len(params)
	}
	return nil
}

func (r *riverInserter) one(ctx context.Context, a durArgs) error {
	_, err := r.c.Insert(ctx, a, nil)
	return err
}

func (r *riverInserter) close() {}

// riverNoop is the no-op worker.
type riverNoop struct {
	river.WorkerDefaults[durArgs]
	stats *workerStats
}

func (w *riverNoop) Work(_ context.Context, job *river.Job[durArgs]) error {
	w.stats.handle(job.Args)
	return nil
}

type riverWorker struct{ c *river.Client[pgx.Tx] }

// start starts the client; its lifetime is bounded by Stop, not by ctx.
func (r *riverWorker) start(context.Context) error {
	return r.c.Start(context.Background())
}

func (r *riverWorker) stop(ctx context.Context) error { return r.c.Stop(ctx) }
