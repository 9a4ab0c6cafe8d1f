package errand

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseLost is returned by a Store's Complete when the lease it names is
// no longer held: it expired and another process recovered the task, or it
// was handed back. The outcome of the stale attempt is refused.
var ErrLeaseLost = errors.New("errand: lease lost")

// Store keeps the tasks of named kinds (Define) where every process sharing
// it can claim and run them: Config.Store. A nil Config.Store, the default,
// keeps them in memory and runs them in this process like any other task.
// errandpg.New returns a Store on PostgreSQL.
//
// The queue calls a Store from a few goroutines of its own (a fetcher, a
// heartbeat, a listener, the workers completing their tasks, and Enqueue's
// callers), so an implementation must be safe for concurrent use. Every
// method gets a context that bounds it. Times that decide when work is due
// (delays, retries, lease expiry, retention) are the store's to measure: a
// database store uses the database clock.
//
// The contract a Store gives the queue is at-least-once: a task is claimed
// by one holder at a time, identified by a Lease whose token fences every
// later write; a lease that is not renewed expires and its task becomes
// claimable again (Maintain), so a process killed while running a task loses
// nothing, and its late Complete is refused with ErrLeaseLost. A store may
// give up a task that has lost several more leases than its MaxAttempts
// allow, failing it as a poison task that kills whoever runs it (errandpg
// and errandtest.MemStore: 3 more).
type Store interface {
	// Enqueue stores a new task. If t.Key is held by a task still waiting
	// or running, it stores nothing and returns that task's id with
	// existing set.
	Enqueue(ctx context.Context, t NewTask) (id string, existing bool, err error)

	// Claim leases up to n due tasks of the named kinds for d, in the
	// order they should run (highest priority, then earliest due, first).
	// holder names the claiming process in the store, for operators.
	Claim(ctx context.Context, kinds []string, n int, d time.Duration, holder string) ([]Claim, error)

	// Heartbeat renews the leases for d and returns those no longer held.
	Heartbeat(ctx context.Context, leases []Lease, d time.Duration) (lost []Lease, err error)

	// Complete records the outcome of the attempt holding l, and releases
	// l. It returns ErrLeaseLost if l is no longer held.
	Complete(ctx context.Context, l Lease, o Outcome) error

	// Release hands leased tasks back at once without spending their
	// attempt (graceful shutdown). Leases no longer held are ignored.
	Release(ctx context.Context, leases []Lease) error

	// Cancel cancels a waiting task so that it never runs, and reports
	// whether it did: false if the task is running, finished or unknown.
	Cancel(ctx context.Context, id string) (bool, error)

	// Lookup returns the stored tasks with the given ids, in any order;
	// unknown ids (never stored, or deleted by retention) are left out.
	Lookup(ctx context.Context, ids []string) ([]TaskRecord, error)

	// Schedule registers a recurring schedule of a named kind, or updates
	// the one with the same ID. A schedule that exists keeps its next due
	// time unless its Spec changed; a new one is first due at first.
	Schedule(ctx context.Context, s ScheduleRecord, first time.Time) error

	// Unschedule removes a recurring schedule; runs already stored stay.
	Unschedule(ctx context.Context, id string) error

	// FireSchedules stores a run of every schedule that is due, once per
	// due time whichever processes call it, and moves each to its next due
	// time, which next computes from the schedule's Spec. A run is not
	// stored while the schedule's previous run still waits or runs (runs
	// never overlap). It returns how many runs it stored.
	FireSchedules(ctx context.Context, next func(spec string, after time.Time) (time.Time, error)) (int, error)

	// Maintain does the store's periodic work: it makes tasks whose lease
	// expired claimable again and deletes finished tasks past retention.
	// Any number of processes may call it at once.
	Maintain(ctx context.Context) error

	// Listen calls work when due work may be waiting and done with the id
	// of each task that finished, until ctx ends; then it returns nil. It
	// returns an error at once if the store cannot notify at all, and the
	// queue then relies on polling alone. Notifications are hints: the
	// queue polls anyway, so a missed one only delays. work and done must
	// not block, and are not called after Listen returns.
	Listen(ctx context.Context, work func(), done func(id string)) error
}

// NewTask is a task of a named kind to store (Store.Enqueue).
type NewTask struct {
	ID          string        // a UUID chosen by the queue
	Kind        string        // the kind's name (Define)
	Args        []byte        // the encoded arguments
	Priority    int           // higher is claimed first
	RunAt       time.Time     // when it is due; zero: after Delay
	Delay       time.Duration // when RunAt is zero: due this long after it is stored, by the store's clock
	MaxAttempts int           // at least 1
	Timeout     time.Duration // per attempt; 0: none
	Key         string        // a unique key while the task waits or runs; "": none
}

// Lease identifies one claim of a stored task: its id and the token the
// claim drew. Every write by the holder is fenced by the token.
type Lease struct {
	ID    string
	Token string
}

// Claim is a stored task leased to this process for one attempt.
type Claim struct {
	Lease
	Kind        string
	Args        []byte
	Priority    int
	Attempt     int // this attempt, counting from 1
	MaxAttempts int
	Timeout     time.Duration // per attempt; 0: none
	Schedule    string        // the recurring schedule it is a run of; "" for none
}

// Outcome is how an attempt of a stored task ended (Store.Complete).
type Outcome struct {
	Status  Status        // Succeeded, Failed, Canceled, or Retrying
	Result  []byte        // Succeeded: the encoded result
	Error   string        // Failed, Canceled, Retrying: the attempt's error
	RetryIn time.Duration // Retrying: the next attempt is due this long after, by the store's clock
}

// TaskRecord is a stored task as Store.Lookup and Queue.Lookup report it.
type TaskRecord struct {
	ID          string
	Kind        string
	Status      Status // Scheduled, Queued, Retrying and Running while it lives; then final
	Priority    int
	Attempts    int // attempts started
	MaxAttempts int
	Args        []byte
	Result      []byte // Succeeded: the encoded result
	Error       string // the last attempt's error
	Key         string
	Schedule    string    // the recurring schedule it is a run of
	Holder      string    // Running: the process holding the lease
	RunAt       time.Time // when it is or was due
	Created     time.Time
	Started     time.Time // the latest attempt's start; zero before the first
	Finished    time.Time // zero until final
}

// ScheduleRecord is a recurring schedule of a named kind (Store.Schedule).
type ScheduleRecord struct {
	ID          string // the schedule's stable name, the same in every process
	Kind        string
	Spec        string // the Trigger's String, which ParseCron reads back
	Args        []byte
	Priority    int
	MaxAttempts int
	Timeout     time.Duration
}

// Completion is the outcome of one attempt, for BatchCompleter.
type Completion struct {
	Lease
	Outcome
}

// BatchCompleter is implemented by a Store that records many outcomes in
// one call. With one, a worker is free as soon as its handler returns: the
// queue records outcomes in batches (whatever finished while the previous
// batch was being written), so a busy queue pays one store round trip per
// batch instead of one per task. An outcome not yet recorded when the
// process dies is lost with it and the task runs again, as at-least-once
// allows; Shutdown and Close record every outcome before they return.
type BatchCompleter interface {
	// CompleteMany records the outcomes as Complete does, each fenced by
	// its lease, and returns the leases that were no longer held (their
	// outcomes refused).
	CompleteMany(ctx context.Context, cs []Completion) (refused []Lease, err error)
}
