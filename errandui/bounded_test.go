package errandui

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errandgo/errand"
)

// TestManyWaiting submits a million tasks (200,000 with -short) behind one
// blocked worker and checks that the Dashboard stays bounded: it tracks at
// most MaxTasks tasks per list, its state is a few kilobytes, and building
// it takes no longer than with a handful of tasks.
func TestManyWaiting(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 200_000
	}
	var observed atomic.Int64
	all := make(chan struct{})
	h := newHarness(t, Options{}, errand.Config{Workers: 1, OnEvent: func(e errand.Event) {
		if e.Kind == errand.EventSubmitted && observed.Add(1) == int64(n+1) {
			close(all)
		}
	}})
	if _, err := errand.Submit(context.Background(), h.q, h.blocker, errand.WithName("blocker")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	noop := func(context.Context) error { return nil }
	for i := range n {
		if err := h.q.Go(context.Background(), noop, errand.WithName("bulk")); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	submitted := time.Since(start)
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		t.Fatalf("observed %d of %d submissions", observed.Load(), n+1)
	}
	observedIn := time.Since(start)

	h.d.mu.Lock()
	tracked := len(h.d.tr.tasks)
	h.d.mu.Unlock()
	if tracked > 3*h.d.opts.MaxTasks {
		t.Fatalf("tracking %d tasks, want at most %d", tracked, 3*h.d.opts.MaxTasks)
	}

	// Build the state a few times and keep the fastest: the cost of one
	// refresh, without the noise of a GC cycle.
	var best time.Duration
	var b []byte
	for i := range 5 {
		t0 := time.Now()
		var err error
		b, err = json.Marshal(h.d.snapshot(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); i == 0 || d < best {
			best = d
		}
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if s.Stats.Queued != n || s.Queued.Total != uint64(n) || len(s.Queued.Tasks) != 100 {
		t.Fatalf("queued: stats %d, total %d, %d listed; want %d, %d, 100", s.Stats.Queued, s.Queued.Total, len(s.Queued.Tasks), n, n)
	}
	if len(s.Running.Tasks) != 1 || s.Running.Tasks[0].Name != "blocker" {
		t.Fatalf("running = %+v", s.Running)
	}
	const maxBytes = 64 << 10
	if len(b) > maxBytes {
		t.Fatalf("the state is %d bytes, want at most %d", len(b), maxBytes)
	}
	if best > 50*time.Millisecond {
		t.Fatalf("a snapshot took %v, want well under 50ms", best)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d waiting: submitted in %v, all observed after %v; %d tasks tracked; state %d bytes (%.1f KiB), built and encoded in %v; heap %d MiB",
		n, submitted.Round(time.Millisecond), observedIn.Round(time.Millisecond), tracked, len(b), float64(len(b))/1024, best, ms.HeapAlloc>>20)
}

// BenchmarkObserve is the cost of the Dashboard's part of one task's life:
// Submitted, Started and Succeeded events, the tracked case (lists with room).
func BenchmarkObserve(b *testing.B) {
	d := New(Options{})
	now := time.Now()
	const ring = 64
	var evs [ring][3]errand.Event
	for i := range evs {
		ti := errand.TaskInfo{ID: fmt.Sprintf("%08d-0000-0000-0000-000000000000", i), Name: "email.send"}
		evs[i] = [3]errand.Event{
			{Kind: errand.EventSubmitted, Task: ti, Time: now},
			{Kind: errand.EventStarted, Task: ti, Time: now},
			{Kind: errand.EventSucceeded, Task: ti, Time: now},
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e := &evs[i%ring]
		d.Observe(e[0])
		d.Observe(e[1])
		d.Observe(e[2])
		i++
	}
}

// BenchmarkObserveFull is the untracked case: a million waiting tasks have
// filled the lists, so each new submission is counted out at once.
func BenchmarkObserveFull(b *testing.B) {
	d := New(Options{})
	now := time.Now()
	for i := range d.opts.MaxTasks {
		d.Observe(errand.Event{Kind: errand.EventSubmitted, Task: errand.TaskInfo{ID: fmt.Sprint("fill-", i)}, Time: now})
	}
	e := errand.Event{Kind: errand.EventSubmitted, Task: errand.TaskInfo{ID: "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", Name: "bulk"}, Time: now}
	b.ReportAllocs()
	for b.Loop() {
		d.Observe(e)
	}
}

// BenchmarkSnapshot is the cost of one refresh with full lists: the state
// built and encoded as JSON.
func BenchmarkSnapshot(b *testing.B) {
	d := New(Options{})
	now := time.Now()
	for i := range 3 * d.opts.MaxTasks {
		ti := errand.TaskInfo{ID: fmt.Sprintf("%08d-0000-0000-0000-000000000000", i), Name: "email.send"}
		kind := [3]errand.EventKind{errand.EventSubmitted, errand.EventStarted, errand.EventRetrying}[i%3]
		d.Observe(errand.Event{Kind: kind, Task: ti, Time: now, Err: fmt.Errorf("error %d", i), RetryAt: now.Add(time.Minute), Due: now.Add(time.Minute)})
		d.Observe(errand.Event{Kind: errand.EventFailed, Task: ti, Time: now, Err: fmt.Errorf("failed %d", i)})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(d.snapshot(time.Now())); err != nil {
			b.Fatal(err)
		}
	}
}
