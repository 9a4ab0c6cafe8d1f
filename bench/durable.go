package main

// `bench durable`: errand's durable mode (errandpg) beside River on the same
// PostgreSQL in the same run.
//
//	cd bench && go run . durable                      # the full run
//	cd bench && go run . durable -jobs=2000 -runs=1   # a quick look
//
// Throughput: N no-op jobs are inserted in bulk first (the enqueue rate is
// measured on its own), then 1, 2 and 4 worker processes (the bench binary
// re-executed, durableWorkerEnv) start together and the clock runs until the
// database says no job is left unfinished. Latency: one worker process, the
// parent inserts one job per millisecond with its insert time and a sequence
// number in the args; the handler records its start time minus that insert
// time (end to end), and its start per sequence number, which the parent
// joins with the time each insert returned (pickup after commit).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// defaultDatabaseURL is the database the benchmark uses without -db or
// TEST_DATABASE_URL.
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// The libraries of the durable benchmark, in table order.
const (
	durErrand    = "errand"
	durRiver     = "river"
	durRiverFast = "river-fast"
)

// durLib is one library's side of the benchmark: the parent's setup,
// inserts and progress queries, and the worker process's workers.
type durLib struct {
	name     string
	settings string // how it is configured, for the report

	// migrate creates the library's tables in schema (pool's search_path).
	migrate     func(ctx context.Context, pool *pgxpool.Pool, schema string) error
	newInserter func(ctx context.Context, pool *pgxpool.Pool, schema string) (durInserter, error)
	pending     string // SQL: whether any job is not finished yet
	succeeded   string // SQL: how many jobs succeeded
	newWorker   func(pool *pgxpool.Pool, spec workerSpec, stats *workerStats) (durWorker, error)
}

// durInserter enqueues jobs from the parent.
type durInserter interface {
	bulk(ctx context.Context, n int) error    // n jobs, as fast as the library can
	one(ctx context.Context, a durArgs) error // one job, now
	close()
}

func durLibNamed(name string) (*durLib, error) {
	switch name {
	case durErrand:
		return errandLib(), nil
	case durRiver:
		return riverLib(durRiver, 0), nil
	case durRiverFast:
		return riverLib(durRiverFast, riverFastCooldown), nil
	}
	return nil, fmt.Errorf("unknown library %q (want %s, %s or %s)", name, durErrand, durRiver, durRiverFast)
}

// DurableConfig is one run of the durable benchmark: the flags.
type DurableConfig struct {
	URL         string        // the database
	Libs        []string      // libraries; empty: all
	Jobs        int           // jobs per throughput run
	Procs       []int         // worker process counts
	Workers     int           // workers per process (errand Workers, River MaxWorkers)
	Conns       int32         // pgxpool MaxConns per process; 0: pgx's default
	Runs        int           // runs per throughput cell; the median is reported
	Rate        int           // latency run: jobs inserted per second
	LatencyFor  time.Duration // latency run: measured insert phase
	Warmup      time.Duration // latency run: inserts before measuring, not recorded
	Poll        time.Duration // how often the parent asks the database whether all jobs finished
	MaxOthers   float64       // before each cell, wait (up to QuietWait) until the machine keeps at most this many cores busy; 0: never wait
	QuietWait   time.Duration // the longest wait for a quiet machine before a cell
	Out         string        // directory for durable.md; "" for none
	Command     string        // the command line, for the report
	Progress    io.Writer     // progress lines; nil for none
	WorkerCmd   func() *exec.Cmd
	LatencyOnly bool // skip the throughput runs
}

// DurableRow is one (library, processes) throughput cell: medians over runs.
type DurableRow struct {
	Lib      string
	Procs    int
	Runs     int
	Err      error
	Enqueue  float64       // jobs/s of the bulk insert
	Rate     float64       // jobs/s end to end
	Elapsed  time.Duration // end to end
	Executed int64         // handler runs, summed over processes (≥ Jobs: at least once)
}

// DurableLatency is one library's pickup latency at a steady insert rate.
type DurableLatency struct {
	Lib           string
	Err           error
	Jobs          int           // measured jobs
	Achieved      float64       // measured inserts per second
	P50, P99, Max time.Duration // end to end: handler start minus insert start

	// The inserts' own round trips (part of the latency above).
	InsertP50, InsertP99 time.Duration

	// Pickup after commit: the handler's start minus the moment the job's
	// insert returned (its commit acknowledged), per job, sign kept: a
	// worker can start a job before the inserting client has read the
	// acknowledgement. Negative counts those below zero.
	AfterP50, AfterP99, AfterMax time.Duration
	Negative                     int
}

// DurableReport is what a durable run produced.
type DurableReport struct {
	Cfg       DurableConfig
	PGVersion string
	Started   time.Time
	Took      time.Duration
	Rows      []*DurableRow
	Latency   []*DurableLatency
	Verdicts  []Verdict
	Settings  []string
	Busy      float64 // the most cores busy just before a cell started (NaN: unknown)
}

// durableMain runs `bench durable [flags]` and returns the exit code.
func durableMain(args []string) int {
	fs := flag.NewFlagSet("bench durable", flag.ContinueOnError)
	var (
		db      = fs.String("db", "", "PostgreSQL URL (default $TEST_DATABASE_URL, else "+defaultDatabaseURL+")")
		libs    = fs.String("libs", "", "comma-separated: errand, river, river-fast (default all)")
		jobs    = fs.Int("jobs", 20000, "jobs per throughput run (e.g. 2000 for a quick run)")
		procs   = fs.String("procs", "1,2,4", "worker process counts")
		workers = fs.Int("workers", 100, "workers per process: errand Workers, River MaxWorkers")
		conns   = fs.Int("conns", 0, "pgxpool MaxConns per process (0: pgx's default, max(4, NumCPU))")
		runs    = fs.Int("runs", 3, "runs per throughput cell; the median is reported")
		rate    = fs.Int("rate", 1000, "latency run: jobs inserted per second")
		latFor  = fs.Duration("latency-for", 5*time.Second, "latency run: measured insert phase")
		warmup  = fs.Duration("warmup", 500*time.Millisecond, "latency run: inserts before measuring")
		poll    = fs.Duration("poll", 10*time.Millisecond, "how often the parent asks whether all jobs finished")
		others  = fs.Float64("max-others", 0.3, "before each cell, wait (up to -quiet-wait) until other processes keep at most this many cores busy; 0: never wait")
		quietW  = fs.Duration("quiet-wait", 2*time.Minute, "the longest wait for a quiet machine before a cell")
		out     = fs.String("out", "results", "directory for durable.md; empty for none")
		latOnly = fs.Bool("latency-only", false, "skip the throughput runs")
		quiet   = fs.Bool("q", false, "no progress lines on stderr")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench durable: unexpected arguments %q\n", fs.Args())
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench durable:", err)
		return 2
	}
	cfg := DurableConfig{
		URL: *db, Libs: splitList(*libs), Jobs: *jobs, Workers: *workers, Conns: int32(*conns),
		Runs: *runs, Rate: *rate, LatencyFor: *latFor, Warmup: *warmup, Poll: *poll, Out: *out,
		MaxOthers: *others, QuietWait: *quietW,
		LatencyOnly: *latOnly,
		Command:     strings.Join(append([]string{"go run . durable"}, args...), " "),
		WorkerCmd:   func() *exec.Cmd { return exec.Command(exe) },
	}
	for _, p := range splitList(*procs) {
		n, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench durable: -procs: %q is not a number\n", p)
			return 2
		}
		cfg.Procs = append(cfg.Procs, n)
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	rep, err := RunDurable(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench durable:", err)
		return 2
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench durable:", err)
		return 1
	}
	if cfg.Out != "" {
		if err := rep.WriteFile(cfg.Out); err != nil {
			fmt.Fprintln(os.Stderr, "bench durable:", err)
			return 1
		}
		fmt.Printf("wrote %s/durable.md\n", cfg.Out)
	}
	if rep.failed() {
		return 1
	}
	return 0
}

func (c *DurableConfig) check() error {
	if c.URL == "" {
		c.URL = os.Getenv("TEST_DATABASE_URL")
	}
	if c.URL == "" {
		c.URL = defaultDatabaseURL
	}
	if len(c.Libs) == 0 {
		c.Libs = []string{durErrand, durRiver, durRiverFast}
	}
	for _, l := range c.Libs {
		if _, err := durLibNamed(l); err != nil {
			return err
		}
	}
	switch {
	case c.Jobs < 1:
		return fmt.Errorf("-jobs is %d, want at least 1", c.Jobs)
	case c.Workers < 1:
		return fmt.Errorf("-workers is %d, want at least 1", c.Workers)
	case c.Conns < 0:
		return fmt.Errorf("-conns is %d, want 0 or more", c.Conns)
	case c.Runs < 1:
		return fmt.Errorf("-runs is %d, want at least 1", c.Runs)
	case c.Rate < 1 || c.Rate > 100000:
		return fmt.Errorf("-rate is %d, want 1 to 100000", c.Rate)
	case c.LatencyFor <= 0 || c.Warmup < 0:
		return fmt.Errorf("-latency-for %v and -warmup %v: want a positive phase and a warm-up of 0 or more", c.LatencyFor, c.Warmup)
	case c.Poll <= 0:
		return fmt.Errorf("-poll is %v, want more than 0", c.Poll)
	case c.WorkerCmd == nil:
		return errors.New("no WorkerCmd")
	}
	if len(c.Procs) == 0 {
		c.Procs = []int{1, 2, 4}
	}
	for _, p := range c.Procs {
		if p < 1 || p > 64 {
			return fmt.Errorf("-procs: %d, want 1 to 64", p)
		}
	}
	return nil
}

// RunDurable runs the durable benchmark. An error means it could not run at
// all (bad flags, no database); a cell that failed carries its error.
func RunDurable(ctx context.Context, cfg DurableConfig) (*DurableReport, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	rep := &DurableReport{Cfg: cfg, Started: time.Now(), Busy: math.NaN()}
	admin, err := newBenchPool(ctx, cfg.URL, "", 4)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", redactURL(cfg.URL), err)
	}
	defer admin.Close()
	if err := admin.QueryRow(ctx, "SHOW server_version").Scan(&rep.PGVersion); err != nil {
		return nil, err
	}
	for _, l := range cfg.Libs {
		lib, _ := durLibNamed(l)
		rep.Settings = append(rep.Settings, fmt.Sprintf("%s: %s", l, lib.settings))
	}
	h := &durHarness{cfg: cfg, admin: admin, tag: randomTag(), rep: rep}

	// Throughput: every run of every cell, the cells interleaved so that a
	// slow phase of the machine hits every library alike.
	if !cfg.LatencyOnly {
		samples := make(map[[2]int][]*DurableRow)
		for r := 1; r <= cfg.Runs; r++ {
			for pi, p := range cfg.Procs {
				for li, l := range cfg.Libs {
					h.progress("throughput %s, %d process(es), run %d/%d: ", l, p, r, cfg.Runs)
					row, err := h.throughput(ctx, l, p)
					if err != nil {
						h.progress("%v\n", err)
						row = &DurableRow{Lib: l, Procs: p, Err: err}
					} else {
						h.progress("enqueue %s/s, %s jobs/s (%v)\n", fmtRate(row.Enqueue), fmtRate(row.Rate), row.Elapsed.Round(time.Millisecond))
					}
					samples[[2]int{pi, li}] = append(samples[[2]int{pi, li}], row)
				}
			}
		}
		for pi, p := range cfg.Procs {
			for li, l := range cfg.Libs {
				rep.Rows = append(rep.Rows, medianRow(l, p, samples[[2]int{pi, li}]))
			}
		}
	}

	for _, l := range cfg.Libs {
		h.progress("latency %s at %d jobs/s for %v: ", l, cfg.Rate, cfg.LatencyFor)
		lat, err := h.latency(ctx, l)
		if err != nil {
			h.progress("%v\n", err)
			lat = &DurableLatency{Lib: l, Err: err}
		} else {
			h.progress("end to end p50 %v, p99 %v; after commit p50 %v, p99 %v\n", lat.P50, lat.P99, lat.AfterP50, lat.AfterP99)
		}
		rep.Latency = append(rep.Latency, lat)
	}
	rep.Took = time.Since(rep.Started)
	rep.Verdicts = rep.verdicts()
	return rep, nil
}

// medianRow is a cell's medians; the first error, if every run failed.
func medianRow(lib string, procs int, rows []*DurableRow) *DurableRow {
	out := &DurableRow{Lib: lib, Procs: procs}
	var enq, rate, el, ex []float64
	for _, r := range rows {
		if r.Err != nil {
			if out.Err == nil {
				out.Err = r.Err
			}
			continue
		}
		out.Runs++
		enq = append(enq, r.Enqueue)
		rate = append(rate, r.Rate)
		el = append(el, float64(r.Elapsed))
		ex = append(ex, float64(r.Executed))
	}
	if out.Runs == 0 {
		return out
	}
	out.Err = nil // a run that failed is reported on progress; the cell has numbers
	out.Enqueue, out.Rate = median(enq), median(rate)
	out.Elapsed, out.Executed = time.Duration(median(el)), int64(median(ex))
	return out
}

// durHarness runs the cells.
type durHarness struct {
	cfg   DurableConfig
	admin *pgxpool.Pool
	tag   string // this run's schemas' infix
	seq   int
	rep   *DurableReport
}

// waitQuiet waits, up to cfg.QuietWait, until the machine (PostgreSQL and
// every other process: nothing of ours runs between cells) keeps at most
// cfg.MaxOthers cores busy over a 300 ms window, and records the load it
// started at. A shared machine makes every number here noisy.
func (h *durHarness) waitQuiet() {
	if h.cfg.MaxOthers <= 0 {
		return
	}
	deadline := time.Now().Add(h.cfg.QuietWait)
	for {
		b0, ok0 := machineBusy()
		t0 := time.Now()
		time.Sleep(300 * time.Millisecond)
		b1, ok1 := machineBusy()
		if !ok0 || !ok1 {
			return // not Linux: cannot tell
		}
		busy := (b1 - b0) / time.Since(t0).Seconds()
		if busy <= h.cfg.MaxOthers || time.Now().After(deadline) {
			if math.IsNaN(h.rep.Busy) || busy > h.rep.Busy {
				h.rep.Busy = busy
			}
			return
		}
	}
}

func (h *durHarness) progress(format string, args ...any) {
	if h.cfg.Progress != nil {
		fmt.Fprintf(h.cfg.Progress, format, args...)
	}
}

// randomTag is 6 hex digits, so that concurrent runs use distinct schemas.
func randomTag() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// env is a fresh schema with the library's tables, a pool on it and an
// inserter; cleanup drops the schema.
type durEnv struct {
	lib    *durLib
	schema string
	pool   *pgxpool.Pool
	ins    durInserter
}

func (h *durHarness) setup(ctx context.Context, name string) (*durEnv, error) {
	lib, err := durLibNamed(name)
	if err != nil {
		return nil, err
	}
	h.waitQuiet()
	h.seq++
	schema := fmt.Sprintf("bench_%s_%s_%d", strings.ReplaceAll(name, "-", "_"), h.tag, h.seq)
	if _, err := h.admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return nil, err
	}
	e := &durEnv{lib: lib, schema: schema}
	// The parent's pool: inserts (errand's in parallel) and progress polls.
	if e.pool, err = newBenchPool(ctx, h.cfg.URL, schema, 16); err != nil {
		h.drop(e)
		return nil, err
	}
	if err := lib.migrate(ctx, e.pool, schema); err != nil {
		h.drop(e)
		return nil, fmt.Errorf("migrating: %w", err)
	}
	if e.ins, err = lib.newInserter(ctx, e.pool, schema); err != nil {
		h.drop(e)
		return nil, err
	}
	return e, nil
}

func (h *durHarness) drop(e *durEnv) {
	if e.ins != nil {
		e.ins.close()
	}
	if e.pool != nil {
		e.pool.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := h.admin.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{e.schema}.Sanitize()+" CASCADE"); err != nil {
		h.progress("(dropping schema %s: %v) ", e.schema, err)
	}
}

func (h *durHarness) spec(e *durEnv, latency bool) workerSpec {
	return workerSpec{Lib: e.lib.name, URL: h.cfg.URL, Schema: e.schema, Workers: h.cfg.Workers, Conns: h.cfg.Conns, Latency: latency}
}

// throughput is one run of one cell.
func (h *durHarness) throughput(ctx context.Context, name string, procs int) (*DurableRow, error) {
	e, err := h.setup(ctx, name)
	if err != nil {
		return nil, err
	}
	defer h.drop(e)
	n := h.cfg.Jobs
	t := time.Now()
	if err := e.ins.bulk(ctx, n); err != nil {
		return nil, fmt.Errorf("enqueueing: %w", err)
	}
	enq := time.Since(t)
	// Fresh statistics for the planner, as a table this size would have
	// after autovacuum; the same for both libraries.
	if _, err := e.pool.Exec(ctx, "ANALYZE"); err != nil {
		return nil, err
	}
	ps, err := h.startProcs(ctx, e, procs, false)
	if err != nil {
		return nil, err
	}
	defer killAll(ps)
	t0 := time.Now()
	for _, p := range ps {
		if err := p.send("go"); err != nil {
			return nil, err
		}
	}
	limit := 2*time.Minute + time.Duration(n)*time.Millisecond
	if err := h.waitFinished(ctx, e, ps, t0.Add(limit)); err != nil {
		return nil, err
	}
	el := time.Since(t0)
	var ran int64
	for _, p := range ps {
		res, err := p.finish()
		if err != nil {
			return nil, err
		}
		ran += res.ran
	}
	var ok int64
	if err := e.pool.QueryRow(ctx, e.lib.succeeded).Scan(&ok); err != nil {
		return nil, err
	}
	if ok != int64(n) || ran < int64(n) {
		return nil, fmt.Errorf("%d jobs succeeded and the handler ran %d times, want %d", ok, ran, n)
	}
	return &DurableRow{Lib: name, Procs: procs, Runs: 1, Enqueue: float64(n) / enq.Seconds(),
		Rate: float64(n) / el.Seconds(), Elapsed: el, Executed: ran}, nil
}

// waitFinished polls the database every cfg.Poll until no job is left
// unfinished, a worker process exits, or deadline.
func (h *durHarness) waitFinished(ctx context.Context, e *durEnv, ps []*durProc, deadline time.Time) error {
	tick := time.NewTicker(h.cfg.Poll)
	defer tick.Stop()
	for {
		var pending bool
		if err := e.pool.QueryRow(ctx, e.lib.pending).Scan(&pending); err != nil {
			return err
		}
		if !pending {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for the jobs to finish")
		}
		for _, p := range ps {
			select {
			case <-p.exited:
				return fmt.Errorf("a worker process exited early: %v%s", p.waitErr, p.stderrTail())
			default:
			}
		}
		<-tick.C
	}
}

// latInserters is how many goroutines insert the latency run's jobs.
const latInserters = 16

// latency is one library's pickup-latency run.
func (h *durHarness) latency(ctx context.Context, name string) (*DurableLatency, error) {
	e, err := h.setup(ctx, name)
	if err != nil {
		return nil, err
	}
	defer h.drop(e)
	ps, err := h.startProcs(ctx, e, 1, true)
	if err != nil {
		return nil, err
	}
	defer killAll(ps)
	p := ps[0]
	if err := p.send("go"); err != nil {
		return nil, err
	}
	if _, err := p.expect("started", time.Minute); err != nil {
		return nil, err
	}
	// The ticker hands the jobs due by now (a steady rate since start,
	// catching up on ticks the runtime skipped) to latInserters goroutines,
	// so that an insert slower than the tick does not lower the rate.
	// Job i (from 0) carries sequence number i+1; returned[i] is when its
	// insert returned, written by the one goroutine that inserted it.
	total := int((h.cfg.Warmup + h.cfg.LatencyFor).Seconds() * float64(h.cfg.Rate))
	warmJobs := int(h.cfg.Warmup.Seconds() * float64(h.cfg.Rate))
	returned := make([]int64, total)
	jobs := make(chan int, h.cfg.Rate)
	type inserted struct {
		err   error
		times []int64 // the measured inserts' round trips
	}
	results := make(chan inserted, latInserters)
	var wg sync.WaitGroup
	for range latInserters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r inserted
			for i := range jobs {
				if r.err != nil {
					continue
				}
				warm := i < warmJobs
				t := time.Now()
				r.err = e.ins.one(ctx, durArgs{T: t.UnixNano(), S: int64(i) + 1, W: warm})
				done := time.Now()
				returned[i] = done.UnixNano()
				if !warm {
					r.times = append(r.times, int64(done.Sub(t)))
				}
			}
			results <- r
		}()
	}
	tick := time.NewTicker(time.Second / time.Duration(h.cfg.Rate))
	start := time.Now()
	measureFrom := start.Add(h.cfg.Warmup)
	measured, sent := 0, 0
	for now := range tick.C {
		due := min(total, int(now.Sub(start).Seconds()*float64(h.cfg.Rate)))
		for ; sent < due; sent++ {
			jobs <- sent
			if sent >= warmJobs {
				measured++
			}
		}
		if sent == total {
			break
		}
	}
	took := time.Since(measureFrom)
	tick.Stop()
	close(jobs)
	wg.Wait()
	var ins []int64
	for range latInserters {
		r := <-results
		if r.err != nil {
			return nil, fmt.Errorf("inserting: %w", r.err)
		}
		ins = append(ins, r.times...)
	}
	slices.Sort(ins)
	if err := h.waitFinished(ctx, e, ps, time.Now().Add(time.Minute)); err != nil {
		return nil, err
	}
	res, err := p.finish()
	if err != nil {
		return nil, err
	}
	if len(res.lats) < measured || measured == 0 {
		return nil, fmt.Errorf("%d latencies for %d measured jobs", len(res.lats), measured)
	}
	after, neg, err := joinStarts(res.starts, returned, warmJobs)
	if err != nil {
		return nil, err
	}
	slices.Sort(res.lats)
	return &DurableLatency{Lib: name, Jobs: measured, Achieved: float64(measured) / took.Seconds(),
		P50: time.Duration(percentile(res.lats, 50)), P99: time.Duration(percentile(res.lats, 99)),
		Max:       time.Duration(res.lats[len(res.lats)-1]),
		InsertP50: time.Duration(percentile(ins, 50)), InsertP99: time.Duration(percentile(ins, 99)),
		AfterP50: time.Duration(percentile(after, 50)), AfterP99: time.Duration(percentile(after, 99)),
		AfterMax: time.Duration(after[len(after)-1]), Negative: neg}, nil
}

// joinStarts joins the handler starts a worker reported with the times the
// parent's inserts returned (returned[seq-1], UnixNano): pickup after
// commit, one per measured job (sequence numbers above warm), sorted, sign
// kept, and how many are negative. A job the handler ran more than once
// (at least once) counts its first start. Every measured job must have
// started.
func joinStarts(starts []jobStart, returned []int64, warm int) (after []int64, negative int, err error) {
	first := make([]int64, len(returned))
	for _, s := range starts {
		i := s.seq - 1
		if i < 0 || i >= int64(len(returned)) {
			return nil, 0, fmt.Errorf("a worker reported a start for job %d of %d", s.seq, len(returned))
		}
		if first[i] == 0 || s.at < first[i] {
			first[i] = s.at
		}
	}
	if warm >= len(returned) {
		return nil, 0, errors.New("no measured jobs")
	}
	after = make([]int64, 0, len(returned)-warm)
	for i := warm; i < len(returned); i++ {
		if first[i] == 0 {
			return nil, 0, fmt.Errorf("no handler start reported for job %d", i+1)
		}
		d := first[i] - returned[i]
		if d < 0 {
			negative++
		}
		after = append(after, d)
	}
	slices.Sort(after)
	return after, negative, nil
}

// durProc is a worker process.
type durProc struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string   // its stdout, line by line; closed at EOF
	exited  chan struct{} // closed once it exited (waitErr set)
	waitErr error
	stderr  bytes.Buffer // read only after exited
}

// startProcs starts n worker processes and waits until each is ready.
func (h *durHarness) startProcs(ctx context.Context, e *durEnv, n int, latency bool) ([]*durProc, error) {
	spec, err := json.Marshal(h.spec(e, latency))
	if err != nil {
		return nil, err
	}
	var ps []*durProc
	for range n {
		p, err := startProc(h.cfg.WorkerCmd(), string(spec))
		if err != nil {
			killAll(ps)
			return nil, err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if _, err := p.expect("ready", time.Minute); err != nil {
			killAll(ps)
			return nil, err
		}
	}
	return ps, nil
}

func startProc(cmd *exec.Cmd, spec string) (*durProc, error) {
	p := &durProc{cmd: cmd, lines: make(chan string, 64), exited: make(chan struct{})}
	cmd.Env = append(os.Environ(), durableWorkerEnv+"="+spec)
	cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a worker process: %w", err)
	}
	// One goroutine reads stdout to EOF, then reaps the process: it ends
	// when the process does, and exited says so.
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
		close(p.lines)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *durProc) send(line string) error {
	_, err := io.WriteString(p.stdin, line+"\n")
	return err
}

// expect reads lines until one starts with prefix; other lines (a test
// binary's own output) are skipped.
func (p *durProc) expect(prefix string, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.exited
				return "", fmt.Errorf("worker process exited before %q: %v%s", prefix, p.waitErr, p.stderrTail())
			}
			if strings.HasPrefix(line, prefix) {
				return line, nil
			}
		case <-t.C:
			return "", fmt.Errorf("no %q from a worker process within %v", prefix, timeout)
		}
	}
}

// procResult is what a worker process reported at the end.
type procResult struct {
	ran    int64
	lats   []int64
	starts []jobStart
}

// finish closes the process's stdin (stop gracefully), reads its results
// and waits for it to exit.
func (p *durProc) finish() (procResult, error) {
	var res procResult
	_ = p.stdin.Close()
	t := time.NewTimer(2 * time.Minute)
	defer t.Stop()
	done := false
	for !done {
		select {
		case line, ok := <-p.lines:
			switch {
			case !ok:
				done = true
			case strings.HasPrefix(line, "ran "):
				v, err := strconv.ParseInt(strings.TrimPrefix(line, "ran "), 10, 64)
				if err != nil {
					return res, fmt.Errorf("bad line %q", line)
				}
				res.ran = v
			case strings.HasPrefix(line, "lat"):
				l, err := parseLats(line)
				if err != nil {
					return res, err
				}
				res.lats = append(res.lats, l...)
			case strings.HasPrefix(line, "start "):
				s, err := parseStarts(line)
				if err != nil {
					return res, err
				}
				res.starts = append(res.starts, s...)
			}
		case <-t.C:
			return res, errors.New("a worker process did not stop within 2 minutes")
		}
	}
	<-p.exited
	if p.waitErr != nil {
		return res, fmt.Errorf("worker process: %v%s", p.waitErr, p.stderrTail())
	}
	return res, nil
}

// stderrTail is the end of the process's stderr, once it exited.
func (p *durProc) stderrTail() string {
	select {
	case <-p.exited:
	default:
		return ""
	}
	s := strings.TrimSpace(p.stderr.String())
	if s == "" {
		return ""
	}
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return "; stderr: " + s
}

// killAll kills the processes still running and reaps them.
func killAll(ps []*durProc) {
	for _, p := range ps {
		select {
		case <-p.exited:
			continue
		default:
		}
		_ = p.cmd.Process.Kill()
		_ = p.stdin.Close()
		for range p.lines { // drain, so the reader reaches Wait
		}
		<-p.exited
	}
}

// redactURL drops a password from a database URL for messages.
func redactURL(u string) string {
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		return "the database URL"
	}
	return fmt.Sprintf("%s@%s:%d/%s", cfg.User, cfg.Host, cfg.Port, cfg.Database)
}
