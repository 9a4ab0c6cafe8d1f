// Package errandpg is errand's durable store on PostgreSQL (pgx v5): named
// task kinds stored in the database, shared by every process pointing at it,
// and surviving restarts and kill -9.
//
// # What exists now
//
// The schema and its versioned migrations, applied only by an explicit call:
//
//	if err := errandpg.Migrate(ctx, pool); err != nil { ... }
//	current, latest, err := errandpg.Version(ctx, pool)
//
// Migrate is safe to call from several processes at once and idempotent; it
// never runs on its own. The tables (errand_tasks, errand_schedules,
// errand_schema_migrations) are created in the first existing schema of the
// connection's search_path; to keep them in a schema of their own, set
// search_path on the pool's connections (see DB). PostgreSQL 13 or later is
// required (gen_random_uuid).
//
// Under the exported API lies the SQL layer the store will run, tested
// against a real PostgreSQL: fetching due tasks with FOR UPDATE SKIP LOCKED by
// priority, then due time, then id, on a partial index; leases renewed by
// heartbeat and recovered by any process once expired; completion fenced by
// a per-claim lease token; unique keys enforced by a partial unique index
// while a task waits or runs; hand-back without spending an attempt;
// retention deletes; recurring schedules fired once per due time. The
// database clock decides what is due.
//
// Migration 2 makes the database announce, by NOTIFY, work that is due on
// insert or becomes due by an update (channel errand_work_<schema>, payload
// the kind) and tasks that finish (errand_done_<schema>, payload the id); a
// schema name too long for a 63-byte channel name is replaced by its md5.
// An internal listener holds one connection of its own LISTENing on them,
// reconnecting with back-off, and reports when the caller must poll instead.
//
// # What is coming
//
// errandpg.New(pool), implementing the core's Store interface (Config.Store),
// with heartbeats, lease-loss cancellation, EnqueueTx inside the caller's
// transaction, LISTEN/NOTIFY wake-ups and future resolution with polling as a
// fallback, and configurable retention.
package errandpg
