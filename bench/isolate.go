package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
)

// A measured run happens in a new process of the bench binary (Config.Exe,
// the default of `go run .`), so that no run inherits another's leftovers:
// errgroup's futures start a goroutine per task, and the runtime keeps every
// goroutine descriptor it ever made, so each later garbage collection in that
// process walks a million of them; a heap grown by one library changes the
// collector's pace for the next. Measured in one process, errand's futures
// ran 2-5x slower after errgroup's than before. Each process makes one
// warm-up run of its cell before the measured one (runCell).

// cellEnv is the environment variable that turns the bench binary into one
// isolated run: it holds a cellSpec in JSON.
const cellEnv = "ERRAND_BENCH_CELL"

// cellSpec names one run of one cell.
type cellSpec struct {
	Workload, Lib          string
	N                      int
	CPUProfile, MemProfile string
}

// wireMetrics is Metrics as JSON carries it: NaN, which JSON cannot
// express, is a missing value.
type wireMetrics struct {
	Ns, Allocs, Bytes *float64
	Extra             map[string]*float64
}

func toWire(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

func fromWire(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// runIsolated runs spec in a new process of exe and returns its metrics.
func runIsolated(exe string, spec cellSpec) (Metrics, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return Metrics{}, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), cellEnv+"="+string(b))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return Metrics{}, fmt.Errorf("isolated run: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var w wireMetrics
	if err := json.Unmarshal(stdout.Bytes(), &w); err != nil {
		return Metrics{}, fmt.Errorf("isolated run: reading its metrics: %w (stdout %q)", err, stdout.String())
	}
	m := Metrics{Ns: fromWire(w.Ns), Allocs: fromWire(w.Allocs), Bytes: fromWire(w.Bytes), Extra: map[string]float64{}}
	for k, v := range w.Extra {
		m.Extra[k] = fromWire(v)
	}
	return m, nil
}

// cellMain is the body of an isolated run: it runs the cell spec names once
// and writes its metrics to stdout as JSON. It returns the exit code.
func cellMain(specJSON string) int {
	if err := runCell(specJSON); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func runCell(specJSON string) error {
	var spec cellSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("bad %s: %w", cellEnv, err)
	}
	ws, err := selectWorkloads([]string{spec.Workload})
	if err != nil {
		return err
	}
	for _, c := range ws[0].cells {
		if c.lib != spec.Lib || c.na != "" {
			continue
		}
		// A warm-up run first: the measured one then finds the heap grown
		// and its pages faulted in, as they are in a process that has been
		// running a while, and not the cost of the first touch of fresh
		// memory (which on this VM alone doubles a futures run).
		warm := spec
		warm.CPUProfile, warm.MemProfile = "", ""
		if _, err := runHere(ws[0], c, warm); err != nil {
			return err
		}
		m, err := runHere(ws[0], c, spec)
		if err != nil {
			return err
		}
		w := wireMetrics{Ns: toWire(m.Ns), Allocs: toWire(m.Allocs), Bytes: toWire(m.Bytes), Extra: map[string]*float64{}}
		for k, v := range m.Extra {
			w.Extra[k] = toWire(v)
		}
		return json.NewEncoder(os.Stdout).Encode(w)
	}
	return errors.New("no runnable cell " + spec.Workload + "/" + spec.Lib)
}
