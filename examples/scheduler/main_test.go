package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer collects the program's output, written by its tasks.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var runLine = regexp.MustCompile(`^(\d\d:\d\d:\d\d) (cleanup|report) +schedule=([0-9a-f]{8}) next=(\d\d:\d\d:\d\d)$`)

// TestRunOneMinute runs the program for a minute of fake time: the cleanup
// job runs every 2s (30 runs), the cron report at every 10th second (6 runs),
// the three one-off tasks once each; each run names its schedule and that
// schedule's next run; on cancel the program shuts down cleanly.
func TestRunOneMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now() // 2000-01-01 00:00:00 UTC in the bubble: on a 10s boundary
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- run(ctx, &out) }()
		time.Sleep(time.Minute)
		synctest.Wait() // the runs due at exactly 1m have run
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}

		lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		runs := map[string][]time.Duration{}
		ids := map[string]string{}
		oneOffs, reports := 0, 0
		parse := func(s string) time.Duration {
			tm, err := time.ParseInLocation("15:04:05", s, start.Location())
			if err != nil {
				t.Fatal(err)
			}
			h, m, sec := start.Clock()
			return tm.Sub(time.Date(0, 1, 1, h, m, sec, 0, start.Location()))
		}
		for _, l := range lines {
			switch m := runLine.FindStringSubmatch(l); {
			case m != nil:
				at, next, name := parse(m[1]), parse(m[4]), m[2]
				runs[name] = append(runs[name], at)
				step := map[string]time.Duration{"cleanup": 2 * time.Second, "report": 10 * time.Second}[name]
				if next != at+step {
					t.Errorf("%q: next run %v after the run at %v, want %v", l, next, at, at+step)
				}
				if id, ok := ids[name]; ok && id != m[3] {
					t.Errorf("%q: schedule %s, earlier runs had %s", l, m[3], id)
				}
				ids[name] = m[3]
			case strings.Contains(l, " welcome  one-off"):
				oneOffs++
			case strings.Contains(l, " report:  "):
				reports++
			}
		}
		if n := len(runs["cleanup"]); n != 30 {
			t.Errorf("%d cleanup runs, want 30 (every 2s for a minute)", n)
		}
		if n := len(runs["report"]); n != 6 || reports != 6 {
			t.Errorf("%d report runs (%d report lines), want 6 (every 10s for a minute)", n, reports)
		}
		for i, at := range runs["cleanup"] {
			if want := time.Duration(i+1) * 2 * time.Second; at != want {
				t.Errorf("cleanup run %d at +%v, want +%v", i+1, at, want)
			}
		}
		for i, at := range runs["report"] {
			if want := time.Duration(i+1) * 10 * time.Second; at != want {
				t.Errorf("report run %d at +%v, want +%v", i+1, at, want)
			}
		}
		if oneOffs != 3 {
			t.Errorf("%d one-off runs, want 3", oneOffs)
		}
		if ids["cleanup"] == ids["report"] {
			t.Errorf("cleanup and report share schedule id %s", ids["cleanup"])
		}
		if last := lines[len(lines)-1]; !strings.HasSuffix(last, " stopped: 39 tasks succeeded, 0 failed, 0 runs skipped") {
			t.Errorf("last line %q, want the final stats", last)
		}
		if t.Failed() {
			t.Logf("output:\n%s", out.String())
		}
	})
}
