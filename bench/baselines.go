package main

import "sync"

// chanPool is the bare baseline: a channel of functions drained by a fixed
// set of goroutines, started up front.
type chanPool struct {
	ch chan func()
	wg sync.WaitGroup
}

func newChanPool(workers, buffer int) *chanPool {
	p := &chanPool{ch: make(chan func(), buffer)}
	for range workers {
		p.wg.Go(func() {
			for fn := range p.ch {
				fn()
			}
		})
	}
	return p
}

func (p *chanPool) submit(fn func()) { p.ch <- fn }

func (p *chanPool) close() {
	close(p.ch)
	p.wg.Wait()
}

// job is a task of the result-channel baseline: a function and the channel
// its result goes to.
type job struct {
	fn  func() int
	res chan int
}

// resultPool is the futures baseline: a channel pool whose jobs carry a
// result channel each (buffered, so a worker never waits for the reader).
type resultPool struct {
	ch chan job
	wg sync.WaitGroup
}

func newResultPool(workers, buffer int) *resultPool {
	p := &resultPool{ch: make(chan job, buffer)}
	for range workers {
		p.wg.Go(func() {
			for j := range p.ch {
				j.res <- j.fn()
			}
		})
	}
	return p
}

// submit queues fn and returns the channel its result will arrive on.
func (p *resultPool) submit(fn func() int) chan int {
	res := make(chan int, 1)
	p.ch <- job{fn: fn, res: res}
	return res
}

func (p *resultPool) close() {
	close(p.ch)
	p.wg.Wait()
}
