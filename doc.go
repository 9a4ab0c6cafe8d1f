// Package errand is a background task queue that lives inside your process,
// above all inside an HTTP server: no server to run, no broker to operate.
//
// There are three ways to use it:
//
//   - Spawn and forget: q.Go(ctx, fn) runs fn on a worker. Its error or panic
//     is logged and counted. Use it for the welcome email a handler sends.
//   - Submit and await: Submit(ctx, q, fn) returns a typed *Future[T]; Await
//     waits for the result with a context that bounds the wait, not the task.
//   - Later and again: WithDelay and WithRunAt hold a task in the scheduler
//     until its time; a RetryPolicy brings a failed task back after a backoff;
//     Schedule runs one on an interval or a cron expression.
//
// Work that must be storable is a named kind (Define): its arguments and
// result pass through a Codec. Without a store a kind runs in-process like a
// closure (still making the codec round trip). With Config.Store (errandpg
// for PostgreSQL) the same code runs durable and shared by every process
// pointing at the store.
//
// # Durable mode
//
// With a Store, Kind.Enqueue stores the task and any process running the
// kind (Config.Kinds, and the kinds it enqueues unless Config.OnlyKinds)
// may claim it. The contract is at-least-once: a claim is a lease
// (Config.Lease, default 30s) renewed by heartbeats and separate from the
// task's timeout; a process that dies loses its tasks to the others once
// its leases lapse, so a handler must be idempotent (TaskFromContext gives
// the task id and attempt). A lost lease cancels the handler's context, and
// completion is fenced by the claim's token (ErrLeaseLost), so a stale
// worker cannot overwrite a result. Delays, retries (the kind's backoff) and
// schedules (Kind.Schedule: once per due time across processes) are
// stored, timed by the store's clock. A future of a stored task resolves in
// any process (Kind.Future re-attaches by id), by notification or by
// polling (Config.PollInterval); a failed one reports a *StoredError.
// Shutdown and Close hand unfinished leases back without spending an
// attempt. Queue.Lookup reads a stored task's record. The runtime costs four
// goroutines per queue (fetch, heartbeat, listen, housekeeping; a fifth
// records outcomes in batches with a BatchCompleter store such as
// errandpg), one store write per Enqueue, one per batch of finished
// attempts (per attempt without BatchCompleter), and a claim per batch of
// tasks. errandtest.MemStore is an in-memory Store for tests.
//
// # Semantics
//
// A Queue has a bounded pool of workers (Config.Workers, default GOMAXPROCS)
// that start on demand and exit when idle. Waiting tasks run in FIFO order, or
// under OrderPriority highest priority first and FIFO among equals. With
// Config.Capacity, a full queue blocks the submitter (Block) or refuses the
// task with ErrQueueFull (Reject); a task's own submissions never block.
//
// The submitting context's values reach the task; its cancellation does not,
// so work spawned from a request outlives the request, unless the task is
// submitted WithLinkedContext. Each attempt gets its own context, canceled
// when it returns, by Future.Cancel, by a timeout (WithTimeout,
// Config.Timeout: it then reports context.DeadlineExceeded), or by Close. A
// plain q.Go (no options, no timeout, middleware or events) is the exception
// that makes it free: it runs on a context shared by the queue's plain tasks,
// canceled only by Close.
//
// Every accepted task ends in exactly one final state (Succeeded, Failed or
// Canceled) and its future resolves exactly once. A task waiting for its time
// or backing off before a retry holds no worker and no goroutine: it waits in
// one heap served by one timer goroutine. A panic becomes a *PanicError.
//
// Shutdown(ctx) stops intake, drops delayed and backing-off tasks with
// ErrClosed, runs what is queued and waits; when ctx ends it cancels the
// running tasks. Close stops at once. After either, Submit and Go return
// ErrClosed. Stats counts exactly: once closed,
// Submitted = Succeeded + Failed + Canceled.
//
// Config.Middleware wraps every attempt and Config.OnEvent sees every
// transition, in order, for metrics, tracing and dashboards.
//
// # Cost
//
// A plain q.Go(ctx, fn) (no options but a priority or a delay) costs no
// allocation: it waits as 32 bytes in the queue, or as a 48-byte entry of the
// timer heap while delayed, and runs on a context the queue's plain tasks
// share. A Submit allocates its Future, which embeds the task (144 bytes for
// a Future[int]) and is the context of its first attempt; a retry, or an
// attempt with a timeout, adds a 96-byte context. Goroutines: one per
// busy worker (idle ones exit), plus one timer goroutine while anything is
// delayed and one event goroutine when OnEvent is set; all exit by the time
// Shutdown or Close returns. bench/ measures all of it beside pond, ants,
// workerpool, errgroup and plain channels.
package errand
