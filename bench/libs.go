package main

import (
	"context"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/errandgo/errand"
	"github.com/gammazero/workerpool"
	"github.com/panjf2000/ants/v2"
	"golang.org/x/sync/errgroup"
)

// Each library is driven through small adapters built once per run, so the
// per-task loop is a tight loop over the library's own call: the adapter's
// indirect call happens once per batch, not once per task.

// firePool is a fire-and-forget pool prepared to run one task function.
type firePool struct {
	loop  func(n int) error    // submits the prepared task n times
	one   func(f func()) error // submits one other task (the gates that block workers)
	close func() error         // stops the pool and waits for its goroutines
}

// fireCtor builds a fire-and-forget pool of workers running task. backlog is
// how many tasks may have to wait (the bare channel pool's buffer).
type fireCtor func(workers, backlog int, task func()) (*firePool, error)

var background = context.Background()

func fireErrand(workers, _ int, task func()) (*firePool, error) {
	q, err := errand.New(errand.Config{Workers: workers})
	if err != nil {
		return nil, err
	}
	fn := func(context.Context) error { task(); return nil }
	return &firePool{
		loop: func(n int) error {
			for range n {
				if err := q.Go(background, fn); err != nil {
					return err
				}
			}
			return nil
		},
		one:   func(f func()) error { return q.Go(background, func(context.Context) error { f(); return nil }) },
		close: q.Close,
	}, nil
}

func fireChan(workers, backlog int, task func()) (*firePool, error) {
	p := newChanPool(workers, backlog)
	return &firePool{
		loop: func(n int) error {
			for range n {
				p.ch <- task
			}
			return nil
		},
		one:   func(f func()) error { p.submit(f); return nil },
		close: func() error { p.close(); return nil },
	}, nil
}

func firePond(workers, _ int, task func()) (*firePool, error) {
	p := pond.NewPool(workers)
	return &firePool{
		loop: func(n int) error {
			for range n {
				if err := p.Go(task); err != nil {
					return err
				}
			}
			return nil
		},
		one:   p.Go,
		close: func() error { p.StopAndWait(); return nil },
	}, nil
}

func fireAnts(workers, _ int, task func()) (*firePool, error) {
	p, err := ants.NewPool(workers)
	if err != nil {
		return nil, err
	}
	return &firePool{
		loop: func(n int) error {
			for range n {
				if err := p.Submit(task); err != nil {
					return err
				}
			}
			return nil
		},
		one:   p.Submit,
		close: func() error { return p.ReleaseTimeout(10 * time.Second) },
	}, nil
}

func fireWorkerpool(workers, _ int, task func()) (*firePool, error) {
	wp := workerpool.New(workers)
	return &firePool{
		loop: func(n int) error {
			for range n {
				wp.Submit(task)
			}
			return nil
		},
		one:   func(f func()) error { wp.Submit(f); return nil },
		close: func() error { wp.StopWait(); return nil },
	}, nil
}

func fireErrgroup(workers, _ int, task func()) (*firePool, error) {
	g := new(errgroup.Group)
	g.SetLimit(workers)
	fn := func() error { task(); return nil }
	return &firePool{
		loop: func(n int) error {
			for range n {
				g.Go(fn)
			}
			return nil
		},
		one:   func(f func()) error { g.Go(func() error { f(); return nil }); return nil },
		close: g.Wait,
	}, nil
}

// futurePool is a pool prepared to run n tasks of one function returning an
// int, keeping a handle (future, result channel) for each in a slice made
// up front.
type futurePool struct {
	loop  func(n int) error    // submits the prepared task n times, keeping the handles
	await func() (int, error)  // awaits every handle in submission order; the sum of the results
	one   func(f func()) error // submits one other task (a gate)
	close func() error
}

type futureCtor func(workers, backlog, n int, task func() int) (*futurePool, error)

func futureErrand(workers, _, n int, task func() int) (*futurePool, error) {
	q, err := errand.New(errand.Config{Workers: workers})
	if err != nil {
		return nil, err
	}
	fs := make([]*errand.Future[int], n)
	fn := func(context.Context) (int, error) { return task(), nil }
	return &futurePool{
		loop: func(n int) error {
			for i := range n {
				f, err := errand.Submit(background, q, fn)
				if err != nil {
					return err
				}
				fs[i] = f
			}
			return nil
		},
		await: func() (int, error) {
			sum := 0
			for _, f := range fs {
				v, err := f.Await(background)
				if err != nil {
					return sum, err
				}
				sum += v
			}
			return sum, nil
		},
		one:   func(f func()) error { return q.Go(background, func(context.Context) error { f(); return nil }) },
		close: q.Close,
	}, nil
}

func futureResultChan(workers, backlog, n int, task func() int) (*futurePool, error) {
	p := newResultPool(workers, backlog)
	rs := make([]chan int, n)
	return &futurePool{
		loop: func(n int) error {
			for i := range n {
				rs[i] = p.submit(task)
			}
			return nil
		},
		await: func() (int, error) { return sumChans(rs), nil },
		one: func(f func()) error {
			p.ch <- job{fn: func() int { f(); return 0 }, res: make(chan int, 1)}
			return nil
		},
		close: func() error { p.close(); return nil },
	}, nil
}

func futurePond(workers, _, n int, task func() int) (*futurePool, error) {
	p := pond.NewResultPool[int](workers)
	ts := make([]pond.ResultTask[int], n)
	return &futurePool{
		loop: func(n int) error {
			for i := range n {
				ts[i] = p.Submit(task)
			}
			return nil
		},
		await: func() (int, error) {
			sum := 0
			for _, t := range ts {
				v, err := t.Wait()
				if err != nil {
					return sum, err
				}
				sum += v
			}
			return sum, nil
		},
		one:   func(f func()) error { p.Submit(func() int { f(); return 0 }); return nil },
		close: func() error { p.StopAndWait(); return nil },
	}, nil
}

func futureAnts(workers, _, n int, task func() int) (*futurePool, error) {
	p, err := ants.NewPool(workers)
	if err != nil {
		return nil, err
	}
	rs := make([]chan int, n)
	return &futurePool{
		loop: func(n int) error {
			for i := range n {
				ch := make(chan int, 1)
				rs[i] = ch
				if err := p.Submit(func() { ch <- task() }); err != nil {
					return err
				}
			}
			return nil
		},
		await: func() (int, error) { return sumChans(rs), nil },
		one:   p.Submit,
		close: func() error { return p.ReleaseTimeout(10 * time.Second) },
	}, nil
}

func futureWorkerpool(workers, _, n int, task func() int) (*futurePool, error) {
	wp := workerpool.New(workers)
	rs := make([]chan int, n)
	return &futurePool{
		loop: func(n int) error {
			for i := range n {
				ch := make(chan int, 1)
				rs[i] = ch
				wp.Submit(func() { ch <- task() })
			}
			return nil
		},
		await: func() (int, error) { return sumChans(rs), nil },
		one:   func(f func()) error { wp.Submit(f); return nil },
		close: func() error { wp.StopWait(); return nil },
	}, nil
}

func futureErrgroup(workers, _, n int, task func() int) (*futurePool, error) {
	g := new(errgroup.Group)
	g.SetLimit(workers)
	res := make([]int, n)
	return &futurePool{
		loop: func(n int) error {
			for i := range n {
				g.Go(func() error { res[i] = task(); return nil })
			}
			return nil
		},
		await: func() (int, error) {
			if err := g.Wait(); err != nil {
				return 0, err
			}
			sum := 0
			for _, v := range res {
				sum += v
			}
			return sum, nil
		},
		one:   func(f func()) error { g.Go(func() error { f(); return nil }); return nil },
		close: func() error { return nil }, // await's Wait has returned
	}, nil
}

func sumChans(rs []chan int) int {
	sum := 0
	for _, ch := range rs {
		sum += <-ch
	}
	return sum
}

// requestCtor builds a pool of workers and returns do, which submits task
// and waits for its result: one request's round trip. do is called from
// many goroutines at once.
type requestCtor func(workers int, task func() int) (do func() (int, error), close func() error, err error)

func requestErrand(workers int, task func() int) (func() (int, error), func() error, error) {
	q, err := errand.New(errand.Config{Workers: workers})
	if err != nil {
		return nil, nil, err
	}
	fn := func(context.Context) (int, error) { return task(), nil }
	do := func() (int, error) {
		f, err := errand.Submit(background, q, fn)
		if err != nil {
			return 0, err
		}
		return f.Await(background)
	}
	return do, q.Close, nil
}

func requestResultChan(workers int, task func() int) (func() (int, error), func() error, error) {
	p := newResultPool(workers, 1024)
	do := func() (int, error) { return <-p.submit(task), nil }
	return do, func() error { p.close(); return nil }, nil
}

func requestPond(workers int, task func() int) (func() (int, error), func() error, error) {
	p := pond.NewResultPool[int](workers)
	do := func() (int, error) { return p.Submit(task).Wait() }
	return do, func() error { p.StopAndWait(); return nil }, nil
}

func requestAnts(workers int, task func() int) (func() (int, error), func() error, error) {
	p, err := ants.NewPool(workers)
	if err != nil {
		return nil, nil, err
	}
	do := func() (int, error) {
		ch := make(chan int, 1)
		if err := p.Submit(func() { ch <- task() }); err != nil {
			return 0, err
		}
		return <-ch, nil
	}
	return do, func() error { return p.ReleaseTimeout(10 * time.Second) }, nil
}

func requestWorkerpool(workers int, task func() int) (func() (int, error), func() error, error) {
	wp := workerpool.New(workers)
	do := func() (int, error) {
		ch := make(chan int, 1)
		wp.Submit(func() { ch <- task() })
		return <-ch, nil
	}
	return do, func() error { wp.StopWait(); return nil }, nil
}

func requestErrgroup(workers int, task func() int) (func() (int, error), func() error, error) {
	g := new(errgroup.Group)
	g.SetLimit(workers)
	do := func() (int, error) {
		ch := make(chan int, 1)
		g.Go(func() error { ch <- task(); return nil })
		return <-ch, nil
	}
	return do, g.Wait, nil
}
