package errand

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Runner is a named kind a queue can run from its Store: *Kind implements
// it (Config.Kinds). Its methods are errand's own.
type Runner interface {
	// Name returns the kind's name.
	Name() string
	runStored(ctx context.Context, args []byte) ([]byte, error)
	retryPolicy() *RetryPolicy
	check() error
}

// storeCallTimeout bounds each Store call the queue makes on its own
// (claims, completions, heartbeats, maintenance).
const storeCallTimeout = 30 * time.Second

// maxClaim is the most tasks one Claim asks for.
const maxClaim = 100

// checkDurable validates and defaults the durable fields of cfg.
func checkDurable(cfg *Config) error {
	switch {
	case cfg.Lease < 0 || (cfg.Lease > 0 && cfg.Lease < time.Second):
		return fmt.Errorf("errand: Config.Lease is %v, want 0 (default 30s) or at least 1s", cfg.Lease)
	case cfg.PollInterval < 0:
		return fmt.Errorf("errand: Config.PollInterval is %v, want 0 (default 1s) or more", cfg.PollInterval)
	}
	seen := make(map[string]bool, len(cfg.Kinds))
	for i, k := range cfg.Kinds {
		if k == nil {
			return fmt.Errorf("errand: Config.Kinds[%d] is nil", i)
		}
		if err := k.check(); err != nil {
			return fmt.Errorf("errand: Config.Kinds[%d]: %s", i, trimPrefix(err))
		}
		if seen[k.Name()] {
			return fmt.Errorf("errand: Config.Kinds: %q twice", k.Name())
		}
		seen[k.Name()] = true
	}
	if cfg.Lease == 0 {
		cfg.Lease = defaultLease
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = defaultPollInterval
	}
	cfg.Kinds = slices.Clone(cfg.Kinds)
	return nil
}

// durable runs a queue's stored tasks: a fetcher claims due tasks for idle
// workers and submits each as an ordinary task of the queue, a heartbeat
// renews their leases (a lost lease cancels the attempt), a listener turns
// the store's notifications into wake-ups, and a housekeeper polls, fires
// schedules, recovers expired leases and resolves the futures of stored
// tasks (and, with a BatchCompleter store, a completer records outcomes in
// batches). All are owned by the queue: they start in New and are joined
// by Close (or a Shutdown that drains).
type durable struct {
	q      *Queue
	store  Store
	holder string

	ctx    context.Context // canceled when the queue stops; bounds every loop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	fetchStop chan struct{} // closed when intake stops: no more claims
	stopOnce  sync.Once
	wake      chan struct{} // buffer 1: look for work now
	doneWake  chan struct{} // buffer 1: notified ids wait in doneIDs

	mu        sync.Mutex
	kinds     map[string]Runner
	kindNames []string              // sorted, for Claim
	runs      map[string]*storedRun // claimed here, by task id
	watch     map[string][]*watcher // futures of stored tasks, by id
	doneIDs   []string
	sched     map[string]Trigger // parsed schedule specs
	stopped   bool

	// noRetry is the in-memory retry policy of a stored attempt: the store
	// retries it, not the queue.
	noRetry RetryPolicy

	// With a BatchCompleter store: outcomes waiting for the completer.
	batch        BatchCompleter
	completions  []pendingCompletion // guarded by mu
	completeWake chan struct{}       // buffer 1
}

// pendingCompletion is an attempt's outcome not yet recorded.
type pendingCompletion struct {
	run *storedRun
	o   Outcome
}

// storedRun is one claimed attempt running (or about to run) here.
type storedRun struct {
	claim   Claim
	runner  Runner
	t       *task
	renewed time.Time   // last successful heartbeat (or the claim)
	lost    atomic.Bool // the lease is gone: write nothing
	settled atomic.Bool // completed or released
	started atomic.Bool // execute has begun
}

// watcher is a future of a stored task waiting for its final state.
type watcher struct {
	t      *task
	decode func([]byte) error // stores the decoded result in the future
}

func newDurable(q *Queue) *durable {
	d := &durable{
		q:         q,
		store:     q.cfg.Store,
		holder:    holderName(),
		fetchStop: make(chan struct{}),
		wake:      make(chan struct{}, 1),
		doneWake:  make(chan struct{}, 1),
		kinds:     make(map[string]Runner),
		runs:      make(map[string]*storedRun),
		watch:     make(map[string][]*watcher),
		sched:     make(map[string]Trigger),
		noRetry:   RetryPolicy{MaxAttempts: 1},
	}
	for _, k := range q.cfg.Kinds {
		d.kinds[k.Name()] = k
		d.kindNames = append(d.kindNames, k.Name())
	}
	slices.Sort(d.kindNames)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.kick() // work may be waiting in the store already
	if bc, ok := d.store.(BatchCompleter); ok {
		d.batch, d.completeWake = bc, make(chan struct{}, 1)
		d.wg.Add(1)
		go d.completeLoop()
	}
	d.wg.Add(4)
	go d.fetchLoop()
	go d.heartbeatLoop()
	go d.listenLoop()
	go d.houseLoop()
	return d
}

// holderName names this process in the store: host, pid and a random
// suffix, so that two queues of one process differ.
func holderName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8])
}

func (d *durable) log() *slog.Logger { return d.q.cfg.Logger }

func (d *durable) warn(msg string, err error) {
	if l := d.log(); l != nil && d.ctx.Err() == nil {
		l.Warn(msg, slog.Any("error", err))
	}
}

func (d *durable) warnTask(msg string, run *storedRun, err error) {
	if l := d.log(); l != nil {
		l.Warn(msg, slog.String("task", run.claim.ID), slog.String("name", run.claim.Kind),
			slog.Int("attempt", run.claim.Attempt), slog.Any("error", err))
	}
}

// addKind makes this queue run k from now on.
func (d *durable) addKind(k Runner) {
	if d.q.cfg.OnlyKinds {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.kinds[k.Name()]; ok {
		return
	}
	d.kinds[k.Name()] = k
	i, _ := slices.BinarySearch(d.kindNames, k.Name())
	d.kindNames = slices.Insert(slices.Clone(d.kindNames), i, k.Name())
}

// kick wakes the fetcher.
func (d *durable) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// free returns how many more tasks the queue's workers could start now.
func (d *durable) free() int {
	q := d.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.state != stateOpen {
		return 0
	}
	return q.max - q.running - q.liveQueuedLocked()
}

func (d *durable) fetchLoop() {
	defer d.wg.Done()
	poll := time.NewTicker(d.q.cfg.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-d.fetchStop:
			return
		case <-d.wake:
		case <-poll.C:
		}
		d.fetch()
	}
}

// fetch claims due tasks while workers are free and claims come back full.
func (d *durable) fetch() {
	for {
		n := min(d.free(), maxClaim)
		d.mu.Lock()
		kinds := d.kindNames
		d.mu.Unlock()
		if n <= 0 || len(kinds) == 0 {
			return
		}
		select {
		case <-d.fetchStop:
			return
		default:
		}
		// Not d.ctx: a claim interrupted half-way could lease tasks that
		// nobody then runs (until the leases expire).
		ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
		claims, err := d.store.Claim(ctx, kinds, n, d.q.cfg.Lease, d.holder)
		cancel()
		if err != nil {
			d.warn("errand: claiming stored tasks", err)
			return
		}
		for _, c := range claims {
			d.start(c)
		}
		if len(claims) < n {
			return
		}
	}
}

// start submits a claimed attempt to the queue.
func (d *durable) start(c Claim) {
	run := &storedRun{claim: c, renewed: time.Now()}
	t := newGoTask(func(ctx context.Context) error { return d.execute(ctx, run) })
	run.t = t
	t.prio = c.Priority
	t.ext = &taskExt{name: c.Kind, timeout: c.Timeout, hasTimeout: true, retry: &d.noRetry}
	// When the attempt has ended and its worker is free, look for more.
	kick := d.kick
	t.lazy = &taskLazy{id: c.ID, onDone: []*func(){&kick}}
	t.attempts.Store(int32(c.Attempt - 1))
	d.mu.Lock()
	run.runner = d.kinds[c.Kind]
	old := d.runs[c.ID]
	d.runs[c.ID] = run
	d.mu.Unlock()
	if old != nil {
		// An earlier attempt here whose lease expired and was recovered
		// before a heartbeat said so: it is stale now.
		d.loseLease(old)
	}
	if run.runner == nil { // claimed a kind we do not run: cannot happen with a correct store
		d.release([]*storedRun{run})
		return
	}
	// A context that names the queue: the attempt is admitted over
	// Capacity, like a task's own submissions.
	own := context.WithValue(context.Background(), queueKey{}, d.q)
	if _, err := d.q.submit(own, t, nil); err != nil {
		d.release([]*storedRun{run})
	}
}

// execute runs a claimed attempt on a worker and records its outcome in the
// store. It returns the attempt's error, for the queue's own accounting.
func (d *durable) execute(ctx context.Context, run *storedRun) (err error) {
	var result []byte
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = &PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
		run.started.Store(true)
		result, err = run.runner.runStored(ctx, run.claim.Args)
	}()
	if run.lost.Load() {
		d.forget(run)
		if err == nil {
			err = ErrLeaseLost
		}
		return err
	}
	q := d.q
	q.mu.Lock()
	stopping := run.t.stopping()
	q.mu.Unlock()
	if stopping == stopClosed && err != nil {
		d.release([]*storedRun{run}) // Close or Shutdown's deadline: hand it back
		return err
	}
	var o Outcome
	switch {
	case err == nil:
		o = Outcome{Status: Succeeded, Result: result}
	case stopping == stopCanceled:
		o = Outcome{Status: Canceled, Error: err.Error()}
	default:
		o = Outcome{Status: Failed, Error: err.Error()}
		if delay, ok := d.retryDelay(run, err); ok {
			o = Outcome{Status: Retrying, Error: err.Error(), RetryIn: delay}
		}
	}
	if d.batch != nil {
		// The completer records it with others; the worker is free now.
		d.mu.Lock()
		d.completions = append(d.completions, pendingCompletion{run, o})
		d.mu.Unlock()
		select {
		case d.completeWake <- struct{}{}:
		default:
		}
		return err
	}
	cctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	cerr := d.store.Complete(cctx, run.claim.Lease, o)
	cancel()
	d.forget(run)
	switch {
	case errors.Is(cerr, ErrLeaseLost):
		d.warnTask("errand: stored task finished after its lease was lost; outcome refused", run, cerr)
	case cerr != nil:
		d.warnTask("errand: recording a stored task's outcome", run, cerr)
	}
	return err
}

// retryDelay consults the kind's retry policy (or Config.Retry's) with the
// stored MaxAttempts. A panic in the policy means no retry.
func (d *durable) retryDelay(run *storedRun, err error) (delay time.Duration, ok bool) {
	p := run.runner.retryPolicy()
	if p == nil {
		p = &d.q.cfg.Retry
	}
	policy := *p
	policy.MaxAttempts = run.claim.MaxAttempts
	defer func() {
		if recover() != nil {
			delay, ok = 0, false
		}
	}()
	return policy.retryDelay(run.claim.Attempt, err)
}

// forget drops a run that is settled.
func (d *durable) forget(run *storedRun) {
	run.settled.Store(true)
	d.mu.Lock()
	if d.runs[run.claim.ID] == run {
		delete(d.runs, run.claim.ID)
	}
	d.mu.Unlock()
}

// release hands runs back to the store without spending their attempt.
func (d *durable) release(runs []*storedRun) {
	leases := make([]Lease, 0, len(runs))
	for _, r := range runs {
		if !r.settled.Load() && !r.lost.Load() {
			leases = append(leases, r.claim.Lease)
		}
		d.forget(r)
	}
	if len(leases) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
	defer cancel()
	if err := d.store.Release(ctx, leases); err != nil && d.log() != nil {
		d.log().Warn("errand: handing stored tasks back", slog.Int("tasks", len(leases)), slog.Any("error", err))
	}
}

// maxCompleteBatch is the most outcomes one CompleteMany records.
const maxCompleteBatch = 1000

// completeLoop records outcomes in batches: whatever finished while the
// previous batch was being written. When the queue stops it records what
// is left and exits; it stops after the workers, so nothing is left behind.
func (d *durable) completeLoop() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			d.flushCompletions()
			return
		case <-d.completeWake:
			d.flushCompletions()
		}
	}
}

// flushCompletions records every pending outcome. If the store fails, the
// outcomes are dropped with a warning: their leases lapse and the tasks
// run again elsewhere (at-least-once).
func (d *durable) flushCompletions() {
	for {
		d.mu.Lock()
		n := min(len(d.completions), maxCompleteBatch)
		batch := slices.Clone(d.completions[:n])
		d.completions = slices.Delete(d.completions, 0, n)
		d.mu.Unlock()
		if n == 0 {
			return
		}
		cs := make([]Completion, n)
		for i, p := range batch {
			cs[i] = Completion{Lease: p.run.claim.Lease, Outcome: p.o}
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeCallTimeout)
		refused, err := d.batch.CompleteMany(ctx, cs)
		cancel()
		if err != nil && d.log() != nil {
			d.log().Warn("errand: recording the outcomes of stored tasks", slog.Int("tasks", n), slog.Any("error", err))
		}
		gone := make(map[Lease]bool, len(refused))
		for _, l := range refused {
			gone[l] = true
		}
		for _, p := range batch {
			if gone[p.run.claim.Lease] {
				d.warnTask("errand: stored task finished after its lease was lost; outcome refused", p.run, ErrLeaseLost)
			}
			d.forget(p.run)
		}
	}
}

func (d *durable) heartbeatLoop() {
	defer d.wg.Done()
	every := d.q.cfg.Lease / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C:
		}
		d.heartbeat()
	}
}

// heartbeat renews the leases of the runs here; a lease reported lost, or
// not renewed for a whole Lease, cancels its attempt.
func (d *durable) heartbeat() {
	d.mu.Lock()
	runs := make([]*storedRun, 0, len(d.runs))
	for _, r := range d.runs {
		runs = append(runs, r)
	}
	d.mu.Unlock()
	if len(runs) == 0 {
		return
	}
	leases := make([]Lease, len(runs))
	for i, r := range runs {
		leases[i] = r.claim.Lease
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.q.cfg.Lease/3)
	lost, err := d.store.Heartbeat(ctx, leases, d.q.cfg.Lease)
	cancel()
	now := time.Now()
	if err != nil {
		d.warn("errand: heartbeat", err)
		// A lease that would expire before the next heartbeat is as good
		// as lost: another process may take the task from then on.
		for _, r := range runs {
			if now.Sub(r.renewed)+d.q.cfg.Lease/3 >= d.q.cfg.Lease {
				d.loseLease(r)
			}
		}
		return
	}
	gone := make(map[Lease]bool, len(lost))
	for _, l := range lost {
		gone[l] = true
	}
	for _, r := range runs {
		if gone[r.claim.Lease] {
			d.loseLease(r)
		} else {
			r.renewed = now
		}
	}
}

// loseLease cancels the attempt of a run whose lease is gone.
func (d *durable) loseLease(r *storedRun) {
	if r.settled.Load() || r.lost.Swap(true) {
		return
	}
	if l := d.log(); l != nil {
		l.Warn("errand: lease lost; canceling the attempt", slog.String("task", r.claim.ID), slog.String("name", r.claim.Kind))
	}
	d.q.cancel(r.t, stopCanceled)
	if !r.started.Load() && Status(r.t.status.Load()).Final() {
		d.forget(r) // canceled while queued here: it will not run
	}
}

func (d *durable) listenLoop() {
	defer d.wg.Done()
	err := d.store.Listen(d.ctx, d.kick, d.notifyDone)
	if err != nil {
		d.warn("errand: the store cannot notify; polling only", err)
	}
}

// notifyDone queues a finished task's id for the housekeeper.
func (d *durable) notifyDone(id string) {
	d.mu.Lock()
	_, watched := d.watch[id]
	if watched {
		d.doneIDs = append(d.doneIDs, id)
	}
	d.mu.Unlock()
	if watched {
		select {
		case d.doneWake <- struct{}{}:
		default:
		}
	}
}

func (d *durable) houseLoop() {
	defer d.wg.Done()
	tick := time.NewTicker(d.q.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.doneWake:
			d.mu.Lock()
			ids := d.doneIDs
			d.doneIDs = nil
			d.mu.Unlock()
			d.resolve(ids)
		case <-tick.C:
			d.keepHouse()
		}
	}
}

// keepHouse is the periodic work: maintenance, schedules, and polling the
// futures of stored tasks.
func (d *durable) keepHouse() {
	ctx, cancel := context.WithTimeout(d.ctx, storeCallTimeout)
	defer cancel()
	if err := d.store.Maintain(ctx); err != nil {
		d.warn("errand: store maintenance", err)
	}
	if n, err := d.store.FireSchedules(ctx, d.nextRun); err != nil {
		d.warn("errand: firing schedules", err)
	} else if n > 0 {
		d.kick()
	}
	d.mu.Lock()
	ids := make([]string, 0, len(d.watch))
	for id := range d.watch {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	d.resolve(ids)
}

// nextRun computes a schedule's next due time from its spec.
func (d *durable) nextRun(spec string, after time.Time) (time.Time, error) {
	d.mu.Lock()
	t := d.sched[spec]
	d.mu.Unlock()
	if t == nil {
		var err error
		if t, err = ParseCron(spec); err != nil {
			return time.Time{}, err
		}
		d.mu.Lock()
		d.sched[spec] = t
		d.mu.Unlock()
	}
	return safeNext(t, after)
}

// resolve looks up the watched tasks among ids and resolves the futures of
// those that are final.
func (d *durable) resolve(ids []string) { d.resolveWith(d.ctx, ids) }

// resolveWith is resolve with the store calls bounded by parent.
func (d *durable) resolveWith(parent context.Context, ids []string) {
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 1000)]
		ids = ids[len(batch):]
		ctx, cancel := context.WithTimeout(parent, storeCallTimeout)
		recs, err := d.store.Lookup(ctx, batch)
		cancel()
		if err != nil {
			d.warn("errand: looking up stored tasks", err)
			return
		}
		for _, rec := range recs {
			if rec.Status.Final() {
				d.settleWatchers(rec)
			}
		}
	}
}

// settleWatchers resolves every future watching rec's task.
func (d *durable) settleWatchers(rec TaskRecord) {
	d.mu.Lock()
	ws := d.watch[rec.ID]
	delete(d.watch, rec.ID)
	d.mu.Unlock()
	for _, w := range ws {
		var err error
		switch rec.Status {
		case Succeeded:
			err = w.decode(rec.Result)
		default:
			err = &StoredError{ID: rec.ID, Kind: rec.Kind, Status: rec.Status, Message: rec.Error}
		}
		st := rec.Status
		if err != nil && st == Succeeded {
			st = Failed
		}
		d.q.settleStored(w.t, st, err, int(rec.Attempts))
	}
}

// stopIntake stops claiming: Shutdown and Close call it first.
func (d *durable) stopIntake() {
	d.stopOnce.Do(func() { close(d.fetchStop) })
}

// stop ends the durable goroutines once the workers are gone: it hands back
// what was claimed and never ran, and resolves the futures still watching
// with ErrClosed.
func (d *durable) stop() {
	d.stopIntake()
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		d.wg.Wait()
		return
	}
	d.stopped = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	// A last look: tasks that finished while the queue drained (Shutdown
	// waits for the running ones) resolve with their outcome.
	d.mu.Lock()
	ids := make([]string, 0, len(d.watch))
	for id := range d.watch {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	d.resolveWith(context.Background(), ids)
	d.mu.Lock()
	var left []*storedRun
	for _, r := range d.runs {
		left = append(left, r)
	}
	watch := d.watch
	d.watch = make(map[string][]*watcher)
	d.mu.Unlock()
	d.release(left)
	for _, ws := range watch {
		for _, w := range ws {
			d.q.settleStored(w.t, Canceled, ErrClosed, -1)
		}
	}
}

// StoredError is the error of a future of a stored task that failed or was
// canceled. Errors cannot be stored, only their text: Message is what the
// last attempt's error said. errors.Is(err, ErrCanceled) holds for a
// canceled task.
type StoredError struct {
	ID      string
	Kind    string
	Status  Status // Failed or Canceled
	Message string
}

// Error returns the stored message.
func (e *StoredError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("errand: stored task %s %s", e.ID, e.Status)
	}
	return e.Message
}

// Is reports ErrCanceled for a canceled task.
func (e *StoredError) Is(target error) bool { return target == ErrCanceled && e.Status == Canceled }
