package errand

import (
	"context"
	"time"
)

// scheduler holds what waits for a time: delayed tasks (WithDelay, WithRunAt),
// tasks backing off before a retry, and recurring schedules. It is a binary
// heap by due time, drained by one timer goroutine that the queue starts with
// the first entry and stops in Shutdown or Close. A waiting task or schedule
// costs its heap entry (48 bytes) beside its own struct, and no goroutine or
// timer of its own; a delayed plain Go task has no struct: the entry is all.
// Its fields are guarded by Queue.mu.
type scheduler struct {
	heap    entries
	seq     uint64
	started bool
	wake    chan struct{} // the earliest due time changed
	stop    chan struct{} // closed by beginCloseLocked
	done    chan struct{} // closed when the goroutine has exited
}

// timerEntry is what comes due at a time: v holds a *task, a *Recurring, or
// for a delayed plain Go task its values (see item), with fn and prio.
type timerEntry struct {
	at   int64 // queue clock, nanoseconds
	seq  uint64
	fn   func(context.Context) error
	v    any
	prio int
}

// setIndex records the entry's place in the heap, for removal by Cancel or
// Stop (plain tasks cannot be canceled and need none).
func (e *timerEntry) setIndex(i int) {
	switch x := e.v.(type) {
	case *task:
		x.heapIdx = int32(i)
	case *Recurring:
		x.heapIdx = int32(i)
	}
}

func (s *scheduler) len() int { return s.heap.n }

// entries is the heap's storage: chunks of 64 entries (3 KiB each), so that
// growing to a million delayed tasks never copies them.
type entries struct {
	chunks []*[chunkLen]timerEntry
	n      int
}

const chunkLen = 64

func (h *entries) at(i int) *timerEntry { return &h.chunks[i/chunkLen][i%chunkLen] }

func (h *entries) push(e timerEntry) int {
	if h.n == len(h.chunks)*chunkLen {
		h.chunks = append(h.chunks, new([chunkLen]timerEntry))
	}
	*h.at(h.n) = e
	h.n++
	return h.n - 1
}

// pop clears and drops the last entry, and frees chunks no longer needed
// (keeping one spare).
func (h *entries) pop() {
	h.n--
	*h.at(h.n) = timerEntry{}
	if keep := h.n/chunkLen + 2; len(h.chunks) > keep {
		clear(h.chunks[keep:])
		h.chunks = h.chunks[:keep]
	}
}

// pushLocked adds t, due at at (queue clock).
func (s *scheduler) pushLocked(q *Queue, t *task, at int64) {
	s.pushEntryLocked(q, timerEntry{at: at, v: t})
}

// pushEntryLocked adds e and makes sure the timer goroutine is running and
// aware of it.
func (s *scheduler) pushEntryLocked(q *Queue, e timerEntry) {
	s.seq++
	e.seq = s.seq
	i := s.heap.push(e)
	s.heap.at(i).setIndex(i)
	s.up(i)
	if !s.started {
		s.started = true
		s.wake = make(chan struct{}, 1)
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go q.timerLoop()
		return
	}
	if s.heap.at(0).seq == e.seq {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// removeLocked takes t out of the heap, if it is there.
func (s *scheduler) removeLocked(t *task) { s.removeEntryLocked(int(t.heapIdx), t) }

// removeEntryLocked takes the entry at index i out of the heap if it holds
// x, a *task or a *Recurring.
func (s *scheduler) removeEntryLocked(i int, x any) {
	if i < 0 || i >= s.heap.n || s.heap.at(i).v != x {
		return
	}
	s.removeAtLocked(i)
}

func (s *scheduler) removeAtLocked(i int) {
	e := *s.heap.at(i)
	n := s.heap.n - 1
	if i != n {
		s.swap(i, n)
	}
	s.heap.pop()
	if i != n {
		s.down(i)
		s.up(i)
	}
	e.setIndex(-1)
}

// popDueLocked removes and returns the earliest entry due at or before now,
// or reports the time until the earliest is due (-1 if none).
func (s *scheduler) popDueLocked(now int64) (timerEntry, time.Duration, bool) {
	if s.heap.n == 0 {
		return timerEntry{}, -1, false
	}
	e := *s.heap.at(0)
	if e.at > now {
		return timerEntry{}, time.Duration(e.at - now), false
	}
	s.removeAtLocked(0)
	return e, 0, true
}

// drainLocked empties the heap and returns its tasks and the number of
// plain tasks in it; schedules are dropped.
func (s *scheduler) drainLocked() (ts []*task, plain int) {
	for i := range s.heap.n {
		e := s.heap.at(i)
		e.setIndex(-1)
		switch x := e.v.(type) {
		case *task:
			ts = append(ts, x)
		case *Recurring:
		default:
			plain++
		}
	}
	s.heap = entries{}
	return ts, plain
}

// timerLoop moves tasks that come due into the queue. It exits when the
// queue begins to close.
func (q *Queue) timerLoop() {
	s := &q.sched
	stop, wake, done := s.stop, s.wake, s.done
	defer close(done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if q.state != stateOpen {
			q.mu.Unlock()
			return
		}
		wait := time.Duration(-1)
		for {
			e, d, ok := s.popDueLocked(q.clock())
			if !ok {
				wait = d
				break
			}
			// Due tasks join the pending queue first, so that tasks due
			// together compete by priority for the workers (kickLocked).
			t, ok := e.v.(*task)
			if !ok {
				if r, ok := e.v.(*Recurring); ok {
					q.fireLocked(r, q.now())
				} else {
					q.queueLocked(item{fn: e.fn, v: e.v}, e.prio)
				}
				continue
			}
			t.status.Store(int32(Queued))
			if q.tracking() {
				t.lazyLocked().mark = q.clock()
			}
			if q.cfg.OnEvent != nil {
				q.emitLocked(Event{Kind: EventQueued}, t)
			}
			q.queueLocked(taskItem(t), t.prio)
		}
		q.kickLocked()
		q.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-timer.C:
		case <-wake:
		case <-stop:
			return
		}
	}
}

func (s *scheduler) less(i, j int) bool {
	a, b := s.heap.at(i), s.heap.at(j)
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (s *scheduler) swap(i, j int) {
	a, b := s.heap.at(i), s.heap.at(j)
	*a, *b = *b, *a
	a.setIndex(i)
	b.setIndex(j)
}

func (s *scheduler) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.swap(i, p)
		i = p
	}
}

func (s *scheduler) down(i int) {
	n := s.heap.n
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.swap(i, m)
		i = m
	}
}
