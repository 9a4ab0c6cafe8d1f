package main

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestQuick runs every workload of every library at a thousandth of its size
// once, so CI exercises the whole harness (and every pool's shutdown) fast.
func TestQuick(t *testing.T) {
	// Importing ants starts its default pool's two goroutines; anything
	// started after this point must be gone by the end.
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	out := t.TempDir()
	rep, err := Run(Config{Scale: 0.001, Runs: 1, Command: "go test -run TestQuick"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteFiles(out, false); err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "bench.md"))
	if err != nil {
		t.Fatal(err)
	}

	// Every (workload, library) cell has its row, in the text and in
	// bench.md, and no cell failed.
	rows := 0
	for _, w := range workloads() {
		for _, c := range w.cells {
			rows++
			r := rep.row(w.id, c.lib)
			if r == nil {
				t.Errorf("no row for %s/%s", w.id, c.lib)
				continue
			}
			if r.Err != nil {
				t.Errorf("%s/%s: %v", w.id, c.lib, r.Err)
			}
			if c.na == "" && r.Runs != 1 {
				t.Errorf("%s/%s: %d runs, want 1", w.id, c.lib, r.Runs)
			}
			if !hasRow(text.String(), w.id, c.lib, "") {
				t.Errorf("the printed table has no row %s/%s", w.id, c.lib)
			}
			if !hasRow(string(md), w.id, c.lib, "|") {
				t.Errorf("bench.md has no row %s/%s", w.id, c.lib)
			}
		}
	}
	if len(rep.Rows) != rows {
		t.Errorf("%d rows, want %d", len(rep.Rows), rows)
	}

	// Every target got a verdict from rows that ran.
	const targets = 13
	if len(rep.Verdicts) != targets {
		t.Errorf("%d verdicts, want %d:\n%s", len(rep.Verdicts), targets, text.String())
	}
	for _, v := range rep.Verdicts {
		if v.Status != "PASS" && v.Status != "MISS" {
			t.Errorf("verdict %v", v)
		}
		if !strings.Contains(text.String(), v.String()) {
			t.Errorf("the printed report lacks %q", v)
		}
	}

	svg, err := os.ReadFile(filepath.Join(out, "bench.svg"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte(">errand<")) {
		t.Errorf("bench.svg is not a chart with errand in it (%d bytes)", len(svg))
	}
}

// hasRow reports whether a line of table starts with the workload and
// library cells: columns split by sep ("|" for Markdown, "" for the printed
// table's spaces), Markdown emphasis ignored.
func hasRow(table, id, lib, sep string) bool {
	for _, line := range strings.Split(table, "\n") {
		var cols []string
		if sep == "" {
			cols = strings.Fields(line)
		} else {
			cols = strings.Split(strings.Trim(line, sep+" "), sep)
		}
		if len(cols) >= 2 && strings.Trim(cols[0], " *") == id && strings.Trim(cols[1], " *") == lib {
			return true
		}
	}
	return false
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	s := make([]int64, 100)
	for i := range s {
		s[i] = int64(i + 1)
	}
	for _, c := range []struct {
		p    float64
		want int64
	}{{50, 50}, {99, 99}, {100, 100}, {1, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(1..100, %v) = %d, want %d", c.p, got, c.want)
		}
	}
}

// TestProfiles checks that -cpuprofile and -memprofile write their files.
func TestProfiles(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	rep, err := Run(Config{Scale: 0.001, Runs: 2, Workloads: []string{"burst-4", "backlog-go"}, Libs: []string{libErrand}, CPUProfile: dir, MemProfile: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Rows {
		if r.Err != nil {
			t.Errorf("%s/%s: %v", r.W.id, r.Lib, r.Err)
		}
	}
	for _, name := range []string{"burst-4-errand.cpu.1.pprof", "burst-4-errand.cpu.2.pprof", "backlog-go-errand.cpu.2.pprof", "backlog-go-errand.heap.pprof"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v, size %v", name, err, fi)
		}
	}
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(durableWorkerEnv); spec != "" {
		os.Exit(durableWorkerMain(spec)) // a worker process of TestDurableQuick
	}
	if spec := os.Getenv(cellEnv); spec != "" {
		os.Exit(cellMain(spec)) // an isolated run of TestIsolated
	}
	// ants starts its default pool's two goroutines when imported; they are
	// a peer's, not ours, and live as long as the process.
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers"),
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*poolCommon).ticktock"))
}

// TestIsolated runs cells in new processes of the test binary (TestMain
// turns one into an isolated run), as `go run .` does: the metrics come back
// whole, a workload's NaN included, and a child's failure is the row's error.
func TestIsolated(t *testing.T) {
	rep, err := Run(Config{Workloads: []string{"burst-4", "delay-late", "backlog-future"}, Libs: []string{"errand", "chan", "result-chan", "AfterFunc"},
		Scale: 0.001, Runs: 1, Exe: os.Args[0]})
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, r := range rep.Rows {
		if r.NA != "" {
			continue
		}
		ran++
		if r.Err != nil || r.Runs != 1 {
			t.Fatalf("%s/%s: %d runs, %v", r.W.id, r.Lib, r.Runs, r.Err)
		}
		if r.W.noNs != math.IsNaN(r.M.Ns) || (!r.W.noNs && r.M.Ns <= 0) {
			t.Errorf("%s/%s: ns/task %v", r.W.id, r.Lib, r.M.Ns)
		}
		if v := r.primary(); math.IsNaN(v) || v <= 0 {
			t.Errorf("%s/%s: primary metric %s = %v", r.W.id, r.Lib, r.W.primary, v)
		}
	}
	if ran != 6 {
		t.Errorf("%d cells ran, want 6", ran)
	}
	if _, err := runIsolated(os.Args[0], cellSpec{Workload: "burst-4", Lib: "no-such-lib", N: 10}); err == nil || !strings.Contains(err.Error(), "no runnable cell") {
		t.Errorf("a failing isolated run: %v", err)
	}
}
