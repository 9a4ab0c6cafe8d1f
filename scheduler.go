package errand

import "time"

// scheduler holds the tasks that wait for a time: delayed tasks (WithDelay,
// WithRunAt) and tasks backing off before a retry. It is a binary heap by due
// time, drained by one timer goroutine that the queue starts with the first
// such task and stops in Shutdown or Close. A waiting task costs its heap
// entry (24 bytes) and no goroutine or timer of its own.
// Its fields are guarded by Queue.mu.
type scheduler struct {
	heap    []timerEntry
	seq     uint64
	started bool
	wake    chan struct{} // the earliest due time changed
	stop    chan struct{} // closed by beginCloseLocked
	done    chan struct{} // closed when the goroutine has exited
}

type timerEntry struct {
	at  int64 // queue clock, nanoseconds
	seq uint64
	t   *task
}

func (s *scheduler) len() int { return len(s.heap) }

// pushLocked adds t, due at t.at, and makes sure the timer goroutine is
// running and aware of it.
func (s *scheduler) pushLocked(q *Queue, t *task) {
	s.seq++
	s.heap = append(s.heap, timerEntry{at: t.at, seq: s.seq, t: t})
	i := len(s.heap) - 1
	t.heapIdx = int32(i)
	s.up(i)
	if !s.started {
		s.started = true
		s.wake = make(chan struct{}, 1)
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go q.timerLoop()
		return
	}
	if t.heapIdx == 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// removeLocked takes t out of the heap, if it is there.
func (s *scheduler) removeLocked(t *task) {
	i := int(t.heapIdx)
	if i < 0 || i >= len(s.heap) || s.heap[i].t != t {
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
	t.heapIdx = -1
}

// popDueLocked removes and returns the earliest task due at or before now, or
// returns the time until the earliest is due (-1 if none).
func (s *scheduler) popDueLocked(now int64) (*task, time.Duration) {
	if len(s.heap) == 0 {
		return nil, -1
	}
	if e := s.heap[0]; e.at > now {
		return nil, time.Duration(e.at - now)
	}
	t := s.heap[0].t
	s.removeLocked(t)
	return t, 0
}

// drainLocked empties the heap and returns its tasks.
func (s *scheduler) drainLocked() []*task {
	ts := make([]*task, len(s.heap))
	for i, e := range s.heap {
		e.t.heapIdx = -1
		ts[i] = e.t
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
			t, d := s.popDueLocked(q.clock())
			if t == nil {
				wait = d
				break
			}
			t.status.Store(int32(Queued))
			if q.tracking() {
				t.mark = q.clock()
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
	s.heap[i].t.heapIdx = int32(i)
	s.heap[j].t.heapIdx = int32(j)
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
