package errandui

import (
	"time"

	"github.com/errandgo/errand"
)

// listKind names the task lists a tracker keeps.
type listKind uint8

const (
	listNone      listKind = iota
	listQueued             // waiting for a worker
	listRunning            // an attempt is running
	listScheduled          // delayed, or backing off before a retry
	numLists
)

// entry is a tracked task: one that was put in a list that had room. It is
// in exactly one list and in tracker.tasks while tracked, and on the free
// list otherwise.
type entry struct {
	info       errand.TaskInfo
	since      time.Time // when it entered its list
	due        time.Time // listScheduled: when it is due, if known
	err        error     // listScheduled after a failed attempt: that attempt's error
	kind       listKind
	prev, next *entry
}

// list is a doubly linked list of entries, oldest first.
type list struct {
	head, tail *entry
	n          int
}

func (l *list) push(e *entry) {
	e.prev, e.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
	l.n++
}

func (l *list) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	l.n--
}

// failure is a task that failed for good, as the recent-failures list
// shows it. It keeps no reference to the task.
type failure struct {
	id, name, schedule string
	priority, attempt  int
	at                 time.Time
	err                error
	panicked           bool
}

// bucket counts the tasks that finished in one second of Unix time.
type bucket struct {
	sec               int64
	succeeded, failed uint32
}

// tracker is the Dashboard's memory of the queue, fed by events: bounded
// lists of tasks, a ring of recent failures, and a ring of per-second
// completion counts. Every operation is O(1) except the copies a snapshot
// makes, which are O(MaxTasks + History). It is guarded by Dashboard.mu.
type tracker struct {
	max      int
	tasks    map[string]*entry // tracked tasks by id
	lists    [numLists]list
	free     *entry    // released entries, linked by next
	failures []failure // a ring of the last max failures
	fnext    int       // where the next failure goes
	fcount   int       // failures in the ring
	ring     []bucket  // per-second completions, indexed by Unix second mod len
}

func (t *tracker) init(maxTasks, seconds int) {
	t.max = maxTasks
	t.tasks = make(map[string]*entry, 3*maxTasks)
	t.failures = make([]failure, maxTasks)
	t.ring = make([]bucket, seconds)
}

func (t *tracker) observe(e *errand.Event) {
	switch e.Kind {
	case errand.EventSubmitted:
		// A delayed submission says when it is due.
		if e.Due.IsZero() {
			t.place(e, listQueued)
		} else {
			t.place(e, listScheduled)
		}
	case errand.EventQueued:
		t.place(e, listQueued)
	case errand.EventStarted:
		t.place(e, listRunning)
	case errand.EventRetrying:
		t.place(e, listScheduled)
	case errand.EventSucceeded:
		t.drop(e.Task.ID)
		t.count(e.Time, false)
	case errand.EventFailed:
		t.drop(e.Task.ID)
		t.fail(e)
		t.count(e.Time, true)
	case errand.EventCanceled:
		t.drop(e.Task.ID)
	}
}

// place moves the task of e into list k, if k has room; if not, the task is
// no longer tracked.
func (t *tracker) place(e *errand.Event, k listKind) {
	id := e.Task.ID
	if id == "" {
		return
	}
	en := t.tasks[id]
	if en != nil {
		t.lists[en.kind].remove(en)
	}
	l := &t.lists[k]
	if l.n >= t.max {
		if en != nil {
			delete(t.tasks, id)
			t.release(en)
		}
		return
	}
	if en == nil {
		en = t.alloc()
		t.tasks[id] = en
	}
	en.info, en.kind, en.since = e.Task, k, e.Time
	en.due, en.err = e.Due, nil
	if e.Kind == errand.EventRetrying {
		en.err = e.Err
	}
	l.push(en)
}

// drop forgets the task id, if it is tracked.
func (t *tracker) drop(id string) {
	en := t.tasks[id]
	if en == nil {
		return
	}
	t.lists[en.kind].remove(en)
	delete(t.tasks, id)
	t.release(en)
}

func (t *tracker) alloc() *entry {
	en := t.free
	if en == nil {
		return new(entry)
	}
	t.free = en.next
	en.next = nil
	return en
}

func (t *tracker) release(en *entry) {
	*en = entry{next: t.free}
	t.free = en
}

func (t *tracker) fail(e *errand.Event) {
	t.failures[t.fnext] = failure{
		id: e.Task.ID, name: e.Task.Name, schedule: e.Task.Schedule,
		priority: e.Task.Priority, attempt: e.Task.Attempt,
		at: e.Time, err: e.Err, panicked: e.Panicked,
	}
	t.fnext = (t.fnext + 1) % len(t.failures)
	t.fcount = min(t.fcount+1, len(t.failures))
}

// count adds a completion at time at to the throughput ring. A completion
// older than the ring's window is ignored.
func (t *tracker) count(at time.Time, failed bool) {
	s := at.Unix()
	b := &t.ring[t.slot(s)]
	if b.sec != s {
		if b.sec > s {
			return // the slot already holds a later second
		}
		*b = bucket{sec: s}
	}
	if failed {
		b.failed++
	} else {
		b.succeeded++
	}
}

func (t *tracker) slot(sec int64) int {
	n := int64(len(t.ring))
	return int((sec%n + n) % n)
}

// lookup returns the TaskInfo of a tracked task, for its Cancel method.
func (t *tracker) lookup(id string) (errand.TaskInfo, bool) {
	en := t.tasks[id]
	if en == nil {
		return errand.TaskInfo{}, false
	}
	return en.info, true
}
