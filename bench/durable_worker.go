package main

// The worker side of the durable benchmark: the bench binary re-executed
// with durableWorkerEnv set runs one library's workers against a schema until
// its parent closes its stdin. It talks to the parent by lines:
//
//	worker → parent  "ready"      connected to the database, client built
//	parent → worker  "go"         start working
//	worker → parent  "started"    the client/queue is running
//	parent → worker  EOF          stop gracefully (finish what was claimed)
//	worker → parent  "ran N"      how many times the handler ran
//	worker → parent  "lat a b …"  pickup latencies in ns (latency runs only)
//	worker → parent  "start s:t …" each measured job's sequence number and
//	                              its handler's start (UnixNano; latency runs only)
//	worker → parent  "done"

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// durableWorkerEnv is the environment variable that turns the bench binary
// (or its test binary) into a durable worker process; its value is a JSON
// workerSpec.
const durableWorkerEnv = "ERRAND_BENCH_DURABLE_WORKER"

// workerSpec is what a worker process runs: one library, one schema.
type workerSpec struct {
	Lib     string `json:"lib"`
	URL     string `json:"url"`
	Schema  string `json:"schema"`
	Workers int    `json:"workers"` // errand Workers / River MaxWorkers
	Conns   int32  `json:"conns"`   // pgxpool MaxConns; 0: pgx's default
	Latency bool   `json:"latency"` // record pickup latencies
}

// durArgs are the no-op job's arguments, the same JSON for both libraries:
// T is the parent's clock (UnixNano) just before the insert, S the job's
// sequence number in a latency run (from 1; 0 in throughput runs), W marks
// warm-up jobs whose latency is not recorded.
type durArgs struct {
	T int64 `json:"t"`
	S int64 `json:"s,omitempty"`
	W bool  `json:"w,omitempty"`
}

// Kind is River's job kind for durArgs.
func (durArgs) Kind() string { return durKind }

// durKind names the no-op job in both libraries.
const durKind = "bench_noop"

// workerStats counts the handler's runs and keeps the latencies.
type workerStats struct {
	ran     atomic.Int64
	latency bool
	mu      sync.Mutex
	lats    []int64
	starts  []jobStart
}

// jobStart is one handler run of a measured job: its sequence number and
// the handler's start (UnixNano), for the parent to join with the time its
// insert returned.
type jobStart struct{ seq, at int64 }

// handle is the no-op handler's body: count, and record the pickup latency
// (handler start minus insert time) and the start of a measured job.
func (s *workerStats) handle(a durArgs) {
	now := time.Now().UnixNano()
	s.ran.Add(1)
	if s.latency && !a.W {
		s.mu.Lock()
		s.lats = append(s.lats, now-a.T)
		s.starts = append(s.starts, jobStart{seq: a.S, at: now})
		s.mu.Unlock()
	}
}

// durWorker is one library's running workers in a worker process.
type durWorker interface {
	start(ctx context.Context) error
	stop(ctx context.Context) error
}

// durableWorkerMain is the worker process's main: it returns the exit code.
func durableWorkerMain(specJSON string) int {
	var spec workerSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "bench durable worker: bad %s: %v\n", durableWorkerEnv, err)
		return 2
	}
	if err := runDurableWorker(context.Background(), spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench durable worker:", err)
		return 1
	}
	return 0
}

// newBenchPool opens a pool whose connections use schema as their
// search_path; conns > 0 sets MaxConns.
func newBenchPool(ctx context.Context, url, schema string, conns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = schema
	}
	if conns > 0 {
		cfg.MaxConns = conns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

func runDurableWorker(ctx context.Context, spec workerSpec, in io.Reader, out io.Writer) error {
	lib, err := durLibNamed(spec.Lib)
	if err != nil {
		return err
	}
	pool, err := newBenchPool(ctx, spec.URL, spec.Schema, spec.Conns)
	if err != nil {
		return err
	}
	defer pool.Close()
	stats := &workerStats{latency: spec.Latency}
	w, err := lib.newWorker(pool, spec, stats)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ready")
	sc := bufio.NewScanner(in)
	if !sc.Scan() || sc.Text() != "go" {
		return errors.New("the parent went away before saying go")
	}
	if err := w.start(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "started")
	for sc.Scan() { // until EOF: the parent closed our stdin
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := w.stop(sctx); err != nil {
		return fmt.Errorf("stopping: %w", err)
	}
	bw := bufio.NewWriter(out)
	fmt.Fprintf(bw, "ran %d\n", stats.ran.Load())
	stats.mu.Lock()
	lats, starts := stats.lats, stats.starts
	stats.mu.Unlock()
	for len(lats) > 0 {
		chunk := lats[:min(len(lats), 1000)]
		lats = lats[len(chunk):]
		bw.WriteString("lat")
		for _, v := range chunk {
			bw.WriteByte(' ')
			bw.WriteString(strconv.FormatInt(v, 10))
		}
		bw.WriteByte('\n')
	}
	for len(starts) > 0 {
		chunk := starts[:min(len(starts), 1000)]
		starts = starts[len(chunk):]
		bw.WriteString("start")
		for _, v := range chunk {
			fmt.Fprintf(bw, " %d:%d", v.seq, v.at)
		}
		bw.WriteByte('\n')
	}
	fmt.Fprintln(bw, "done")
	return bw.Flush()
}

// parseLats reads a "lat a b …" line's numbers.
func parseLats(line string) ([]int64, error) {
	f := strings.Fields(strings.TrimPrefix(line, "lat"))
	out := make([]int64, 0, len(f))
	for _, s := range f {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad latency line: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// parseStarts reads a "start s:t …" line's pairs.
func parseStarts(line string) ([]jobStart, error) {
	f := strings.Fields(strings.TrimPrefix(line, "start"))
	out := make([]jobStart, 0, len(f))
	for _, p := range f {
		a, b, ok := strings.Cut(p, ":")
		seq, err1 := strconv.ParseInt(a, 10, 64)
		at, err2 := strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad start line: %q", p)
		}
		out = append(out, jobStart{seq: seq, at: at})
	}
	return out, nil
}
