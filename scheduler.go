package errand

import "time"

// scheduler holds what waits for a time: delayed tasks (WithDelay, WithRunAt),
// tasks backing off before a retry, and recurring schedules. It is a binary
// heap by due time, drained by one timer goroutine that the queue starts with
// the first entry and stops in Shutdown or Close. A waiting task or schedule
// costs its heap entry (32 bytes) beside its own struct, and no goroutine or
// timer of its own.
// Its fields are guarded by Queue.mu.
type scheduler struct {
	heap    []timerEntry
	seq     uint64
	started bool
	wake    chan struct{} // the earliest due time changed
	stop    chan struct{} // closed by beginCloseLocked
	done    chan struct{} // closed when the goroutine has exited
}

// timerEntry is a task (t) or a recurring schedule (r) due at a time.
type timerEntry struct {
	at  int64 // queue clock, nanoseconds
	seq uint64
	t   *task
	r   *Recurring
}

func (e *timerEntry) setIndex(i int) {
	if e.t != nil {
		e.t.heapIdx = int32(i)
	} else {
		e.r.heapIdx = int32(i)
	}
}

func (s *scheduler) len() int { return len(s.heap) }

// pushLocked adds t, due at at (queue clock).
func (s *scheduler) pushLocked(q *Queue, t *task, at int64) {
	s.pushEntryLocked(q, timerEntry{at: at, t: t})
}

// pushEntryLocked adds e and makes sure the timer goroutine is running and
// aware of it.
func (s *scheduler) pushEntryLocked(q *Queue, e timerEntry) {
	s.seq++
	e.seq = s.seq
	s.heap = append(s.heap, e)
	i := len(s.heap) - 1
	s.heap[i].setIndex(i)
	s.up(i)
	if !s.started {
		s.started = true
		s.wake = make(chan struct{}, 1)
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go q.timerLoop()
		return
	}
	if s.heap[0].seq == e.seq {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// removeLocked takes t out of the heap, if it is there.
func (s *scheduler) removeLocked(t *task) { s.removeEntryLocked(int(t.heapIdx), t, nil) }

// removeEntryLocked takes the entry at index i out of the heap if it is t's
// or r's.
func (s *scheduler) removeEntryLocked(i int, t *task, r *Recurring) {
	if i < 0 || i >= len(s.heap) || s.heap[i].t != t || s.heap[i].r != r {
		return
	}
	n := len(s.heap) - 1
	if i != n {
		s.swap(i, n)
	}
	s.heap[n] = timerEntry{}
	s.heap = s.heap[:n]
	if i != n {
		s.down(i)
		s.up(i)
	}
	if t != nil {
		t.heapIdx = -1
	} else {
		r.heapIdx = -1
	}
}

// popDueLocked removes and returns the earliest entry due at or before now,
// or reports the time until the earliest is due (-1 if none).
func (s *scheduler) popDueLocked(now int64) (timerEntry, time.Duration, bool) {
	if len(s.heap) == 0 {
		return timerEntry{}, -1, false
	}
	e := s.heap[0]
	if e.at > now {
		return timerEntry{}, time.Duration(e.at - now), false
	}
	s.removeEntryLocked(0, e.t, e.r)
	return e, 0, true
}

// drainLocked empties the heap and returns its tasks; schedules are dropped.
func (s *scheduler) drainLocked() []*task {
	var ts []*task
	for _, e := range s.heap {
		e.setIndex(-1)
		if e.t != nil {
			ts = append(ts, e.t)
		}
	}
	s.heap = nil
	return ts
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
			if e.r != nil {
				q.fireLocked(e.r, q.now())
				continue
			}
			t := e.t
			t.status.Store(int32(Queued))
			if q.tracking() {
				t.lazyLocked().mark = q.clock()
			}
			if q.cfg.OnEvent != nil {
				q.emitLocked(Event{Kind: EventQueued}, t)
			}
			q.dispatchLocked(item{t: t}, t.prio)
		}
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
	a, b := &s.heap[i], &s.heap[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (s *scheduler) swap(i, j int) {
	s.heap[i], s.heap[j] = s.heap[j], s.heap[i]
	s.heap[i].setIndex(i)
	s.heap[j].setIndex(j)
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
	n := len(s.heap)
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
