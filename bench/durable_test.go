package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// testDatabaseURL is TEST_DATABASE_URL, else the local default.
func testDatabaseURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultDatabaseURL
}

// needDatabase fails under CI=true and skips otherwise when PostgreSQL is
// not reachable.
func needDatabase(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := newBenchPool(ctx, testDatabaseURL(), "", 1)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no PostgreSQL at %s under CI=true: %v", redactURL(testDatabaseURL()), err)
		}
		t.Skipf("no PostgreSQL at %s: %v", redactURL(testDatabaseURL()), err)
	}
	pool.Close()
}

// benchSchemas counts the database's schemas named bench_*.
func benchSchemas(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := newBenchPool(ctx, testDatabaseURL(), "", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDurableQuick runs the durable benchmark small: a few hundred jobs,
// one worker process per library (this test binary re-executed, see
// TestMain), and a short latency phase; every cell must run and report.
func TestDurableQuick(t *testing.T) {
	needDatabase(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	start := time.Now()
	const jobs = 300
	cfg := DurableConfig{
		URL: testDatabaseURL(), Jobs: jobs, Procs: []int{1}, Workers: 100, Runs: 1,
		Rate: 1000, LatencyFor: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Poll: 10 * time.Millisecond, Command: "go test -run TestDurableQuick",
		WorkerCmd: func() *exec.Cmd { return exec.Command(os.Args[0]) },
	}
	before := benchSchemas(t)
	rep, err := RunDurable(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if after := benchSchemas(t); after != before {
		t.Errorf("%d bench_ schemas before the run, %d after: the run left some behind", before, after)
	}
	libs := []string{durErrand, durRiver, durRiverFast}
	if len(rep.Rows) != len(libs) || len(rep.Latency) != len(libs) {
		t.Fatalf("%d throughput rows and %d latency rows, want %d each", len(rep.Rows), len(rep.Latency), len(libs))
	}
	for _, l := range libs {
		r := rep.row(l, 1)
		switch {
		case r == nil:
			t.Errorf("no throughput row for %s", l)
		case r.Err != nil:
			t.Errorf("%s: %v", l, r.Err)
		case r.Runs != 1 || r.Rate <= 0 || r.Enqueue <= 0 || r.Executed < jobs:
			t.Errorf("%s: %+v", l, r)
		}
		lt := rep.lat(l)
		switch {
		case lt == nil:
			t.Errorf("no latency row for %s", l)
		case lt.Err != nil:
			t.Errorf("%s latency: %v", l, lt.Err)
		case lt.Jobs != 300 || lt.P50 <= 0 || lt.P99 < lt.P50 || lt.Max < lt.P99 || lt.InsertP50 <= 0:
			t.Errorf("%s latency: %+v", l, lt)
		case lt.AfterP99 < lt.AfterP50 || lt.AfterMax < lt.AfterP99 || lt.AfterP50 >= lt.P50 || lt.AfterMax <= 0 || lt.Negative < 0 || lt.Negative > lt.Jobs:
			// After commit excludes the insert's round trip: below end to end.
			t.Errorf("%s latency after commit: %+v", l, lt)
		}
	}
	// errand against both River rows, and errand's latency.
	if len(rep.Verdicts) != 3 {
		t.Errorf("%d verdicts, want 3: %v", len(rep.Verdicts), rep.Verdicts)
	}
	for _, v := range rep.Verdicts {
		if v.Status != "PASS" && v.Status != "MISS" {
			t.Errorf("verdict %v", v)
		}
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := rep.WriteFile(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "durable.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if !hasRow(text.String(), l, "1", "") {
			t.Errorf("the printed table has no throughput row for %s:\n%s", l, text.String())
		}
		if !hasRow(string(md), l, "1", "|") {
			t.Errorf("durable.md has no throughput row for %s:\n%s", l, md)
		}
		if !hasRow(string(md), l, "1000/s", "|") {
			t.Errorf("durable.md has no latency row for %s:\n%s", l, md)
		}
	}
	for _, want := range []string{"PostgreSQL: ", "Command: `go test -run TestDurableQuick`", "## Targets"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("durable.md lacks %q", want)
		}
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Errorf("took %v, want under 20s", el)
	}
}

// TestDurableBadConfig checks that bad settings are refused before any
// connection is made.
func TestDurableBadConfig(t *testing.T) {
	for _, c := range []DurableConfig{
		{Libs: []string{"sidekiq"}},
		{Jobs: 0},
		{Jobs: 1, Workers: 0},
		{Jobs: 1, Workers: 1, Runs: 1, Rate: 0},
		{Jobs: 1, Workers: 1, Runs: 1, Rate: 1, LatencyFor: time.Second, Poll: time.Millisecond, Procs: []int{0}},
	} {
		c.WorkerCmd = func() *exec.Cmd { return exec.Command("false") }
		c.URL = "postgres://nobody@127.0.0.1:1/none"
		if _, err := RunDurable(context.Background(), c); err == nil || strings.Contains(err.Error(), "connecting") {
			t.Errorf("%+v: err %v, want a configuration error", c, err)
		}
	}
}

// TestJoinStarts checks the join of handler starts with insert returns:
// one value per measured job, sign kept, the first of repeated starts, and
// errors for a missing or unknown job.
func TestJoinStarts(t *testing.T) {
	returned := []int64{100, 200, 300, 400}
	after, neg, err := joinStarts([]jobStart{{1, 150}, {3, 290}, {2, 260}, {4, 470}, {3, 500}}, returned, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{-10, 60, 70}; !slices.Equal(after, want) || neg != 1 {
		t.Errorf("after %v, negative %d; want %v, 1", after, neg, want)
	}
	if _, _, err := joinStarts([]jobStart{{2, 250}, {3, 350}}, returned, 1); err == nil || !strings.Contains(err.Error(), "job 4") {
		t.Errorf("job 4 never started: err %v", err)
	}
	if _, _, err := joinStarts([]jobStart{{5, 1}}, returned, 1); err == nil {
		t.Error("job 5 of 4: no error")
	}
	if _, _, err := joinStarts(nil, returned, 4); err == nil {
		t.Error("no measured jobs: no error")
	}
}

// TestParseStarts checks the worker's "start s:t …" line round trip.
func TestParseStarts(t *testing.T) {
	got, err := parseStarts("start 1:100 2:-5")
	if err != nil || !slices.Equal(got, []jobStart{{1, 100}, {2, -5}}) {
		t.Errorf("got %v, %v", got, err)
	}
	for _, bad := range []string{"start 1", "start x:1", "start 1:y"} {
		if _, err := parseStarts(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
