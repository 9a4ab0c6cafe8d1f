package errand

import "context"

// item is a task on its way through the queue: 24 bytes. A plain task (Go
// with no options but a priority or delay) is just its function and v, the
// submitter's values (nil for context.Background), with no task struct, and
// waits in a 32-byte slot. Every other task is v holding its *task, and waits
// linked through the task itself (see lane).
type item struct {
	fn func(context.Context) error
	v  any // nil, a context.Context (a plain task's values), or a *task
}

func taskItem(t *task) item { return item{v: t} }

// task returns the item's task, nil for a plain task.
func (it item) task() *task {
	t, _ := it.v.(*task)
	return t
}

// values returns a plain task's submitting values, nil for none.
func (it item) values() context.Context {
	c, _ := it.v.(context.Context)
	return c
}

// pending holds the tasks waiting for a worker, guarded by Queue.mu. Under
// OrderFIFO it is one lane. Under OrderPriority it is one lane per priority
// level that has tasks waiting, and a max-heap of those levels: a push or pop
// costs O(1) within a level, plus O(log L) when a level appears or empties,
// L being the number of distinct priorities waiting.
type pending struct {
	priority bool
	fifo     lane
	levels   map[int]*level
	heap     []*level // non-empty levels, highest priority first
	free     []*level // emptied levels, kept for reuse
	size     int
	seq      uint64 // the order of entry, across plain tasks and task structs
}

type level struct {
	prio int
	l    lane
}

func (p *pending) len() int { return p.size }

func (p *pending) push(it item, prio int) {
	p.size++
	p.seq++
	if !p.priority {
		p.fifo.push(it, p.seq)
		return
	}
	l := p.levels[prio]
	if l == nil {
		if n := len(p.free); n > 0 {
			l, p.free = p.free[n-1], p.free[:n-1]
			l.prio = prio
		} else {
			l = &level{prio: prio}
		}
		if p.levels == nil {
			p.levels = make(map[int]*level)
		}
		p.levels[prio] = l
		p.heap = append(p.heap, l)
		p.up(len(p.heap) - 1)
	}
	l.l.push(it, p.seq)
}

func (p *pending) pop() (item, bool) {
	if p.size == 0 {
		return item{}, false
	}
	p.size--
	if !p.priority {
		return p.fifo.pop(), true
	}
	l := p.heap[0]
	it := l.l.pop()
	if l.l.n == 0 {
		n := len(p.heap) - 1
		p.heap[0] = p.heap[n]
		p.heap[n] = nil
		p.heap = p.heap[:n]
		if n > 0 {
			p.down(0)
		}
		delete(p.levels, l.prio)
		if len(p.free) < 64 {
			l.l.r.shrink()
			p.free = append(p.free, l)
		}
	}
	return it, true
}

// each calls f for every waiting item, in no particular order.
func (p *pending) each(f func(item)) {
	p.fifo.each(f)
	for _, l := range p.heap {
		l.l.each(f)
	}
}

// clear drops every waiting item, unlinking the tasks so that a future
// still held elsewhere keeps no other task alive.
func (p *pending) clear() {
	p.fifo.unlink()
	for _, l := range p.heap {
		l.l.unlink()
	}
	*p = pending{priority: p.priority}
}

func (p *pending) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if p.heap[i].prio <= p.heap[parent].prio {
			return
		}
		p.heap[i], p.heap[parent] = p.heap[parent], p.heap[i]
		i = parent
	}
}

func (p *pending) down(i int) {
	n := len(p.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && p.heap[r].prio > p.heap[l].prio {
			m = r
		}
		if p.heap[m].prio <= p.heap[i].prio {
			return
		}
		p.heap[i], p.heap[m] = p.heap[m], p.heap[i]
		i = m
	}
}

// lane is a FIFO of waiting tasks: plain tasks in a ring of segments, task
// structs in a list linked through the tasks themselves (so a waiting future
// costs no queue memory of its own), merged by their sequence numbers.
type lane struct {
	r          ring
	head, tail *task
	n          int
}

func (l *lane) push(it item, seq uint64) {
	l.n++
	if t := it.task(); t != nil {
		t.seq, t.next = seq, nil
		if l.tail == nil {
			l.head = t
		} else {
			l.tail.next = t
		}
		l.tail = t
		return
	}
	l.r.push(slot{it: it, seq: seq})
}

func (l *lane) pop() item {
	l.n--
	if t := l.head; t != nil && (l.r.size == 0 || t.seq < l.r.peek().seq) {
		l.head, t.next = t.next, nil
		if l.head == nil {
			l.tail = nil
		}
		return taskItem(t)
	}
	return l.r.pop().it
}

func (l *lane) each(f func(item)) {
	l.r.each(func(s slot) { f(s.it) })
	for t := l.head; t != nil; t = t.next {
		f(taskItem(t))
	}
}

func (l *lane) unlink() {
	for t := l.head; t != nil; {
		t, t.next = t.next, nil
	}
	*l = lane{}
}

// slot is a plain task in a ring: 32 bytes.
type slot struct {
	it  item
	seq uint64
}

// ring is a FIFO of slots in a list of fixed-size segments: pushing never
// copies what waits, popping frees a segment as soon as it is drained, and a
// few drained segments are kept for reuse. A waiting plain task costs its
// 32-byte slot and a 127th of a 4 KiB segment: 32.3 bytes.
type ring struct {
	head, tail *segment
	hi, ti     int // next pop in head, next push in tail
	size       int
	spares     []*segment
}

// segmentLen fills a 4096-byte allocation: 127 slots of 32 bytes and a
// pointer.
const segmentLen = 127

// maxSpares bounds the drained segments a ring keeps: 64 KiB.
const maxSpares = 16

type segment struct {
	slots [segmentLen]slot
	next  *segment
}

func (r *ring) push(s slot) {
	if r.tail == nil || r.ti == segmentLen {
		var seg *segment
		if n := len(r.spares); n > 0 {
			seg, r.spares = r.spares[n-1], r.spares[:n-1]
		} else {
			seg = new(segment)
		}
		if r.tail == nil {
			r.head, r.hi = seg, 0
		} else {
			r.tail.next = seg
		}
		r.tail, r.ti = seg, 0
	}
	r.tail.slots[r.ti] = s
	r.ti++
	r.size++
}

func (r *ring) peek() *slot { return &r.head.slots[r.hi] }

func (r *ring) pop() slot {
	h := r.head
	s := h.slots[r.hi]
	h.slots[r.hi] = slot{}
	r.hi++
	r.size--
	if r.size == 0 { // head is tail: keep it, rewound
		r.hi, r.ti = 0, 0
		return s
	}
	if r.hi == segmentLen {
		r.head, r.hi = h.next, 0
		h.next = nil
		if len(r.spares) < maxSpares {
			r.spares = append(r.spares, h)
		}
	}
	return s
}

func (r *ring) each(f func(slot)) {
	i := r.hi
	for seg := r.head; seg != nil; seg = seg.next {
		end := segmentLen
		if seg == r.tail {
			end = r.ti
		}
		for ; i < end; i++ {
			f(seg.slots[i])
		}
		i = 0
	}
}

// shrink drops the memory of an empty ring.
func (r *ring) shrink() {
	if r.size == 0 {
		*r = ring{}
	}
}
