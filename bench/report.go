package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdict is one target checked against the run's numbers.
type Verdict struct {
	Status string // PASS, MISS or SKIP (a row it needs did not run)
	Target string
	Detail string
}

func (v Verdict) String() string { return fmt.Sprintf("%s  %s: %s", v.Status, v.Target, v.Detail) }

// verdict is PASS or MISS for target as pass says.
func verdict(target string, pass bool, detail string) Verdict {
	st := "PASS"
	if !pass {
		st = "MISS"
	}
	return Verdict{Status: st, Target: target, Detail: detail}
}

// verdicts checks the targets in the issue, all ratios within this run.
func verdicts(rep *Report) []Verdict {
	var out []Verdict
	check := func(target string, pass bool, detail string) { out = append(out, verdict(target, pass, detail)) }
	need := func(target string, rows ...*Row) bool {
		for _, r := range rows {
			if r == nil {
				return false // its workload or library was not selected
			}
		}
		for _, r := range rows {
			if !r.ok() {
				out = append(out, Verdict{Status: "SKIP", Target: target, Detail: "a row it compares did not run"})
				return false
			}
		}
		return true
	}
	get := rep.row

	for _, id := range []string{"burst-64", "burst-4"} {
		e, ch := get(id, libErrand), get(id, libChan)
		t := id + ": errand ≤ 1.5x bare channel pool (ns/task)"
		if need(t, e, ch) {
			r := e.M.Ns / ch.M.Ns
			check(t, r <= 1.5, fmt.Sprintf("errand %s ns, chan %s ns: %.2fx", fmtNum(e.M.Ns), fmtNum(ch.M.Ns), r))
		}
		t = id + ": errand faster than pond, ants and workerpool"
		p, a, w := get(id, libPond), get(id, libAnts), get(id, libWorkerpool)
		if need(t, e, p, a, w) {
			check(t, e.M.Ns < p.M.Ns && e.M.Ns < a.M.Ns && e.M.Ns < w.M.Ns,
				fmt.Sprintf("errand %s ns; pond %s (%.2fx errand), ants %s (%.2fx), workerpool %s (%.2fx)",
					fmtNum(e.M.Ns), fmtNum(p.M.Ns), p.M.Ns/e.M.Ns, fmtNum(a.M.Ns), a.M.Ns/e.M.Ns, fmtNum(w.M.Ns), w.M.Ns/e.M.Ns))
		}
	}

	e, rc, p := get("futures", libErrand), get("futures", libResultChan), get("futures", libPond)
	t := "futures: errand ≤ 1.5x result-channel pool (ns/task)"
	if need(t, e, rc) {
		r := e.M.Ns / rc.M.Ns
		check(t, r <= 1.5, fmt.Sprintf("errand %s ns, result-chan %s ns: %.2fx", fmtNum(e.M.Ns), fmtNum(rc.M.Ns), r))
	}
	t = "futures: errand ≥ 3x faster than pond's ResultPool"
	if need(t, e, p) {
		r := p.M.Ns / e.M.Ns
		check(t, r >= 3, fmt.Sprintf("pond %s ns, errand %s ns: errand %.2fx faster", fmtNum(p.M.Ns), fmtNum(e.M.Ns), r))
	}
	t = "futures: errand ≤ 2 allocs/task"
	if need(t, e) {
		// Per task: a run's one-time allocations (its workers, their channels)
		// spread over a million tasks are allowed up to 0.001 per task.
		check(t, e.M.Allocs <= 2.001, fmt.Sprintf("%.4f allocs/task (%s B/task; one-time setup tolerated up to 0.001/task)", e.M.Allocs, fmtNum(e.M.Bytes)))
	}

	for _, c := range []struct {
		id    string
		limit float64
		what  string
	}{{"backlog-go", 48, "waiting fire-and-forget task"}, {"backlog-future", 160, "waiting task with a future"}} {
		e := get(c.id, libErrand)
		t := fmt.Sprintf("%s: ≤ %.0f B per %s", c.id, c.limit, c.what)
		if need(t, e) {
			h := e.M.Extra["heapB"]
			check(t, h <= c.limit, fmt.Sprintf("%.1f B/task%s", h, peersHeap(rep, c.id)))
		}
	}

	e, af := get("delay-add", libErrand), get("delay-add", libAfterFunc)
	t = "delay-add: adding ≤ 2x time.AfterFunc (ns/task)"
	if need(t, e, af) {
		r := e.M.Ns / af.M.Ns
		check(t, r <= 2, fmt.Sprintf("errand %s ns, AfterFunc %s ns: %.2fx", fmtNum(e.M.Ns), fmtNum(af.M.Ns), r))
	}
	t = "delay-add: heap per delayed task ≤ time.AfterFunc's"
	if need(t, e, af) {
		he, ha := e.M.Extra["heapB"], af.M.Extra["heapB"]
		check(t, he <= ha, fmt.Sprintf("errand %.1f B/task, AfterFunc %.1f B/task", he, ha))
	}
	e, af = get("delay-late", libErrand), get("delay-late", libAfterFunc)
	t = "delay-late: p99 lateness < 5ms"
	if need(t, e) {
		p99 := e.M.Extra["p99"]
		d := fmt.Sprintf("errand p50 %s, p99 %s", fmtDur(e.M.Extra["p50"]), fmtDur(p99))
		if af.ok() {
			d += fmt.Sprintf(" (AfterFunc p50 %s, p99 %s)", fmtDur(af.M.Extra["p50"]), fmtDur(af.M.Extra["p99"]))
		}
		check(t, p99 < 5e6, d)
	}

	e, f := get("priority", libErrand), get("priority", libErrandFIFO)
	t = "priority: OrderPriority ≤ 2x OrderFIFO (ns/task)"
	if need(t, e, f) {
		r := e.M.Ns / f.M.Ns
		check(t, r <= 2, fmt.Sprintf("priority %s ns, FIFO %s ns: %.2fx", fmtNum(e.M.Ns), fmtNum(f.M.Ns), r))
	}
	return out
}

// peersHeap lists the other libraries' heap per task in a backlog workload.
func peersHeap(rep *Report, id string) string {
	var parts []string
	for _, r := range rep.Rows {
		if r.W.id == id && r.Lib != libErrand && r.ok() {
			parts = append(parts, fmt.Sprintf("%s %.1f", r.Lib, r.M.Extra["heapB"]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

var tableHeader = []string{"workload", "library", "ns/task", "vs baseline", "allocs/task", "B/task", "details"}

// cells renders the table's rows as strings.
func (rep *Report) cells() [][]string {
	var out [][]string
	for _, r := range rep.Rows {
		switch {
		case r.NA != "":
			out = append(out, []string{r.W.id, r.Lib, "n/a", "", "", "", "see notes"})
		case r.Err != nil:
			out = append(out, []string{r.W.id, r.Lib, "ERROR", "", "", "", r.Err.Error()})
		default:
			out = append(out, []string{r.W.id, r.Lib, fmtNum(r.M.Ns), rep.ratio(r),
				fmt.Sprintf("%.3f", r.M.Allocs), fmtNum(r.M.Bytes), details(r.W, r.M)})
		}
	}
	return out
}

// ratio is a row's primary metric against its workload's baseline row.
func (rep *Report) ratio(r *Row) string {
	if r.Lib == r.W.baseline {
		return "baseline"
	}
	b := rep.row(r.W.id, r.W.baseline)
	if !b.ok() {
		return ""
	}
	s := fmt.Sprintf("%.2fx %s", r.primary()/b.primary(), r.W.baseline)
	switch r.W.primary {
	case "heapB":
		s += " (heap)"
	case "p99":
		s += " (p99)"
	}
	return s
}

// notes are the lines under the table: what each workload does and why a
// library shows n/a.
func (rep *Report) notes() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range rep.Rows {
		if !seen[r.W.id] {
			seen[r.W.id] = true
			n := r.W.about
			if o := rep.OthersBy[r.W.id]; isFinite(o) {
				n += fmt.Sprintf(" Other processes kept %.2f cores busy meanwhile", o)
				retried := 0
				for _, x := range rep.Rows {
					if x.W == r.W {
						retried += x.Retried
					}
				}
				if retried > 0 {
					n += fmt.Sprintf("; %d runs were repeated for it", retried)
				}
				n += "."
			}
			out = append(out, n)
		}
	}
	var whys []string
	libs, where := map[string][]string{}, map[string][]string{}
	for _, r := range rep.Rows {
		if r.NA == "" {
			continue
		}
		if _, ok := libs[r.NA]; !ok {
			whys = append(whys, r.NA)
		}
		if !slices.Contains(libs[r.NA], r.Lib) {
			libs[r.NA] = append(libs[r.NA], r.Lib)
		}
		if !slices.Contains(where[r.NA], r.W.id) {
			where[r.NA] = append(where[r.NA], r.W.id)
		}
	}
	for _, why := range whys {
		out = append(out, fmt.Sprintf("n/a: %s in %s: %s.", strings.Join(libs[why], ", "), strings.Join(where[why], ", "), why))
	}
	return out
}

// WriteText prints the table, the notes and the verdicts.
func (rep *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t"))
	last := ""
	for i, c := range rep.cells() {
		if id := rep.Rows[i].W.id; id != last && last != "" {
			fmt.Fprintln(tw, strings.Repeat("\t", len(tableHeader)-1))
		}
		last = rep.Rows[i].W.id
		fmt.Fprintln(tw, strings.Join(c, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	writeNotesText(w, rep.notes(), rep.Verdicts)
	_, err := fmt.Fprintf(w, "\n%s; took %s%s\n", rep.machine(), rep.Took.Round(time.Second), rep.othersText())
	return err
}

// WriteMarkdown writes bench.md: the machine, the command, the table, the
// notes and the verdicts.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# errand and its peers\n\n")
	fmt.Fprintf(&b, "- Machine: %s%s\n", rep.machine(), rep.othersText())
	fmt.Fprintf(&b, "- errand: %s\n", errandVersion())
	fmt.Fprintf(&b, "- Date: %s\n", rep.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Command: `%s` (scale %g, the median of %s per cell; %s; took %s)\n\n",
		rep.Cfg.Command, rep.Cfg.Scale, rep.runsText(), rep.isolationText(), rep.Took.Round(time.Second))
	fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(tableHeader, " | "), strings.Repeat(" --- |", len(tableHeader)))
	for _, c := range rep.cells() {
		if c[1] == libErrand {
			c[1] = "**" + c[1] + "**"
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(c, " | "))
	}
	fmt.Fprintf(&b, "\nns/task, allocs/task and B/task are the measured phase's wall time and runtime.MemStats deltas (Mallocs, TotalAlloc, every goroutine) divided by the tasks; the ratio compares each workload's primary metric with its baseline row.\n")
	writeNotesMarkdown(&b, rep.notes(), rep.Verdicts)
	_, err := w.Write(b.Bytes())
	return err
}

// writeNotesText prints the notes and the verdicts after a printed table.
func writeNotesText(w io.Writer, notes []string, vs []Verdict) {
	fmt.Fprintln(w, "\nNotes:")
	for _, n := range notes {
		fmt.Fprintln(w, "- "+n)
	}
	fmt.Fprintln(w, "\nTargets:")
	for _, v := range vs {
		fmt.Fprintln(w, v)
	}
}

// writeNotesMarkdown writes the Notes and Targets sections of a report.
func writeNotesMarkdown(b *bytes.Buffer, notes []string, vs []Verdict) {
	fmt.Fprintf(b, "\n## Notes\n\n")
	for _, n := range notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	fmt.Fprintf(b, "\n## Targets\n\n")
	for _, v := range vs {
		fmt.Fprintf(b, "- **%s** %s: %s\n", v.Status, v.Target, v.Detail)
	}
}

// othersText reports the other processes' load during the run, if known.
func (rep *Report) othersText() string {
	if !isFinite(rep.Others) {
		return ""
	}
	return fmt.Sprintf("; other processes kept %.2f of %d cores busy during the run", rep.Others, runtime.NumCPU())
}

// runsText says how many runs each cell's median is of.
func (rep *Report) runsText() string {
	lo, hi := 0, 0
	for _, r := range rep.Rows {
		if r.Runs > 0 {
			if lo == 0 || r.Runs < lo {
				lo = r.Runs
			}
			hi = max(hi, r.Runs)
		}
	}
	switch {
	case hi == 1:
		return "1 run"
	case lo == hi:
		return fmt.Sprintf("%d runs", hi)
	}
	return fmt.Sprintf("%d to %d runs", lo, hi)
}

// machine describes where the run happened.
func (rep *Report) machine() string {
	return fmt.Sprintf("%s, %d cores (GOMAXPROCS %d), %s %s/%s", cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// cpuModel is lscpu's model name, or /proc/cpuinfo's, or "unknown CPU".
func cpuModel() string {
	if out, err := exec.Command("lscpu").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

// errandVersion is the errand commit benchmarked (through the replace
// directive, the working tree one directory up), and whether the core had
// uncommitted changes.
func errandVersion() string {
	out, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "the working tree (no git)"
	}
	v := "commit " + strings.TrimSpace(string(out))
	if exec.Command("git", "-C", "..", "diff", "--quiet", "HEAD", "--", ".", ":(exclude)bench").Run() != nil {
		v += " plus uncommitted changes to the core"
	}
	return v
}

// WriteFiles writes bench.md and bench.svg (and bench.png with png) to dir.
func (rep *Report) WriteFiles(dir string, png bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.md"), md.Bytes(), 0o644); err != nil {
		return err
	}
	if err := rep.WriteChart(filepath.Join(dir, "bench.svg")); err != nil {
		return err
	}
	if png {
		return rep.WriteChart(filepath.Join(dir, "bench.png"))
	}
	return nil
}

// isFinite reports whether v is a usable number.
func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// isolationText says where the runs ran.
func (rep *Report) isolationText() string {
	if rep.Cfg.Exe != "" {
		return "each run in a new process, after a warm-up run of the same cell"
	}
	return "all runs in one process, one after another"
}
