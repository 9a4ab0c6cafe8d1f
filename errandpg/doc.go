// Package errandpg is errand's durable store on PostgreSQL (pgx v5): the
// tasks of named kinds (errand.Define) are stored in the database, shared by
// every process pointing at it, and survive restarts and kill -9.
//
// # Use
//
// Migrate the schema (errandpg never migrates on its own), then give the
// queue a Store:
//
//	pool, err := pgxpool.New(ctx, url)
//	if err := errandpg.Migrate(ctx, pool); err != nil { ... }
//	q, err := errand.New(errand.Config{
//		Store: errandpg.New(pool),
//		Kinds: []errand.Runner{SendEmail}, // the kinds this process runs
//	})
//	defer pool.Close()
//	defer q.Close() // before the pool: hands running tasks back
//
//	f, err := SendEmail.Enqueue(ctx, q, EmailArgs{...}) // stored; any process running the kind may run it
//	receipt, err := f.Await(ctx)
//
// A process that only enqueues leaves Kinds empty (a kind it enqueues is
// added to what it runs). A future can be re-attached by id from any
// process with Kind.Future(q, id), also once the task finished, until
// retention deletes it; a failed or canceled task's error is an
// *errand.StoredError carrying the stored message.
//
// To enqueue atomically with the application's own writes, use EnqueueTx in
// the caller's transaction: the task exists only if the transaction
// commits, and PostgreSQL's notification at commit wakes the workers.
//
//	tx, _ := pool.Begin(ctx)
//	// ... the application's INSERTs ...
//	id, err := errandpg.EnqueueTx(ctx, tx, SendEmail, args)
//	err = tx.Commit(ctx)
//	f, err := SendEmail.Future(q, id) // await it after the commit
//
// Migrate is safe to call from several processes at once and idempotent;
// Version reports where a database stands. The tables (errand_tasks,
// errand_schedules, errand_schema_migrations) live in the first existing
// schema of the connection's search_path; to keep them in a schema of their
// own, set search_path on the pool's connections (see DB). PostgreSQL 13 or
// later is required (gen_random_uuid).
//
// # Guarantees
//
// At-least-once: a task is claimed by one process at a time (FOR UPDATE SKIP
// LOCKED, by priority, then due time, then id, on a partial index), under a
// lease whose token fences every later write, so a stale worker's outcome is
// refused (errand.ErrLeaseLost). A process killed while running a task loses
// nothing: its lease expires and any live process makes the task claimable
// again; the attempt it spent counts. Graceful Shutdown and Close hand
// running tasks back without spending their attempt. The database clock
// decides what is due: delays, retries (stored with their backoff, so a
// retry survives a crash and any process may run it), lease expiry and
// retention. Unique keys (errand.WithKey) are enforced by a unique index
// while the holder waits or runs. Recurring schedules (Kind.Schedule) are
// rows that fire once per due time across processes; runs never overlap and
// missed runs coalesce into one. The runs of a schedule hold the unique key
// "errand:schedule:" + its id: do not use that prefix for keys of your own.
//
// # Operating notes
//
// Lease and timeout: Config.Lease (default 30s) is how long a claimed task
// stays leased without a heartbeat (heartbeats renew it every Lease/3); it
// bounds how long a crashed process's tasks wait before another process
// runs them. It is separate from a task's timeout (errand.WithTimeout),
// which bounds one attempt however long the lease is renewed. A lease lost
// (the process could not reach the database for a whole lease, and another
// recovered the task) cancels the attempt's context.
//
// Retention: finished tasks (succeeded, failed, canceled) are kept for 24
// hours by default (WithRetention), then deleted for real by Maintain,
// which every queue runs every Config.PollInterval, in batches
// (WithMaintainBatch).
//
// Notifications: migration 2 makes the database NOTIFY due work (channel
// errand_work_<schema>) and finished tasks (errand_done_<schema>), so a
// worker wakes within milliseconds of an insert or a commit and a future
// resolves as soon as its task finishes, in every process; migration 3
// announces finished tasks once per statement (up to 200 ids a
// notification), so that a batch of completions (Store.CompleteMany) commits
// with one notification instead of one per task. Each queue holds
// one dedicated connection outside the pool for LISTEN, reconnecting with
// back-off; polling (Config.PollInterval) covers whatever is not announced:
// work that comes due later, and notifications missed while disconnected.
// LISTEN needs a session connection: behind a transaction pooler (PgBouncer
// in transaction mode), which accepts LISTEN and then loses the
// notifications, use New(pool, WithNotifications(false)) and let the queue
// poll; a hot standby or a database that refuses LISTEN is detected and
// polled.
//
// Connections: a queue uses the pool for claims, heartbeats, completions,
// lookups and maintenance (a few at a time), plus its one listening
// connection. Close queues before the pool.
package errandpg
