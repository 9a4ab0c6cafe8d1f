package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"
)

// Config is one run of the suite: the flags.
type Config struct {
	Workloads  []string  // workload groups or ids to run; empty = all
	Libs       []string  // libraries to run; empty = all
	Scale      float64   // multiplies every task count
	Runs       int       // runs per cell; the median is reported
	Out        string    // directory for bench.md and bench.svg; "" = none
	CPUProfile string    // directory for a CPU profile of each run's measured phase; "" = none
	MemProfile string    // directory for heap profiles at the backlog peaks; "" = none
	MaxOthers  float64   // repeat a run if other processes kept more cores busy (0 = never)
	Exe        string    // run each measured run in a new process of this executable (isolate.go); "" = in this process
	Command    string    // the command line, for the report
	Progress   io.Writer // progress lines; nil = none
}

// Metrics are one cell's numbers: per task, and the workload's own (Extra).
type Metrics struct {
	Ns     float64            // wall time of the measured phase per task; NaN if meaningless
	Allocs float64            // heap allocations per task in the measured phase (every goroutine)
	Bytes  float64            // bytes allocated per task in the measured phase
	Extra  map[string]float64 // workload-specific, see extraKeys
}

// Row is one (workload, library) cell of the table.
type Row struct {
	W       *workload
	Lib     string
	NA      string // why the library cannot do this workload; "" if it ran
	Err     error
	Runs    int
	Retried int     // runs repeated because other processes were busy
	M       Metrics // medians over the runs
}

// Report is what a run of the suite produced.
type Report struct {
	Cfg      Config
	Rows     []*Row
	Verdicts []Verdict
	Started  time.Time
	Took     time.Duration
	Others   float64            // cores other processes kept busy during the run (NaN: unknown)
	OthersBy map[string]float64 // the same per workload id
}

// env is what a cell's run function gets: the task count and worker count,
// and the meter it brackets its measured phase with.
type env struct {
	n, workers int
	extra      map[string]float64
	memProfile string // where heapPeak writes the heap profile; "" = nowhere
	cpuProfile string // where begin..end is CPU-profiled; "" = not
	cpuFile    *os.File
	profErr    error

	began, ended bool
	t0           time.Time
	ms0          runtime.MemStats
	elapsed      time.Duration
	mallocs      uint64
	bytes        uint64
}

// begin starts the measured phase.
func (e *env) begin() {
	e.began = true
	if e.cpuProfile != "" {
		f, err := os.Create(e.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		e.cpuFile, e.profErr = f, err
	}
	runtime.ReadMemStats(&e.ms0)
	e.t0 = time.Now()
}

// end ends the measured phase.
func (e *env) end() {
	e.elapsed = time.Since(e.t0)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	e.mallocs = ms.Mallocs - e.ms0.Mallocs
	e.bytes = ms.TotalAlloc - e.ms0.TotalAlloc
	e.ended = true
	if e.cpuFile != nil {
		if e.profErr == nil {
			pprof.StopCPUProfile()
		}
		e.profErr = errors.Join(e.profErr, e.cpuFile.Close())
	}
}

// heapPeak is called at a workload's memory peak, just after heapNow: with
// -memprofile it writes the heap profile there (the last run's wins).
func (e *env) heapPeak() error {
	if e.memProfile == "" {
		return nil
	}
	f, err := os.Create(e.memProfile)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup("heap").WriteTo(f, 0), f.Close())
}

// heapNow collects garbage and returns the bytes of live heap objects.
func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Run runs the suite.
func Run(cfg Config) (*Report, error) {
	if cfg.Scale <= 0 {
		return nil, fmt.Errorf("scale %v: want > 0", cfg.Scale)
	}
	if cfg.Runs < 1 {
		return nil, fmt.Errorf("runs %d: want >= 1", cfg.Runs)
	}
	ws, err := selectWorkloads(cfg.Workloads)
	if err != nil {
		return nil, err
	}
	for _, l := range cfg.Libs {
		if !slices.Contains(allLibs(), l) {
			return nil, fmt.Errorf("unknown library %q (have %s)", l, strings.Join(allLibs(), ", "))
		}
	}
	for _, dir := range []string{cfg.CPUProfile, cfg.MemProfile} {
		if dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, err
			}
		}
	}
	if cfg.MemProfile != "" {
		// Sample finely: the profile should account for the bytes per task.
		old := runtime.MemProfileRate
		runtime.MemProfileRate = 4096
		defer func() { runtime.MemProfileRate = old }()
	}
	rep := &Report{Cfg: cfg, Started: time.Now(), OthersBy: map[string]float64{}}
	load := startLoad()
	for _, w := range ws {
		wload := startLoad()
		var rows []*Row
		var cells []cell
		for _, c := range w.cells {
			if len(cfg.Libs) > 0 && !slices.Contains(cfg.Libs, c.lib) {
				continue
			}
			row := &Row{W: w, Lib: c.lib, NA: c.na}
			rep.Rows = append(rep.Rows, row)
			if c.na == "" {
				rows, cells = append(rows, row), append(cells, c)
			}
		}
		runWorkload(cfg, w, cells, rows)
		rep.OthersBy[w.id] = wload.others()
	}
	rep.Others = load.others()
	rep.Took = time.Since(rep.Started)
	rep.Verdicts = verdicts(rep)
	return rep, nil
}

// A run during which other processes kept more than Config.MaxOthers cores
// busy is repeated, up to maxRetries times; runs shorter than minJudged are
// not judged (/proc/stat counts in 10 ms ticks).
const (
	maxRetries = 3
	minJudged  = 250 * time.Millisecond
)

// runWorkload runs each cell of w -runs times and records the medians in
// its row. The runs are interleaved (run 1 of every library, then run 2,
// each round starting one library later) so that a slow spell of the
// machine does not land on one library.
func runWorkload(cfg Config, w *workload, cells []cell, rows []*Row) {
	n := max(1, int(math.Round(float64(w.tasks)*cfg.Scale)))
	runs := cfg.Runs
	all := make([][]Metrics, len(cells))
	one := func(i, r int) {
		if rows[i].Err != nil {
			return
		}
		for try := 0; ; try++ {
			load := startLoad()
			m, err := runOnce(cfg, w, cells[i], n, r)
			if err != nil {
				rows[i].Err = fmt.Errorf("run %d: %w", r+1, err)
				return
			}
			others, wall := load.others(), time.Since(load.wall)
			busy := cfg.MaxOthers > 0 && wall >= minJudged && others > cfg.MaxOthers
			if cfg.Progress != nil {
				note := ""
				if busy {
					note = fmt.Sprintf(" [other processes kept %.2f cores busy]", others)
				}
				fmt.Fprintf(cfg.Progress, "%-15s %-12s run %d/%d: %s%s\n", w.id, cells[i].lib, r+1, runs, brief(w, m), note)
			}
			if busy && try < maxRetries {
				rows[i].Retried++
				continue
			}
			all[i] = append(all[i], m)
			return
		}
	}
	for r := range runs {
		for k := range cells {
			one((k+r)%len(cells), r)
		}
	}
	for i, row := range rows {
		if row.Err == nil {
			row.Runs = len(all[i])
			row.M = medianMetrics(all[i])
		}
	}
}

// runOnce runs cell c of w once (run r) with n tasks: in a new process with
// Config.Exe, or else here after a collection.
func runOnce(cfg Config, w *workload, c cell, n, r int) (Metrics, error) {
	spec := cellSpec{Workload: w.id, Lib: c.lib, N: n}
	if cfg.MemProfile != "" {
		spec.MemProfile = filepath.Join(cfg.MemProfile, w.id+"-"+c.lib+".heap.pprof")
	}
	if cfg.CPUProfile != "" {
		spec.CPUProfile = filepath.Join(cfg.CPUProfile, fmt.Sprintf("%s-%s.cpu.%d.pprof", w.id, c.lib, r+1))
	}
	if cfg.Exe != "" {
		return runIsolated(cfg.Exe, spec)
	}
	return runHere(w, c, spec)
}

// runHere runs one cell once in this process, after a collection.
func runHere(w *workload, c cell, spec cellSpec) (Metrics, error) {
	runtime.GC()
	e := &env{n: spec.N, workers: w.workers, extra: map[string]float64{}, memProfile: spec.MemProfile, cpuProfile: spec.CPUProfile}
	err := c.run(e)
	if err == nil {
		err = e.profErr
	}
	if err == nil && !(e.began && e.ended) {
		err = errors.New("the run measured nothing (harness bug)")
	}
	if err != nil {
		return Metrics{}, err
	}
	m := Metrics{
		Ns:     float64(e.elapsed.Nanoseconds()) / float64(e.n),
		Allocs: float64(e.mallocs) / float64(e.n),
		Bytes:  float64(e.bytes) / float64(e.n),
		Extra:  e.extra,
	}
	if w.noNs {
		m.Ns = math.NaN()
	}
	return m, nil
}

// brief is a progress line's numbers.
func brief(w *workload, m Metrics) string {
	s := fmt.Sprintf("%s ns/task, %.2f allocs/task, %.0f B/task", fmtNum(m.Ns), m.Allocs, m.Bytes)
	if d := details(w, m); d != "" {
		s += "; " + d
	}
	return s
}

func medianMetrics(all []Metrics) Metrics {
	pick := func(f func(Metrics) float64) float64 {
		vs := make([]float64, len(all))
		for i, m := range all {
			vs[i] = f(m)
		}
		return median(vs)
	}
	out := Metrics{
		Ns:     pick(func(m Metrics) float64 { return m.Ns }),
		Allocs: pick(func(m Metrics) float64 { return m.Allocs }),
		Bytes:  pick(func(m Metrics) float64 { return m.Bytes }),
		Extra:  map[string]float64{},
	}
	for k := range all[0].Extra {
		out.Extra[k] = pick(func(m Metrics) float64 { return m.Extra[k] })
	}
	return out
}

// median of vs (the mean of the middle two for an even count).
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// percentile returns the p-th percentile (0..100) of sorted, nearest rank.
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// row finds the row of workload id and library lib, or nil.
func (r *Report) row(id, lib string) *Row {
	for _, row := range r.Rows {
		if row.W.id == id && row.Lib == lib {
			return row
		}
	}
	return nil
}

// ok reports whether the row ran without error.
func (row *Row) ok() bool { return row != nil && row.NA == "" && row.Err == nil && row.Runs > 0 }

// primary is the row's value of its workload's primary metric.
func (row *Row) primary() float64 { return row.M.value(row.W.primary) }

func (m Metrics) value(key string) float64 {
	switch key {
	case "ns":
		return m.Ns
	case "allocs":
		return m.Allocs
	case "bytes":
		return m.Bytes
	}
	if v, ok := m.Extra[key]; ok {
		return v
	}
	return math.NaN()
}
