package errandpg

import (
	"context"
	"errors"
	"fmt"

	"github.com/errandgo/errand"
	"github.com/jackc/pgx/v5"
)

// EnqueueTx stores a task of kind k with args inside the caller's
// transaction tx, and returns its id: the task exists if and only if tx
// commits. Rolled back, nothing runs; committed, any queue whose Store is on
// the same database and schema (New) and that runs k claims it, woken by
// the notification PostgreSQL delivers at commit. Await it after the commit
// with k.Future(q, id) on such a queue.
//
// The task is built by k.NewTask(args, opts...): the kind's options, then
// opts (WithPriority, WithDelay, WithRunAt, WithTimeout, WithRetry,
// WithKey). A queue's Config.Retry and Config.Timeout are not known here, so
// they do not apply: give WithRetry and WithTimeout to Define or here. With
// WithKey, if a task holding the key waits or runs (committed, or inserted
// earlier in tx), nothing is stored and that task's id is returned.
//
// tx must use the schema the store's pool uses (the same search_path).
// EnqueueTx costs one INSERT in tx (plus one SELECT when the key is held);
// a failed statement aborts tx, as any failed statement does. It is safe
// for concurrent use on different transactions; a pgx.Tx itself is not safe
// for concurrent use.
func EnqueueTx[A, R any](ctx context.Context, tx pgx.Tx, k *errand.Kind[A, R], args A, opts ...errand.Option) (id string, err error) {
	if tx == nil {
		return "", errors.New("errandpg: EnqueueTx: nil pgx.Tx")
	}
	if ctx == nil {
		return "", errors.New("errandpg: EnqueueTx: nil context.Context")
	}
	nt, err := k.NewTask(args, opts...)
	if err != nil {
		return "", err
	}
	id, _, err = enqueue(ctx, tx, nt)
	if err != nil {
		return "", fmt.Errorf("errandpg: EnqueueTx %s: %w", nt.Kind, err)
	}
	return id, nil
}
