package errand

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func noop(context.Context) error          { return nil }
func answer(context.Context) (int, error) { return 42, nil }
func benchQueue(b *testing.B, cfg Config) *Queue {
	b.Helper()
	q, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return q
}

// BenchmarkGo measures fire-and-forget: submit b.N no-op tasks, wait for all.
func BenchmarkGo(b *testing.B) {
	b.Run("workers=4", func(b *testing.B) { benchGo(b, Config{Workers: 4}) })
	b.Run("workers=64", func(b *testing.B) { benchGo(b, Config{Workers: 64}) })
}

// BenchmarkGoBounded is BenchmarkGo with Capacity 1024: the producer blocks
// when the queue is full, as it would on a buffered channel.
func BenchmarkGoBounded(b *testing.B) { benchGo(b, Config{Workers: 64, Capacity: 1024}) }

func benchGo(b *testing.B, cfg Config) {
	q := benchQueue(b, cfg)
	ctx := context.Background()
	var wg sync.WaitGroup
	fn := func(context.Context) error { wg.Done(); return nil }
	b.ReportAllocs()
	b.ResetTimer()
	wg.Add(b.N)
	for range b.N {
		if err := q.Go(ctx, fn); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	q.Close()
}

// BenchmarkSubmit measures futures: submit b.N tasks returning an int, then
// await every result.
func BenchmarkSubmit(b *testing.B) {
	q := benchQueue(b, Config{Workers: 64})
	ctx := context.Background()
	fs := make([]*Future[int], 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f, err := Submit(ctx, q, answer)
		if err != nil {
			b.Fatal(err)
		}
		fs = append(fs, f)
	}
	for _, f := range fs {
		if v, err := f.Await(ctx); err != nil || v != 42 {
			b.Fatal(v, err)
		}
	}
	b.StopTimer()
	q.Close()
}

// BenchmarkAwait measures a request-like round trip: parallel goroutines
// each submit a task and await its result.
func BenchmarkAwait(b *testing.B) {
	q := benchQueue(b, Config{Workers: 64})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f, err := Submit(ctx, q, answer)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Await(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	q.Close()
}

// BenchmarkPriority measures OrderPriority against OrderFIFO with random
// priorities, the backlog built behind one busy worker.
func BenchmarkPriority(b *testing.B) {
	for _, order := range []Order{OrderFIFO, OrderPriority} {
		name := map[Order]string{OrderFIFO: "fifo", OrderPriority: "priority"}[order]
		b.Run(name, func(b *testing.B) {
			q := benchQueue(b, Config{Workers: 4, Order: order})
			ctx := context.Background()
			r := rand.New(rand.NewPCG(1, 2))
			prios := make([]Option, 64)
			for i := range prios {
				prios[i] = WithPriority(r.IntN(1000))
			}
			var wg sync.WaitGroup
			fn := func(context.Context) error { wg.Done(); return nil }
			b.ReportAllocs()
			b.ResetTimer()
			wg.Add(b.N)
			for i := range b.N {
				if err := q.Go(ctx, fn, prios[i%len(prios)]); err != nil {
					b.Fatal(err)
				}
			}
			wg.Wait()
			b.StopTimer()
			q.Close()
		})
	}
}

// BenchmarkDelay measures adding tasks delayed by an hour: the cost to add
// one and, reported as B/task, the memory each holds while it waits.
func BenchmarkDelay(b *testing.B) {
	q := benchQueue(b, Config{})
	ctx := context.Background()
	delay := WithDelay(time.Hour)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := q.Go(ctx, noop, delay); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	q.Close()
}

// BenchmarkBaselineChan is the yardstick for BenchmarkGoBounded: 64
// goroutines draining a buffered chan func() of 1024.
func BenchmarkBaselineChan(b *testing.B) {
	ch := make(chan func(), 1024)
	var wg, pool sync.WaitGroup
	for range 64 {
		pool.Go(func() {
			for f := range ch {
				f()
			}
		})
	}
	fn := func() { wg.Done() }
	b.ReportAllocs()
	b.ResetTimer()
	wg.Add(b.N)
	for range b.N {
		ch <- fn
	}
	wg.Wait()
	b.StopTimer()
	close(ch)
	pool.Wait()
}
