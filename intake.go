package errand

import (
	"context"
	"sync/atomic"
)

// The intake is how Submit adds a future with no options without taking
// Queue.mu while every worker is busy: the producer claims a slot of a
// bounded lock-free ring (Queue.ring) with one compare-and-swap and
// publishes the item in it, and the workers move what is published into
// pending, oldest first, when they find pending empty (drainIntakeLocked).
// A producer that outruns the workers then contends with them for the lock
// once per ring-full of tasks instead of on every task, and the ring is the
// only memory it shares with them. When the ring is full, or a worker is
// parked or may start (want, below: the lock is needed to hand the task
// over), it takes the locked path, which drains the ring first. Measured (bench/, 2 CPUs): futures through 64 workers went
// from 2.0-2.4x the hand-written result-channel pool to 0.6-1.0x (a lock-free
// stack the workers reversed, tried first, reached 1.1-1.4x).
//
// Plain Go tasks do not use it: through the ring, a burst of them ran no
// faster (64 workers: 130-185 ns per task either way; 4 workers: 100-170
// through the ring, 95-120 without), the producer no longer pacing itself on
// the lock and yielding its P (see yieldDepth).
//
// The rules that keep every task accounted for:
//
//   - Queue.want is true while a producer must take the lock after
//     publishing: a worker is parked, the pool may grow, or the queue is
//     closing (syncWantLocked keeps it current under Queue.mu). A producer
//     publishes, then reads want; a worker about to park sets want, then
//     looks at the ring; sequentially consistent atomics make at least one of
//     them see the other, so nothing waits in the ring while a worker sleeps.
//   - Every push into pending drains the ring first (queueLocked), and so
//     does a pop that finds pending empty, so the order of entry is kept.
//   - Whatever counts or drops waiting tasks (Stats, Close) drains first.
//   - Shutdown and Close set intakeClosed in the ring's tail, with want, in
//     one critical section: a claim after that fails, and the producer's
//     locked path returns ErrClosed. A claim made before it is accepted: the
//     producer publishes it, and if no worker took it, finds want set and
//     hands it on itself (afterIntake): to a worker while the queue
//     drains, or dropped, as Close drops what waits. Until the ring is empty
//     the queue is not drained (intakeEmptyLocked), so Shutdown waits for
//     an item claimed but not yet published.

// intakeSize is the ring's slots: 256 of 32 bytes, 8 KiB per queue.
const intakeSize = 256

// intakeClosed is the bit of intakeRing.tail that refuses claims.
const intakeClosed = 1 << 63

// intakeRing is a bounded multi-producer ring (after Dmitry Vyukov's
// bounded queue) drained by one consumer at a time, under Queue.mu.
type intakeRing struct {
	tail  paddedUint64 // the next position to claim, and intakeClosed
	head  uint64       // the next position to drain, guarded by Queue.mu
	slots [intakeSize]intakeSlot
}

// paddedUint64 keeps the producers' counter on a cache line of its own.
type paddedUint64 struct {
	atomic.Uint64
	_ [56]byte
}

// intakeSlot holds the item claimed for position pos once seq is pos+1; it
// is free for position pos when seq is pos.
type intakeSlot struct {
	seq atomic.Uint64
	it  item
}

func newIntakeRing() *intakeRing {
	r := new(intakeRing)
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// pushIntake puts it in the ring if it has room and the queue takes tasks,
// and reports whether it did; if not, the caller takes the locked path.
func (q *Queue) pushIntake(it item) bool {
	r := q.ring
	pos := r.tail.Load()
	for {
		if pos&intakeClosed != 0 {
			return false
		}
		s := &r.slots[pos%intakeSize]
		switch d := int64(s.seq.Load() - pos); {
		case d == 0:
			if r.tail.CompareAndSwap(pos, pos+1) {
				s.it = it
				s.seq.Store(pos + 1)
				if q.want.Load() {
					q.afterIntake()
				}
				return true
			}
		case d < 0:
			return false // full: the last lap's item is still there
		}
		pos = r.tail.Load()
	}
}

// afterIntake hands on what the ring holds when a producer found want set
// after publishing: no busy worker may be left to find it.
func (q *Queue) afterIntake() {
	q.mu.Lock()
	var dropped []*task
	switch q.state {
	case stateOpen:
		q.kickLocked()
	case stateDraining:
		q.growLocked() // the drain's workers, if none is left
	case stateClosed:
		dropped = q.dropQueuedLocked()
	}
	if q.state != stateOpen && q.workers == 0 {
		q.closeDrainedLocked() // the ring's last claim may have held it back
	}
	q.mu.Unlock()
	q.settleAll(dropped)
}

// submitIntake accepts t, a future with no options, through the intake, and
// reports whether it did.
func (q *Queue) submitIntake(ctx context.Context, t *task) bool {
	if q.want.Load() {
		return false // a worker is parked or may start: the locked path hands it over
	}
	t.q = q
	t.heapIdx = -1
	t.parent = valuesOnly(ctx)
	t.status.Store(int32(Queued))
	return q.pushIntake(taskItem(t))
}

// drainIntakeLocked moves what the ring holds into pending, oldest first, up
// to the first slot claimed but not yet published.
func (q *Queue) drainIntakeLocked() {
	r := q.ring
	if r == nil {
		return
	}
	for {
		s := &r.slots[r.head%intakeSize]
		if s.seq.Load() != r.head+1 {
			return
		}
		it := s.it
		s.it = item{}
		s.seq.Store(r.head + intakeSize) // free for the claim one lap on
		r.head++
		q.stats.Submitted++
		q.pending.push(it, 0) // what the ring takes has no options: priority 0
	}
}

// intakeEmptyLocked reports whether every claim in the ring has been
// drained.
func (q *Queue) intakeEmptyLocked() bool {
	return q.ring == nil || q.ring.tail.Load()&^intakeClosed == q.ring.head
}

// closeIntakeLocked makes every later claim fail.
func (q *Queue) closeIntakeLocked() {
	if q.ring != nil {
		q.ring.tail.Or(intakeClosed)
	}
}

// queueLocked adds it to pending, after the tasks still in the ring.
func (q *Queue) queueLocked(it item, prio int) {
	q.drainIntakeLocked()
	q.pending.push(it, prio)
}

// syncWantLocked updates Queue.want after a change to the parked workers,
// the pool's size or bound, or the queue's state. It writes only on a change,
// so that producers reading it keep their cached copy.
func (q *Queue) syncWantLocked() {
	if q.ring == nil {
		return // no producer reads it
	}
	want := len(q.idle) > 0 || q.workers < q.max || q.state != stateOpen
	if q.want.Load() != want {
		q.want.Store(want)
	}
}
