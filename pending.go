package errand

import "context"

// item is a task waiting in the queue. A plain fire-and-forget task (Go with
// no options) waits as just its function and context, with no task struct: it
// is materialized when a worker takes it. Every other task waits as t.
type item struct {
	t   *task
	fn  func(context.Context) error
	ctx context.Context
}

// pending holds the tasks waiting for a worker: a ring buffer in submission
// order, or under OrderPriority a binary heap by priority, then sequence.
// It is guarded by Queue.mu.
type pending struct {
	priority bool

	ring       []item // len is a power of two, or 0
	head, size int

	heap []prioItem
	seq  uint64
}

type prioItem struct {
	it   item
	prio int
	seq  uint64
}

func (p *pending) len() int {
	if p.priority {
		return len(p.heap)
	}
	return p.size
}

func (p *pending) push(it item, prio int) {
	if p.priority {
		p.seq++
		p.heap = append(p.heap, prioItem{it: it, prio: prio, seq: p.seq})
		p.up(len(p.heap) - 1)
		return
	}
	if p.size == len(p.ring) {
		p.resize(max(2*len(p.ring), 16))
	}
	p.ring[(p.head+p.size)&(len(p.ring)-1)] = it
	p.size++
}

func (p *pending) pop() (item, bool) {
	if p.priority {
		n := len(p.heap) - 1
		if n < 0 {
			return item{}, false
		}
		it := p.heap[0].it
		p.heap[0] = p.heap[n]
		p.heap[n] = prioItem{}
		p.heap = p.heap[:n]
		if n > 0 {
			p.down(0)
		}
		if n == 0 && cap(p.heap) > 1024 {
			p.heap = nil
		}
		return it, true
	}
	if p.size == 0 {
		return item{}, false
	}
	it := p.ring[p.head]
	p.ring[p.head] = item{}
	p.head = (p.head + 1) & (len(p.ring) - 1)
	p.size--
	if len(p.ring) > 1024 && p.size < len(p.ring)/8 {
		p.resize(len(p.ring) / 4)
	}
	return it, true
}

// each calls f for every waiting item, in no particular order.
func (p *pending) each(f func(item)) {
	for i := range p.heap {
		f(p.heap[i].it)
	}
	for i := 0; i < p.size; i++ {
		f(p.ring[(p.head+i)&(len(p.ring)-1)])
	}
}

func (p *pending) clear() {
	p.ring, p.head, p.size, p.heap = nil, 0, 0, nil
}

func (p *pending) resize(n int) {
	ring := make([]item, n)
	for i := 0; i < p.size; i++ {
		ring[i] = p.ring[(p.head+i)&(len(p.ring)-1)]
	}
	p.ring, p.head = ring, 0
}

func (p *pending) less(i, j int) bool {
	a, b := &p.heap[i], &p.heap[j]
	return a.prio > b.prio || (a.prio == b.prio && a.seq < b.seq)
}

func (p *pending) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !p.less(i, parent) {
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
		if r := l + 1; r < n && p.less(r, l) {
			m = r
		}
		if !p.less(m, i) {
			return
		}
		p.heap[i], p.heap[m] = p.heap[m], p.heap[i]
		i = m
	}
}
