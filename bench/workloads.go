package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/alitto/pond/v2"
	"github.com/errandgo/errand"
)

// workload is one row group of the table.
type workload struct {
	id       string // row label and -workloads name
	group    string // -workloads name covering several ids
	title    string // chart label
	tasks    int    // tasks at -scale=1
	workers  int
	baseline string // the library ratios are taken against
	primary  string // the metric ratios compare: "ns" or an Extra key
	noNs     bool   // ns/task is meaningless here (the time is set by the workload)
	chart    bool   // drawn in bench.svg (ns/task)
	about    string // one line for the notes
	cells    []cell
}

// cell is one library's way of running a workload, or why it cannot.
type cell struct {
	lib string
	na  string
	run func(*env) error
}

func ran(lib string, run func(*env) error) cell { return cell{lib: lib, run: run} }
func na(lib, why string) cell                   { return cell{lib: lib, na: why} }

// The libraries, in table order.
const (
	libErrand     = "errand"
	libChan       = "chan"
	libResultChan = "result-chan"
	libPond       = "pond"
	libAnts       = "ants"
	libWorkerpool = "workerpool"
	libErrgroup   = "errgroup"
	libAfterFunc  = "AfterFunc"
	libErrandFIFO = "errand-fifo"
)

func allLibs() []string {
	return []string{libErrand, libChan, libResultChan, libPond, libAnts, libWorkerpool, libErrgroup, libAfterFunc, libErrandFIFO}
}

// Reasons a peer cannot do a workload.
const (
	naFireBaseline   = "the futures baseline; fire-and-forget is the chan row"
	naFutureBaseline = "no results; the result-chan row is the futures baseline"
	naNoQueueAnts    = "no queue: with every worker busy, Submit blocks the caller (or fails with WithNonblocking), so a backlog is blocked goroutines"
	naNoQueueErrgrp  = "no queue: with SetLimit reached, Go blocks the caller, so a backlog is blocked goroutines"
	naNoDelay        = "no delayed execution"
	naNoPriority     = "no priorities"
)

func workloads() []*workload {
	burst := func(workers int) *workload {
		return &workload{
			id: fmt.Sprintf("burst-%d", workers), group: "burst",
			title: fmt.Sprintf("burst\n%d workers", workers),
			tasks: 1_000_000, workers: workers, baseline: libChan, primary: "ns", chart: true,
			about: fmt.Sprintf("%s: 1,000,000 no-op fire-and-forget tasks on %d workers, timed from the first submit until the last task has run (a WaitGroup done in the task).", fmt.Sprintf("burst-%d", workers), workers),
			cells: []cell{
				ran(libErrand, burstRun(fireErrand)),
				ran(libChan, burstRun(fireChan)),
				na(libResultChan, naFireBaseline),
				ran(libPond, burstRun(firePond)),
				ran(libAnts, burstRun(fireAnts)),
				ran(libWorkerpool, burstRun(fireWorkerpool)),
				ran(libErrgroup, burstRun(fireErrgroup)),
			},
		}
	}
	return []*workload{
		burst(64),
		burst(4),
		{
			id: "futures", group: "futures", title: "futures",
			tasks: 1_000_000, workers: 64, baseline: libResultChan, primary: "ns", chart: true,
			about: "futures: 1,000,000 tasks returning an int on 64 workers: submit all, then await each result in order (the handles live in a slice made beforehand).",
			cells: []cell{
				ran(libErrand, futuresRun(futureErrand)),
				na(libChan, naFutureBaseline),
				ran(libResultChan, futuresRun(futureResultChan)),
				ran(libPond, futuresRun(futurePond)),
				ran(libAnts, futuresRun(futureAnts)),
				ran(libWorkerpool, futuresRun(futureWorkerpool)),
				ran(libErrgroup, futuresRun(futureErrgroup)),
			},
		},
		{
			id: "request", group: "request", title: "request-like",
			tasks: 16_000, workers: 64, baseline: libResultChan, primary: "ns", chart: true,
			about: "request: 64 goroutines each submit one task and await its result, 250 times each (16,000 tasks), on 64 workers; ns/task is wall time / tasks; latency is submit to task start.",
			cells: []cell{
				ran(libErrand, requestRun(requestErrand)),
				na(libChan, naFutureBaseline),
				ran(libResultChan, requestRun(requestResultChan)),
				ran(libPond, requestRun(requestPond)),
				ran(libAnts, requestRun(requestAnts)),
				ran(libWorkerpool, requestRun(requestWorkerpool)),
				ran(libErrgroup, requestRun(requestErrgroup)),
			},
		},
		{
			id: "waiting", group: "waiting", title: "waiting\n1 ms sleeps",
			tasks: 20_000, workers: 200, baseline: libChan, primary: "ns", chart: true,
			about: "waiting: 20,000 tasks that sleep 1 ms on 200 workers; ideal 100 ms; eff = ideal / elapsed (a 1 ms sleep itself overshoots a little, so no pool reaches 100%).",
			cells: []cell{
				ran(libErrand, waitingRun(fireErrand)),
				ran(libChan, waitingRun(fireChan)),
				na(libResultChan, naFireBaseline),
				ran(libPond, waitingRun(firePond)),
				ran(libAnts, waitingRun(fireAnts)),
				ran(libWorkerpool, waitingRun(fireWorkerpool)),
				ran(libErrgroup, waitingRun(fireErrgroup)),
			},
		},
		{
			id: "backlog-go", group: "backlog", title: "backlog\nenqueue",
			tasks: 1_000_000, workers: 64, baseline: libChan, primary: "heapB", chart: true,
			about: "backlog-go: live heap per task with 1,000,000 fire-and-forget tasks (one shared func value) waiting behind 64 workers blocked on a gate (GC + HeapAlloc before building the pool and after enqueueing, so the pool's own structures count); ns/task is the enqueue time.",
			cells: []cell{
				ran(libErrand, backlogFireRun(fireErrand)),
				ran(libChan, backlogFireRun(fireChan)),
				na(libResultChan, naFireBaseline),
				ran(libPond, backlogFireRun(firePond)),
				na(libAnts, naNoQueueAnts),
				ran(libWorkerpool, backlogFireRun(fireWorkerpool)),
				na(libErrgroup, naNoQueueErrgrp),
			},
		},
		{
			id: "backlog-future", group: "backlog", title: "backlog\nfutures",
			tasks: 1_000_000, workers: 64, baseline: libResultChan, primary: "heapB", chart: true,
			about: "backlog-future: the same with a future (or result channel) per task; the caller's slice of handles is not counted; workerpool needs a closure and a channel per task for a result.",
			cells: []cell{
				ran(libErrand, backlogFutureRun(libErrand, futureErrand)),
				na(libChan, naFutureBaseline),
				ran(libResultChan, backlogFutureRun(libResultChan, futureResultChan)),
				ran(libPond, backlogFutureRun(libPond, futurePond)),
				na(libAnts, naNoQueueAnts),
				ran(libWorkerpool, backlogFutureRun(libWorkerpool, futureWorkerpool)),
				na(libErrgroup, naNoQueueErrgrp),
			},
		},
		{
			id: "delay-add", group: "delays", title: "delay\nadd",
			tasks: 1_000_000, workers: 64, baseline: libAfterFunc, primary: "ns", chart: true,
			about: "delay-add: add 1,000,000 tasks due in an hour (errand WithDelay, prebuilt; time.AfterFunc keeping each *Timer in a slice made beforehand, not counted); heap = live heap per pending task. AfterFunc's timers also sit in the runtime's per-P timer heap, a slice the runtime keeps once grown: only the first AfterFunc run pays for it (about 17 B/timer more), so its median leaves it out.",
			cells: []cell{
				ran(libErrand, delayAddErrand),
				ran(libAfterFunc, delayAddAfterFunc),
				na(libPond, naNoDelay), na(libAnts, naNoDelay), na(libWorkerpool, naNoDelay), na(libErrgroup, naNoDelay),
			},
		},
		{
			id: "delay-late", group: "delays", title: "delay\nlateness",
			tasks: 100_000, workers: 64, baseline: libAfterFunc, primary: "p99", noNs: true,
			about: "delay-late: 100,000 tasks due evenly across one second (errand WithRunAt, time.AfterFunc); lateness = start time - due time.",
			cells: []cell{
				ran(libErrand, lateErrand),
				ran(libAfterFunc, lateAfterFunc),
				na(libPond, naNoDelay), na(libAnts, naNoDelay), na(libWorkerpool, naNoDelay), na(libErrgroup, naNoDelay),
			},
		},
		{
			id: "priority", group: "priority", title: "priority\nbacklog",
			tasks: 1_000_000, workers: 64, baseline: libErrandFIFO, primary: "ns", chart: true,
			about: "priority: 1,000,000 fire-and-forget tasks with random priorities (64 levels, prebuilt WithPriority options) queued behind 64 blocked workers, then drained; errand is OrderPriority, errand-fifo the same tasks under OrderFIFO; ns/task = enqueue + drain.",
			cells: []cell{
				ran(libErrand, priorityRun(errand.OrderPriority)),
				ran(libErrandFIFO, priorityRun(errand.OrderFIFO)),
				na(libPond, naNoPriority), na(libAnts, naNoPriority), na(libWorkerpool, naNoPriority), na(libErrgroup, naNoPriority),
			},
		},
	}
}

// selectWorkloads returns the workloads named (by group or id), in suite
// order; all of them for none.
func selectWorkloads(names []string) ([]*workload, error) {
	all := workloads()
	if len(names) == 0 {
		return all, nil
	}
	var out []*workload
	for _, name := range names {
		found := false
		for _, w := range all {
			if w.group == name || w.id == name {
				found = true
			}
		}
		if !found {
			var known []string
			for _, w := range all {
				if !slices.Contains(known, w.group) {
					known = append(known, w.group)
				}
			}
			return nil, fmt.Errorf("unknown workload %q (have %s, or an id such as burst-64)", name, strings.Join(known, ", "))
		}
	}
	for _, w := range all {
		if slices.Contains(names, w.group) || slices.Contains(names, w.id) {
			out = append(out, w)
		}
	}
	return out, nil
}

func burstRun(ctor fireCtor) func(*env) error {
	return func(e *env) error {
		var wg sync.WaitGroup
		p, err := ctor(e.workers, 1024, wg.Done)
		if err != nil {
			return err
		}
		wg.Add(e.n)
		e.begin()
		err = p.loop(e.n)
		if err == nil {
			wg.Wait()
		}
		e.end()
		return errors.Join(err, p.close())
	}
}

func one() int { return 1 }

func futuresRun(ctor futureCtor) func(*env) error {
	return func(e *env) error {
		p, err := ctor(e.workers, 1024, e.n, one)
		if err != nil {
			return err
		}
		e.begin()
		err = p.loop(e.n)
		sum := 0
		if err == nil {
			sum, err = p.await()
		}
		e.end()
		if err == nil && sum != e.n {
			err = fmt.Errorf("the results add up to %d, want %d", sum, e.n)
		}
		return errors.Join(err, p.close())
	}
}

// requestRun: clients goroutines each do per round trips; a task returns the
// time it started, so the client computes submit-to-start latency.
func requestRun(ctor requestCtor) func(*env) error {
	return func(e *env) error {
		clients := min(64, e.n)
		per := e.n / clients
		e.n = clients * per
		t0 := time.Now()
		stamp := func() int { return int(time.Since(t0)) }
		do, closeFn, err := ctor(e.workers, stamp)
		if err != nil {
			return err
		}
		lat := make([]int64, e.n)
		errs := make([]error, clients)
		var wg sync.WaitGroup
		e.begin()
		for c := range clients {
			wg.Go(func() {
				for j := range per {
					submitted := int64(time.Since(t0))
					started, err := do()
					if err != nil {
						errs[c] = err
						return
					}
					lat[c*per+j] = int64(started) - submitted
				}
			})
		}
		wg.Wait()
		e.end()
		if err := errors.Join(append(errs, closeFn())...); err != nil {
			return err
		}
		slices.Sort(lat)
		e.extra["p50"] = float64(percentile(lat, 50))
		e.extra["p99"] = float64(percentile(lat, 99))
		e.extra["tasks/s"] = float64(e.n) / e.elapsed.Seconds()
		return nil
	}
}

func waitingRun(ctor fireCtor) func(*env) error {
	return func(e *env) error {
		var wg sync.WaitGroup
		task := func() {
			time.Sleep(time.Millisecond)
			wg.Done()
		}
		p, err := ctor(e.workers, 1024, task)
		if err != nil {
			return err
		}
		wg.Add(e.n)
		e.begin()
		err = p.loop(e.n)
		if err == nil {
			wg.Wait()
		}
		e.end()
		if err := errors.Join(err, p.close()); err != nil {
			return err
		}
		waves := (e.n + e.workers - 1) / e.workers
		ideal := time.Duration(waves) * time.Millisecond
		e.extra["elapsed"] = float64(e.elapsed)
		e.extra["eff"] = float64(ideal) / float64(e.elapsed)
		return nil
	}
}

// blockWorkers occupies every worker with a task that waits for the gate to
// close, and returns once all of them are running.
func blockWorkers(workers int, submit func(func()) error) (chan struct{}, error) {
	gate := make(chan struct{})
	var started sync.WaitGroup
	for range workers {
		started.Add(1)
		if err := submit(func() { started.Done(); <-gate }); err != nil {
			started.Done()
			close(gate)
			return nil, err
		}
	}
	started.Wait()
	return gate, nil
}

func backlogFireRun(ctor fireCtor) func(*env) error {
	return func(e *env) error {
		var wg sync.WaitGroup
		task := wg.Done // one func value for every task, made before the first reading
		h0 := heapNow()
		p, err := ctor(e.workers, e.n+e.workers, task)
		if err != nil {
			return err
		}
		gate, err := blockWorkers(e.workers, p.one)
		if err != nil {
			return errors.Join(err, p.close())
		}
		wg.Add(e.n)
		e.begin()
		err = p.loop(e.n)
		e.end()
		h1 := heapNow()
		err = errors.Join(err, e.heapPeak())
		close(gate)
		if err == nil {
			wg.Wait()
		}
		e.extra["heapB"] = (float64(h1) - float64(h0)) / float64(e.n)
		return errors.Join(err, p.close())
	}
}

// holderSize is the size of the caller's slice of n handles a futureCtor
// makes, subtracted from the backlog's heap: it is the caller's, not the
// library's.
func holderSize(lib string, n int) float64 {
	switch lib {
	case libPond:
		return float64(n) * float64(unsafe.Sizeof(pond.ResultTask[int](nil)))
	default: // *errand.Future[int], chan int
		return float64(n) * float64(unsafe.Sizeof(uintptr(0)))
	}
}

func backlogFutureRun(lib string, ctor futureCtor) func(*env) error {
	return func(e *env) error {
		var wg sync.WaitGroup
		task := func() int { wg.Done(); return 1 }
		h0 := heapNow()
		p, err := ctor(e.workers, e.n+e.workers, e.n, task)
		if err != nil {
			return err
		}
		gate, err := blockWorkers(e.workers, p.one)
		if err != nil {
			return errors.Join(err, p.close())
		}
		wg.Add(e.n)
		e.begin()
		err = p.loop(e.n)
		e.end()
		h1 := heapNow()
		err = errors.Join(err, e.heapPeak())
		close(gate)
		sum := 0
		if err == nil {
			sum, err = p.await()
			if err == nil && sum != e.n {
				err = fmt.Errorf("the results add up to %d, want %d", sum, e.n)
			}
		}
		e.extra["heapB"] = (float64(h1) - float64(h0) - holderSize(lib, e.n)) / float64(e.n)
		return errors.Join(err, p.close())
	}
}

func noop(context.Context) error { return nil }

func delayAddErrand(e *env) error {
	q, err := errand.New(errand.Config{Workers: e.workers})
	if err != nil {
		return err
	}
	hour := errand.WithDelay(time.Hour)
	h0 := heapNow()
	e.begin()
	for range e.n {
		if err = q.Go(background, noop, hour); err != nil {
			break
		}
	}
	e.end()
	h1 := heapNow()
	err = errors.Join(err, e.heapPeak())
	e.extra["heapB"] = (float64(h1) - float64(h0)) / float64(e.n)
	if st := q.Stats(); err == nil && st.Scheduled != e.n {
		err = fmt.Errorf("Stats().Scheduled = %d, want %d", st.Scheduled, e.n)
	}
	return errors.Join(err, q.Close())
}

func delayAddAfterFunc(e *env) error {
	timers := make([]*time.Timer, e.n) // the caller's, like a slice of futures: not counted
	f := func() {}
	h0 := heapNow()
	e.begin()
	for i := range timers {
		timers[i] = time.AfterFunc(time.Hour, f)
	}
	e.end()
	h1 := heapNow()
	perr := e.heapPeak()
	e.extra["heapB"] = (float64(h1) - float64(h0)) / float64(e.n)
	if perr != nil {
		return perr
	}
	for _, t := range timers {
		if !t.Stop() {
			return errors.New("a timer due in an hour has fired")
		}
	}
	return nil
}

// lateSpread is the span the delay-late tasks are due across, and lateLead
// how far ahead of the first due time adding starts.
const (
	lateSpread = time.Second
	lateLead   = 250 * time.Millisecond
)

// lateRun adds n tasks due across lateSpread with add (in due order) and
// records how late each started.
func lateRun(e *env, add func(due time.Time, f func()) error) error {
	late := make([]int64, e.n)
	var wg sync.WaitGroup
	wg.Add(e.n)
	step := lateSpread / time.Duration(e.n)
	e.begin()
	t0 := time.Now()
	var err error
	for i := range e.n {
		due := lateLead + time.Duration(i)*step
		err = add(t0.Add(due), func() {
			late[i] = int64(time.Since(t0) - due)
			wg.Done()
		})
		if err != nil {
			break
		}
	}
	if err == nil {
		wg.Wait()
	}
	e.end()
	if err != nil {
		return err
	}
	slices.Sort(late)
	e.extra["p50"] = float64(percentile(late, 50))
	e.extra["p99"] = float64(percentile(late, 99))
	e.extra["max"] = float64(late[len(late)-1])
	return nil
}

func lateErrand(e *env) error {
	q, err := errand.New(errand.Config{Workers: e.workers})
	if err != nil {
		return err
	}
	err = lateRun(e, func(due time.Time, f func()) error {
		return q.Go(background, func(context.Context) error { f(); return nil }, errand.WithRunAt(due))
	})
	return errors.Join(err, q.Close())
}

func lateAfterFunc(e *env) error {
	return lateRun(e, func(due time.Time, f func()) error {
		time.AfterFunc(time.Until(due), f)
		return nil
	})
}

// priorityLevels is how many distinct priorities the priority workload uses.
const priorityLevels = 64

func priorityRun(order errand.Order) func(*env) error {
	return func(e *env) error {
		q, err := errand.New(errand.Config{Workers: e.workers, Order: order})
		if err != nil {
			return err
		}
		opts := make([]errand.Option, priorityLevels)
		for p := range opts {
			opts[p] = errand.WithPriority(p)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		levels := make([]uint8, e.n)
		for i := range levels {
			levels[i] = uint8(rng.IntN(priorityLevels))
		}
		var wg sync.WaitGroup
		fn := func(context.Context) error { wg.Done(); return nil }
		gate, err := blockWorkers(e.workers, func(f func()) error {
			return q.Go(background, func(context.Context) error { f(); return nil })
		})
		if err != nil {
			return errors.Join(err, q.Close())
		}
		wg.Add(e.n)
		e.begin()
		for _, l := range levels {
			if err = q.Go(background, fn, opts[l]); err != nil {
				break
			}
		}
		enqueued := time.Since(e.t0)
		close(gate)
		if err == nil {
			wg.Wait()
		}
		e.end()
		e.extra["enqueue"] = float64(enqueued) / float64(e.n)
		e.extra["drain"] = float64(e.elapsed-enqueued) / float64(e.n)
		return errors.Join(err, q.Close())
	}
}

// extraKeys orders and labels the workload-specific metrics in the details
// column; each value is formatted by its kind.
var extraKeys = []struct{ key, label, kind string }{
	{"heapB", "heap", "bytes"},
	{"p50", "p50", "dur"},
	{"p99", "p99", "dur"},
	{"max", "max", "dur"},
	{"tasks/s", "", "rate"},
	{"elapsed", "elapsed", "dur"},
	{"eff", "eff", "pct"},
	{"enqueue", "enqueue", "nsper"},
	{"drain", "drain", "nsper"},
}

// details formats a row's workload-specific metrics.
func details(w *workload, m Metrics) string {
	var parts []string
	for _, k := range extraKeys {
		v, ok := m.Extra[k.key]
		if !ok {
			continue
		}
		var s string
		switch k.kind {
		case "bytes":
			s = fmt.Sprintf("%.1f B/task", v)
		case "dur":
			s = fmtDur(v)
		case "rate":
			s = fmtRate(v) + " tasks/s"
		case "pct":
			s = fmt.Sprintf("%.0f%%", 100*v)
		case "nsper":
			s = fmtNum(v) + " ns/task"
		}
		if k.label != "" {
			s = k.label + " " + s
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func fmtNum(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func fmtDur(ns float64) string {
	switch a := math.Abs(ns); {
	case a >= 1e9:
		return fmt.Sprintf("%.2fs", ns/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.1fms", ns/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1fµs", ns/1e3)
	}
	return fmt.Sprintf("%.0fns", ns)
}

func fmtRate(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.0fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
