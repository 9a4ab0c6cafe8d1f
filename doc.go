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
// result pass through a Codec, so the same code can later run durable and
// shared by several processes (see docs/durable.md); today it runs in-process.
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
// a Future[int]), and one 80-byte context per attempt. Goroutines: one per
// busy worker (idle ones exit), plus one timer goroutine while anything is
// delayed and one event goroutine when OnEvent is set; all exit by the time
// Shutdown or Close returns. bench/ measures all of it beside pond, ants,
// workerpool, errgroup and plain channels.
package errand
