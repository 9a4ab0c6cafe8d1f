package errandpg

// Crash tests: worker processes built from this test binary (the helper
// process pattern: the test re-executes itself with -test.run naming
// TestWorkerProcess and an environment variable saying what to be) share a
// schema's tasks while the test kills them.
//
//   - TestCrashKill: 10,000 tasks, 4 worker processes; every 100-400 ms one
//     is killed with SIGKILL and a new one started. Every task must succeed
//     exactly once in the store, none is lost, the result stored is the one
//     of the attempt the store counts last (no stale overwrite), and the
//     duplicate runs (at-least-once) are counted and reported.
//   - TestCrashLeaseLoss: a process is paused with SIGSTOP while it runs a
//     task, past its lease; another process takes the task over and
//     finishes it; when the first resumes, its late outcome is refused and
//     the stored result stays the second's.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/errandgo/errand"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Environment of a worker process.
const (
	envWorker = "ERRANDPG_TEST_WORKER" // "crash" or "lease"
	envURL    = "ERRANDPG_TEST_URL"    // the database
	envSchema = "ERRANDPG_TEST_SCHEMA" // its schema
)

// crashArgs and crashResult are the crash tests' task: the result names
// the attempt and process that produced it.
type crashArgs struct {
	N     int  `json:"n"`
	Block bool `json:"block,omitempty"` // the lease test: run until told otherwise
}

type crashResult struct {
	Double  int `json:"double"`
	Attempt int `json:"attempt"`
	PID     int `json:"pid"`
}

// runsTable records every attempt that started, by any process.
const runsTable = `CREATE TABLE crash_runs (
	task_id text NOT NULL, attempt int NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT now())`

// crashKind is the task the worker processes run.
func crashKind(pool *pgxpool.Pool) *errand.Kind[crashArgs, crashResult] {
	return errand.Define("crash.task", func(ctx context.Context, a crashArgs) (crashResult, error) {
		ti, _ := errand.TaskFromContext(ctx)
		if _, err := pool.Exec(ctx, `INSERT INTO crash_runs (task_id, attempt, pid) VALUES ($1, $2, $3)`,
			ti.ID, ti.Attempt, os.Getpid()); err != nil {
			return crashResult{}, err
		}
		if a.Block {
			// The lease test: hold the task well past the lease. The
			// test pauses this process meanwhile; a heartbeat that finds
			// the lease gone cancels ctx, or the late outcome is refused.
			select {
			case <-ctx.Done():
				return crashResult{}, ctx.Err()
			case <-time.After(4 * time.Second):
			}
		} else {
			// Simulated work: up to 5 ms, so kills land mid-task.
			time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
		}
		return crashResult{Double: 2 * a.N, Attempt: ti.Attempt, PID: os.Getpid()}, nil
	})
}

// TestWorkerProcess is not a test: it is the body of the worker processes
// the crash tests start. Run directly, without the environment variable,
// it returns at once.
func TestWorkerProcess(t *testing.T) {
	mode := os.Getenv(envWorker)
	if mode == "" {
		return
	}
	cfg, err := pgxpool.ParseConfig(os.Getenv(envURL))
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = os.Getenv(envSchema)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	lease := 2 * time.Second
	if mode == "lease" {
		lease = time.Second
	}
	q, err := errand.New(errand.Config{
		Store:        New(pool),
		Kinds:        []errand.Runner{crashKind(pool)},
		OnlyKinds:    true,
		Workers:      8,
		Lease:        lease,
		PollInterval: 100 * time.Millisecond,
		Logger:       slogToStderr(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	fmt.Println("ready")
	<-stop // or SIGKILL
	_ = q.Close()
	pool.Close()
	os.Exit(0)
}

// worker is a running worker process.
type worker struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
}

// startWorker starts a worker process in mode on schema and waits until it
// is ready.
func startWorker(t *testing.T, mode, url, schema string) *worker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestWorkerProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), envWorker+"="+mode, envURL+"="+url, envSchema+"="+schema)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &worker{cmd: cmd, stderr: new(syncBuffer)}
	cmd.Stderr = w.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a worker process: %v", err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("worker process exited before it was ready: %s", w.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker process not ready after 30s: %s", w.stderr.String())
	}
	return w
}

// kill kills the process with sig and, for SIGKILL, reaps it.
func (w *worker) kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("signal %v: %v", sig, err)
	}
	if sig == syscall.SIGKILL {
		_ = w.cmd.Wait()
	}
}

func slogToStderr() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// syncBuffer is a bytes.Buffer safe for a process's stderr copier and the
// test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// crashSetup makes a migrated schema with the runs table, and returns the
// pool, the URL and the schema for worker processes.
func crashSetup(t *testing.T) (*pgxpool.Pool, string, string) {
	t.Helper()
	pool := migratedPool(t)
	var schema string
	ctx := testCtx(t)
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, runsTable); err != nil {
		t.Fatal(err)
	}
	return pool, testURL(t), schema
}

// enqueueCrash stores n crash tasks through the Store interface, as a producer
// process would, and returns their ids.
func enqueueCrash(t *testing.T, s errand.Store, k *errand.Kind[crashArgs, crashResult], n int, block bool) []string {
	t.Helper()
	ctx := testCtx(t)
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				nt, err := k.NewTask(crashArgs{N: i, Block: block}, errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3}))
				if err == nil {
					ids[i], _, err = s.Enqueue(ctx, nt)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("enqueue: %v", err)
	}
	return ids
}

// waitFinished polls the store until no task waits or runs, or fails the
// test after limit.
func waitFinished(t *testing.T, pool *pgxpool.Pool, limit time.Duration, check func()) {
	t.Helper()
	ctx := testCtx(t)
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var live int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM errand_tasks
			WHERE state IN ('queued', 'scheduled', 'retrying', 'running')`).Scan(&live); err != nil {
			t.Fatal(err)
		}
		if live == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tasks still live after %v", live, limit)
		}
		if check != nil {
			check()
		}
		<-tick.C
	}
}

func TestCrashKill(t *testing.T) {
	if testing.Short() {
		t.Skip("the crash test runs worker processes for ~20s; skipped with -short")
	}
	pool, url, schema := crashSetup(t)
	k := crashKind(pool)
	const n = 10_000
	ids := enqueueCrash(t, New(pool), k, n, false)

	const procs = 4
	workers := make([]*worker, 0, procs)
	var all []*worker
	t.Cleanup(func() {
		for _, w := range all {
			if w.cmd.ProcessState == nil {
				w.kill(t, syscall.SIGKILL)
			}
		}
	})
	for range procs {
		w := startWorker(t, "crash", url, schema)
		workers, all = append(workers, w), append(all, w)
	}
	kills := 0
	nextKill := time.Now().Add(time.Duration(100+rand.IntN(300)) * time.Millisecond)
	waitFinished(t, pool, 3*time.Minute, func() {
		if time.Now().Before(nextKill) || kills >= 12 {
			return
		}
		i := rand.IntN(len(workers))
		workers[i].kill(t, syscall.SIGKILL)
		kills++
		w := startWorker(t, "crash", url, schema)
		workers[i], all = w, append(all, w)
		nextKill = time.Now().Add(time.Duration(100+rand.IntN(300)) * time.Millisecond)
	})

	// Every task succeeded, with its own result, from the attempt the
	// store counted last.
	ctx := testCtx(t)
	rows, err := pool.Query(ctx, `SELECT id::text, state, attempts, result FROM errand_tasks`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		state    string
		attempts int
		result   crashResult
	}
	got := make(map[string]row, n)
	for rows.Next() {
		var id, state string
		var attempts int
		var raw []byte
		if err := rows.Scan(&id, &state, &attempts, &raw); err != nil {
			t.Fatal(err)
		}
		r := row{state: state, attempts: attempts}
		if raw != nil {
			if err := json.Unmarshal(raw, &r.result); err != nil {
				t.Fatalf("task %s: result %q: %v", id, raw, err)
			}
		}
		got[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d tasks stored, want %d", len(got), n)
	}
	runs := make(map[string]int, n)
	rrows, err := pool.Query(ctx, `SELECT task_id, count(*) FROM crash_runs GROUP BY task_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rrows.Next() {
		var id string
		var c int
		if err := rrows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		runs[id] = c
	}
	if err := rrows.Err(); err != nil {
		t.Fatal(err)
	}
	dups, bad := 0, 0
	for i, id := range ids {
		r, ok := got[id]
		switch {
		case !ok:
			t.Errorf("task %d (%s) lost", i, id)
		case r.state != "succeeded":
			t.Errorf("task %d (%s): state %s after %d attempts", i, id, r.state, r.attempts)
		case r.result.Double != 2*i:
			t.Errorf("task %d: result %+v, want double %d", i, r.result, 2*i)
		case r.result.Attempt != r.attempts:
			bad++
			t.Errorf("task %d: the stored result is attempt %d's, but the store counts %d attempts: a stale write", i, r.result.Attempt, r.attempts)
		}
		if runs[id] == 0 {
			t.Errorf("task %d: no run recorded", i)
		}
		if runs[id] > 1 {
			dups++
		}
	}
	t.Logf("%d tasks, %d SIGKILLs, %d worker processes in all: every task succeeded once in the store; %d tasks ran more than once (at-least-once), %d stale writes",
		n, kills, len(all), dups, bad)
	if kills == 0 {
		t.Fatal("no process was killed: the test proved nothing")
	}
}

func TestCrashLeaseLoss(t *testing.T) {
	pool, url, schema := crashSetup(t)
	k := crashKind(pool)
	ids := enqueueCrash(t, New(pool), k, 1, true)
	id := ids[0]
	ctx := testCtx(t)

	a := startWorker(t, "lease", url, schema)
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGCONT)
		if a.cmd.ProcessState == nil {
			a.kill(t, syscall.SIGKILL)
		}
	})
	// Wait for A to start the task, then pause A past its lease (1s).
	waitRow(t, pool, `SELECT count(*) FROM crash_runs WHERE task_id = $1 AND attempt = 1`, id)
	a.kill(t, syscall.SIGSTOP)

	b := startWorker(t, "lease", url, schema)
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.kill(t, syscall.SIGKILL)
		}
	})
	// B recovers the task once A's lease expires and runs attempt 2,
	// which blocks 4s and then succeeds.
	waitFinished(t, pool, time.Minute, nil)
	var state string
	var attempts int
	var raw []byte
	read := func() {
		if err := pool.QueryRow(ctx, `SELECT state, attempts, result FROM errand_tasks WHERE id = $1`, id).
			Scan(&state, &attempts, &raw); err != nil {
			t.Fatal(err)
		}
	}
	read()
	var res crashResult
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("result %q: %v", raw, err)
	}
	if state != "succeeded" || attempts != 2 || res.Attempt != 2 || res.PID != b.cmd.Process.Pid {
		t.Fatalf("after B: state %s, attempts %d, result %+v (B is pid %d), want succeeded by B's attempt 2",
			state, attempts, res, b.cmd.Process.Pid)
	}

	// Resume A: its heartbeat finds the lease gone (the attempt is
	// canceled), or its completion is refused. Either way it says so, and
	// the stored result stays B's.
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(a.stderr.String(), "lease lost") && !strings.Contains(a.stderr.String(), "outcome refused") {
		if time.Now().After(deadline) {
			t.Fatalf("A never reported its lease lost; its log:\n%s", a.stderr.String())
		}
		waitRow(t, pool, `SELECT count(*) FROM crash_runs WHERE task_id = $1`, id) // a DB round trip as the tick
	}
	raw = nil
	read()
	var after crashResult
	if err := json.Unmarshal(raw, &after); err != nil {
		t.Fatal(err)
	}
	if after != res || attempts != 2 {
		t.Fatalf("after A resumed: result %+v, attempts %d; want B's %+v unchanged", after, attempts, res)
	}
	t.Logf("A (pid %d) paused past its lease; B (pid %d) finished attempt 2; A on resuming: %s",
		a.cmd.Process.Pid, b.cmd.Process.Pid, firstLine(a.stderr.String(), "lease"))
}

// waitRow polls query (a count with one argument) until it is positive.
func waitRow(t *testing.T, pool *pgxpool.Pool, query string, arg any) {
	t.Helper()
	ctx := testCtx(t)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var c int
		if err := pool.QueryRow(ctx, query, arg).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no row after 30s: %s", query)
		}
		<-tick.C
	}
}

func firstLine(s, containing string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if strings.Contains(line, containing) {
			return line
		}
	}
	return ""
}
