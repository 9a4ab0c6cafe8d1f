package main

// The durable benchmark's report: the tables, the notes, the targets and
// durable.md.

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// failed reports whether a cell failed.
func (rep *DurableReport) failed() bool {
	for _, r := range rep.Rows {
		if r.Err != nil {
			return true
		}
	}
	for _, l := range rep.Latency {
		if l.Err != nil {
			return true
		}
	}
	return false
}

func (rep *DurableReport) row(lib string, procs int) *DurableRow {
	for _, r := range rep.Rows {
		if r.Lib == lib && r.Procs == procs {
			return r
		}
	}
	return nil
}

func (rep *DurableReport) lat(lib string) *DurableLatency {
	for _, l := range rep.Latency {
		if l.Lib == lib {
			return l
		}
	}
	return nil
}

// verdicts checks the targets: errand's jobs/s at least River's at
// every process count (against River's defaults and River at its shortest
// FetchCooldown), and errand's p99 pickup latency after commit under 20 ms
// (the end-to-end p99, insert included, printed beside it).
func (rep *DurableReport) verdicts() []Verdict {
	var out []Verdict
	check := func(target string, pass bool, detail string) { out = append(out, verdict(target, pass, detail)) }
	for _, p := range rep.Cfg.Procs {
		e := rep.row(durErrand, p)
		for _, rv := range []string{durRiver, durRiverFast} {
			r := rep.row(rv, p)
			if e == nil || r == nil {
				continue
			}
			t := fmt.Sprintf("throughput, %d process(es): errand ≥ %s (jobs/s)", p, rv)
			if e.Err != nil || r.Err != nil {
				out = append(out, Verdict{Status: "SKIP", Target: t, Detail: "a row it compares failed"})
				continue
			}
			check(t, e.Rate >= r.Rate, fmt.Sprintf("errand %.0f, %s %.0f: %.2fx", e.Rate, rv, r.Rate, e.Rate/r.Rate))
		}
	}
	if l := rep.lat(durErrand); l != nil {
		t := fmt.Sprintf("pickup latency at %d jobs/s: errand p99 after commit < 20ms", rep.Cfg.Rate)
		if l.Err != nil {
			out = append(out, Verdict{Status: "SKIP", Target: t, Detail: "the run failed"})
		} else {
			check(t, l.AfterP99 < 20*time.Millisecond, fmt.Sprintf("after commit p50 %v, p99 %v; end to end (insert round trip and commit included, not the target's measure) p50 %v, p99 %v",
				fmtLat(l.AfterP50), fmtLat(l.AfterP99), fmtLat(l.P50), fmtLat(l.P99)))
		}
	}
	return out
}

func fmtLat(d time.Duration) string { return fmtDur(float64(d)) }

var durHeader = []string{"library", "processes", "jobs", "enqueue jobs/s", "jobs/s", "vs river", "vs river-fast", "elapsed", "handler runs"}

func (rep *DurableReport) cells() [][]string {
	var out [][]string
	for _, r := range rep.Rows {
		if r.Err != nil {
			out = append(out, []string{r.Lib, strconv.Itoa(r.Procs), strconv.Itoa(rep.Cfg.Jobs), "error: " + oneLine(r.Err), "", "", "", "", ""})
			continue
		}
		c := []string{r.Lib, strconv.Itoa(r.Procs), strconv.Itoa(rep.Cfg.Jobs), fmt.Sprintf("%.0f", r.Enqueue), fmt.Sprintf("%.0f", r.Rate)}
		for _, base := range []string{durRiver, durRiverFast} {
			b := rep.row(base, r.Procs)
			switch {
			case b == nil || b.Err != nil:
				c = append(c, "")
			case b == r:
				c = append(c, "baseline")
			default:
				c = append(c, fmt.Sprintf("%.2fx", r.Rate/b.Rate))
			}
		}
		c = append(c, r.Elapsed.Round(time.Millisecond).String(), strconv.FormatInt(r.Executed, 10))
		out = append(out, c)
	}
	return out
}

var latHeader = []string{"library", "target rate", "achieved rate", "measured jobs",
	"end-to-end p50", "end-to-end p99", "end-to-end max", "insert p50", "insert p99",
	"after commit p50", "after commit p99", "after commit max", "after commit < 0"}

func (rep *DurableReport) latCells() [][]string {
	var out [][]string
	for _, l := range rep.Latency {
		if l.Err != nil {
			c := []string{l.Lib, fmt.Sprintf("%d/s", rep.Cfg.Rate), "error: " + oneLine(l.Err)}
			out = append(out, append(c, make([]string, len(latHeader)-len(c))...))
			continue
		}
		out = append(out, []string{l.Lib, fmt.Sprintf("%d/s", rep.Cfg.Rate), fmt.Sprintf("%.0f/s", l.Achieved),
			strconv.Itoa(l.Jobs), fmtLat(l.P50), fmtLat(l.P99), fmtLat(l.Max), fmtLat(l.InsertP50), fmtLat(l.InsertP99),
			fmtLat(l.AfterP50), fmtLat(l.AfterP99), fmtLat(l.AfterMax), strconv.Itoa(l.Negative)})
	}
	return out
}

func oneLine(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n", " ")
	return strings.ReplaceAll(s, "|", "/")
}

// notes describe the method and the settings.
func (rep *DurableReport) notes() []string {
	c := rep.Cfg
	conns := "pgx's default MaxConns (max(4, NumCPU))"
	if c.Conns > 0 {
		conns = fmt.Sprintf("MaxConns %d", c.Conns)
	}
	n := []string{
		fmt.Sprintf("Throughput: %d no-op jobs are inserted in bulk before any worker starts (errand: errandpg's fastest bulk path, see its setting; River: InsertMany in batches of %d), then ANALYZE; the enqueue rate is that phase's. Then the worker processes (this binary re-executed) start together, and jobs/s is the jobs over the time from \"go\" until the parent, polling every %v, sees no unfinished job in the database. Handler runs sums the processes' counts (at least once: ≥ jobs). Each library gets a fresh schema per run. The median of %d run(s) per cell; cells interleaved.", c.Jobs, riverBatch, c.Poll, c.Runs),
		fmt.Sprintf("Latency: one worker process; the parent inserts one job at a time on a %v ticker (a warm-up of %v first, not recorded), each carrying a sequence number and time.Now() taken just before its insert. The jobs due by each tick (a steady rate, catching up on skipped ticks) go to %d inserting goroutines, so a slow insert does not lower the rate. Both clocks are this machine's (wall clock, parent and worker process).", time.Second/time.Duration(c.Rate), c.Warmup, latInserters),
		"End-to-end latency = the handler's start minus time.Now() taken just before the insert: it includes the insert's own round trip and commit (shown apart as insert p50/p99; a commit with NOTIFY waits for the WAL flush, and concurrent ones queue behind each other, for River too).",
		"Pickup after commit (the issue's target: from the moment the job is committed, available, to its handler starting) = the handler's start minus the moment the job's insert returned to the parent (the commit acknowledged), joined per job by sequence number (a job run twice counts its first start). It can be slightly negative when the worker, woken by the commit's notification, starts the job before the inserting client has read the acknowledgement: the sign is kept, nothing clamped; \"after commit < 0\" counts those jobs. The target checks errand's after-commit p99; its end-to-end p99 is printed in the same line.",
		fmt.Sprintf("Workers: %d per process for both (errand Config.Workers, River QueueConfig.MaxWorkers on the default queue); each process's pool: %s, search_path set to the run's schema.", c.Workers, conns),
	}
	if !math.IsNaN(rep.Busy) {
		n = append(n, fmt.Sprintf("A shared machine: before each cell the run waited (up to %v) until the machine kept at most %.2f cores busy; the busiest start was %.2f of %d cores.", c.QuietWait, c.MaxOthers, rep.Busy, runtime.NumCPU()))
	}
	return append(n, rep.Settings...)
}

// WriteText prints the tables, the notes and the verdicts.
func (rep *DurableReport) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(rep.Rows) > 0 {
		fmt.Fprintln(tw, strings.Join(durHeader, "\t"))
		for _, c := range rep.cells() {
			fmt.Fprintln(tw, strings.Join(c, "\t"))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintln(tw, strings.Join(latHeader, "\t"))
	for _, c := range rep.latCells() {
		fmt.Fprintln(tw, strings.Join(c, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	writeNotesText(w, rep.notes(), rep.Verdicts)
	_, err := fmt.Fprintf(w, "\n%s; PostgreSQL %s; took %s\n", (&Report{}).machine(), rep.PGVersion, rep.Took.Round(time.Second))
	return err
}

// WriteMarkdown writes durable.md.
func (rep *DurableReport) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# errand's durable mode beside River\n\n")
	fmt.Fprintf(&b, "- Machine: %s\n", (&Report{}).machine())
	fmt.Fprintf(&b, "- PostgreSQL: %s, on the same machine\n", rep.PGVersion)
	fmt.Fprintf(&b, "- errand: %s; River %s\n", errandVersion(), riverVersion())
	fmt.Fprintf(&b, "- Date: %s\n", rep.Started.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "- Command: `%s` (took %s)\n\n", rep.Cfg.Command, rep.Took.Round(time.Second))
	if len(rep.Rows) > 0 {
		fmt.Fprintf(&b, "## Throughput\n\n")
		writeMDTable(&b, durHeader, rep.cells())
	}
	fmt.Fprintf(&b, "\n## Pickup latency\n\n")
	writeMDTable(&b, latHeader, rep.latCells())
	writeNotesMarkdown(&b, rep.notes(), rep.Verdicts)
	_, err := w.Write(b.Bytes())
	return err
}

func writeMDTable(b *bytes.Buffer, header []string, rows [][]string) {
	fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat(" --- |", len(header)))
	for _, c := range rows {
		c = slices.Clone(c)
		if c[0] == durErrand {
			c[0] = "**" + c[0] + "**"
		}
		fmt.Fprintf(b, "| %s |\n", strings.Join(c, " | "))
	}
}

// WriteFile writes dir/durable.md.
func (rep *DurableReport) WriteFile(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "durable.md"), md.Bytes(), 0o644)
}

// riverVersion is the River module version this binary was built with.
func riverVersion() string {
	return moduleVersion("github.com/riverqueue/river")
}

// moduleVersion is the version of module path in this binary's build
// information, or "(unknown version)".
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == path {
				return m.Version
			}
		}
	}
	return "(unknown version)"
}
