package errand

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
)

// ErrNotFound is returned by Kind.Future for an id the queue does not know:
// never enqueued here, or already finished (the in-memory store keeps no
// finished tasks).
var ErrNotFound = errors.New("errand: no such task")

// Kind is a named kind of task: a function of typed arguments whose
// arguments and result pass through a Codec, so that the task could be
// stored and run by another process. Create one with Define, usually as a
// package-level variable; a Kind is immutable and safe for concurrent use.
//
// Without a Config.Store a kind runs in this process, through the same
// queue as closures, and still makes the codec round trip: arguments are
// encoded at Enqueue and decoded before the function runs, the result is
// encoded and decoded, so a value that cannot be stored fails in tests and
// not in production. With a Store (errandpg), tasks of the kind are stored
// and run by whichever process sharing the store claims them: a process
// runs the kinds in its Config.Kinds and those it enqueues.
//
// A *Kind is a Runner, for Config.Kinds.
type Kind[A, R any] struct {
	name  string
	fn    func(context.Context, A) (R, error)
	opts  []Option
	codec Codec
	err   error        // from Define: returned by Enqueue
	retry *RetryPolicy // the kind's WithRetry, if any (for stored attempts)
}

// Define returns the named kind of task that runs fn. opts are the kind's
// default options (retry policy, timeout, priority ...); Enqueue's options
// come after them. Every task of the kind is named name (WithName). Define
// never panics: a bad name, a nil fn or an invalid option make every Enqueue
// return the error.
func Define[A, R any](name string, fn func(context.Context, A) (R, error), opts ...Option) *Kind[A, R] {
	k := &Kind[A, R]{name: name, fn: fn, opts: slices.Clone(opts), codec: JSONCodec{}}
	var o taskOptions
	switch err := o.parse(opts); {
	case name == "":
		k.err = errors.New("errand: Define: empty kind name")
	case fn == nil:
		k.err = fmt.Errorf("errand: Define(%q): nil function", name)
	case err != nil:
		k.err = fmt.Errorf("errand: Define(%q): %s", name, trimPrefix(err))
	case o.key != "" || o.linked:
		k.err = fmt.Errorf("errand: Define(%q): WithKey and WithLinkedContext are per task, not per kind", name)
	}
	k.retry = o.retry
	return k
}

// Name returns the kind's name.
func (k *Kind[A, R]) Name() string { return k.name }

// WithCodec returns a copy of the kind that encodes with c.
func (k *Kind[A, R]) WithCodec(c Codec) *Kind[A, R] {
	k2 := *k
	k2.opts = slices.Clone(k.opts)
	k2.codec = c
	if c == nil && k2.err == nil {
		k2.err = fmt.Errorf("errand: %s: nil Codec", k.name)
	}
	return &k2
}

// Enqueue submits a task of the kind with args and returns its future, like
// Submit: ctx bounds only the wait for room (or the store's write) and
// passes its values, opts follow the kind's own. It fails at once if args
// cannot be encoded. The future's ID re-attaches to the task with Future.
//
// With Config.Store the task is stored, and any process sharing the store
// that runs the kind may run it (see Store); the future resolves when the
// store reports the task final, in this process or another (by
// notification, or at the latest one Config.PollInterval later). Its Status
// says Queued or Scheduled until then, and its error is a *StoredError.
// WithKey is enforced by the store; WithLinkedContext does not apply (an
// error). Enqueue costs one write to the store.
func (k *Kind[A, R]) Enqueue(ctx context.Context, q *Queue, args A, opts ...Option) (*Future[R], error) {
	if k == nil {
		return nil, errors.New("errand: Enqueue on a nil *Kind")
	}
	if k.err != nil {
		return nil, k.err
	}
	if q == nil {
		return nil, errNilQueue
	}
	if q.dur != nil {
		return enqueueStored(ctx, q, k, args, opts)
	}
	payload, err := k.codec.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("errand: %s: encoding the arguments: %w", k.name, err)
	}
	all := make([]Option, 0, len(k.opts)+len(opts)+1)
	all = append(append(append(all, k.opts...), opts...), WithName(k.name))
	f, err := Submit(ctx, q, func(ctx context.Context) (R, error) { return k.run(ctx, payload) }, all...)
	if err != nil {
		return nil, err
	}
	q.index(&f.t)
	return f, nil
}

// NewTask returns the stored form of a task of the kind with args and opts
// (after the kind's own options), as Enqueue stores it: for a Store's
// transactional enqueue (errandpg.EnqueueTx). A queue's Config.Retry and
// Config.Timeout are not known here: the task gets the retry and timeout of
// the kind and opts only. It fails if args cannot be encoded or an option
// does not apply to a stored task (WithLinkedContext).
func (k *Kind[A, R]) NewTask(args A, opts ...Option) (NewTask, error) {
	if k == nil {
		return NewTask{}, errors.New("errand: NewTask on a nil *Kind")
	}
	return k.newTask(args, opts, nil)
}

// newTask builds the stored form of a task; defaults, if not nil, supplies
// the queue's retry policy and timeout.
func (k *Kind[A, R]) newTask(args A, opts []Option, defaults *Config) (NewTask, error) {
	if k.err != nil {
		return NewTask{}, k.err
	}
	var o taskOptions
	if err := o.parse(k.opts); err != nil {
		return NewTask{}, err
	}
	if err := o.parse(opts); err != nil {
		return NewTask{}, err
	}
	if o.linked {
		return NewTask{}, fmt.Errorf("errand: %s: WithLinkedContext does not apply to a stored task", k.name)
	}
	payload, err := k.codec.Marshal(args)
	if err != nil {
		return NewTask{}, fmt.Errorf("errand: %s: encoding the arguments: %w", k.name, err)
	}
	nt := NewTask{ID: uuid.NewString(), Kind: k.name, Args: payload, Priority: o.priority,
		RunAt: o.runAt, Delay: o.delay, MaxAttempts: 1, Timeout: o.timeout, Key: o.key}
	retry := o.retry
	if retry == nil && defaults != nil {
		retry = &defaults.Retry
	}
	if retry != nil && retry.MaxAttempts > 1 {
		nt.MaxAttempts = retry.MaxAttempts
	}
	if !o.hasTimeout && defaults != nil {
		nt.Timeout = defaults.Timeout
	}
	return nt, nil
}

// runStored runs one attempt of a stored task of the kind: it decodes args,
// calls the function and encodes its result. A codec failure is permanent.
func (k *Kind[A, R]) runStored(ctx context.Context, args []byte) ([]byte, error) {
	var a A
	if err := k.codec.Unmarshal(args, &a); err != nil {
		return nil, Permanent(fmt.Errorf("errand: %s: decoding the arguments: %w", k.name, err))
	}
	r, err := k.fn(ctx, a)
	if err != nil {
		return nil, err
	}
	data, err := k.codec.Marshal(r)
	if err != nil {
		return nil, Permanent(fmt.Errorf("errand: %s: encoding the result: %w", k.name, err))
	}
	return data, nil
}

// retryPolicy returns the kind's own retry policy (WithRetry at Define), or
// nil.
func (k *Kind[A, R]) retryPolicy() *RetryPolicy { return k.retry }

// check reports the error Define recorded, if any.
func (k *Kind[A, R]) check() error {
	if k == nil {
		return errors.New("errand: nil *Kind")
	}
	return k.err
}

// decodeResult decodes an encoded result.
func (k *Kind[A, R]) decodeResult(data []byte) (R, error) {
	var v R
	if err := k.codec.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("errand: %s: decoding the result: %w", k.name, err)
	}
	return v, nil
}

// decodeInto returns a function that decodes a stored result into f.
func (k *Kind[A, R]) decodeInto(f *Future[R]) func([]byte) error {
	return func(data []byte) error {
		v, err := k.decodeResult(data)
		if err == nil {
			f.val = v
		}
		return err
	}
}

// run makes the in-memory round trip of one attempt: runStored, then the
// result decoded as a stored task's future would decode it.
func (k *Kind[A, R]) run(ctx context.Context, payload []byte) (R, error) {
	data, err := k.runStored(ctx, payload)
	if err != nil {
		var zero R
		return zero, err
	}
	out, err := k.decodeResult(data)
	if err != nil {
		return out, Permanent(err)
	}
	return out, nil
}

// Future re-attaches to the task of this kind with the given id (a
// Future's ID). In memory it finds the task while it waits or runs, and
// returns the same future Enqueue returned. With Config.Store it finds the
// stored task from any process, also once it has finished (until the
// store's retention deletes it), and returns a new future of it. It
// returns ErrNotFound for an unknown task, and an error if the task is of
// another kind.
func (k *Kind[A, R]) Future(q *Queue, id string) (*Future[R], error) {
	if k == nil || q == nil {
		return nil, errors.New("errand: Future on a nil *Kind or *Queue")
	}
	if q.dur != nil {
		return attachStored(q, k, id)
	}
	q.mu.Lock()
	t := q.named[id]
	q.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	f, ok := t.impl.(*Future[R])
	if !ok || t.name() != k.name {
		return nil, fmt.Errorf("errand: task %s is a %q, not a %q", id, t.name(), k.name)
	}
	return f, nil
}

// index makes a live task of a named kind findable by its id.
func (q *Queue) index(t *task) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if Status(t.status.Load()).Final() || t.ext.indexed {
		return // finished already, or the same task again (WithKey)
	}
	if q.named == nil {
		q.named = make(map[string]*task)
	}
	q.named[t.idLocked()] = t
	t.ext.indexed = true
}
