// Command bench measures errand side by side with its peers (pond, ants,
// workerpool, errgroup, a bare channel pool, a result-channel pool,
// time.AfterFunc) in one run on this machine, and checks errand's targets.
//
//	cd bench && go run .                          # the full suite, about 4 minutes on 2 cores
//	cd bench && go run . -scale=0.05 -runs=1      # a quick look, well under a minute
//	scripts/bench -workloads=burst,futures        # the same from the repository root
//
// It prints the table, the notes and a PASS/MISS line per target, and
// writes results/bench.md and results/bench.svg (see -out). With
// -cpuprofile=DIR it writes a CPU profile of each run's measured phase,
// DIR/<workload>-<lib>.cpu.<run>.pprof, for `go tool pprof -top DIR/burst-64-errand.cpu.*.pprof`
// (pprof merges the runs); with -memprofile=DIR a heap profile at the peak of
// each backlog and delay-add cell. -libs=errand limits a run to errand's cells.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if spec := os.Getenv(durableWorkerEnv); spec != "" {
		os.Exit(durableWorkerMain(spec)) // a worker process of `bench durable`
	}
	if spec := os.Getenv(cellEnv); spec != "" {
		os.Exit(cellMain(spec)) // one isolated run (isolate.go)
	}
	if len(os.Args) > 1 && os.Args[1] == "durable" {
		os.Exit(durableMain(os.Args[2:]))
	}
	var (
		workloads = flag.String("workloads", "", "comma-separated workloads: burst, futures, request, waiting, backlog, delays, priority, or an id such as burst-64 (default all)")
		libs      = flag.String("libs", "", "comma-separated libraries to run: "+strings.Join(allLibs(), ", ")+" (default all)")
		scale     = flag.Float64("scale", 1, "multiplies every task count (e.g. 0.05 for a quick run)")
		runs      = flag.Int("runs", 5, "runs per cell; the median is reported")
		out       = flag.String("out", "results", "directory for bench.md and bench.svg; empty for none")
		png       = flag.Bool("png", false, "also write bench.png beside bench.svg")
		cpuprof   = flag.String("cpuprofile", "", "directory for CPU profiles of each run's measured phase (<workload>-<lib>.cpu.<run>.pprof; pprof merges several)")
		memprof   = flag.String("memprofile", "", "directory for heap profiles taken at the backlog and delay-add peaks (<workload>-<lib>.heap.pprof)")
		maxOthers = flag.Float64("max-others", 0.3, "repeat a run (up to 3 times) during which other processes kept more than this many cores busy; 0 never")
		quiet     = flag.Bool("q", false, "no progress lines on stderr")
		inProc    = flag.Bool("in-process", false, "run every measured run in this process instead of a new one each (faster to start, but a run then inherits the previous ones' goroutines and heap)")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench: unexpected arguments %q\n", flag.Args())
		os.Exit(2)
	}
	cfg := Config{
		Workloads:  splitList(*workloads),
		Libs:       splitList(*libs),
		Scale:      *scale,
		Runs:       *runs,
		Out:        *out,
		CPUProfile: *cpuprof,
		MemProfile: *memprof,
		MaxOthers:  *maxOthers,
		Command:    strings.Join(append([]string{"go run ."}, os.Args[1:]...), " "),
	}
	if !*quiet {
		cfg.Progress = os.Stderr
	}
	if !*inProc {
		exe, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(2)
		}
		cfg.Exe = exe
	}
	rep, err := Run(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := rep.WriteText(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if cfg.Out != "" {
		if err := rep.WriteFiles(cfg.Out, *png); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		fmt.Printf("wrote %s/bench.md and %s/bench.svg\n", cfg.Out, cfg.Out)
	}
	for _, r := range rep.Rows {
		if r.Err != nil {
			os.Exit(1) // a cell failed: its error is in the table
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
