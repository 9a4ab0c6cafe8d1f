package errandui

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/errandgo/errand"
)

func TestNewOptionDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Options
		want Options
	}{
		{"zero", Options{}, Options{Title: "errand", MaxTasks: 100, History: 5 * time.Minute}},
		{"set", Options{Title: "jobs", EnableActions: true, MaxTasks: 7, History: 90 * time.Second},
			Options{Title: "jobs", EnableActions: true, MaxTasks: 7, History: 90 * time.Second}},
		{"negative", Options{MaxTasks: -1, History: -time.Second}, Options{Title: "errand", MaxTasks: 100, History: 5 * time.Minute}},
		{"clamped low", Options{History: time.Second}, Options{Title: "errand", MaxTasks: 100, History: 10 * time.Second}},
		{"clamped high", Options{MaxTasks: 1 << 20, History: 48 * time.Hour}, Options{Title: "errand", MaxTasks: 10000, History: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(tt.in)
			if d.opts != tt.want {
				t.Fatalf("options = %+v, want %+v", d.opts, tt.want)
			}
			if got, want := len(d.tr.ring), int(tt.want.History/time.Second); got != want {
				t.Errorf("throughput ring has %d seconds, want %d", got, want)
			}
			if got := len(d.tr.failures); got != tt.want.MaxTasks {
				t.Errorf("failure ring has %d slots, want %d", got, tt.want.MaxTasks)
			}
			if (d.token != "") != tt.want.EnableActions {
				t.Errorf("token %q with EnableActions %v", d.token, tt.want.EnableActions)
			}
		})
	}
}

func TestTokensDiffer(t *testing.T) {
	a, b := New(Options{EnableActions: true}), New(Options{EnableActions: true})
	if len(a.token) != 43 || a.token == b.token {
		t.Fatalf("tokens %q and %q: want two different 43-character tokens", a.token, b.token)
	}
}

// ev fabricates an event for task id, as the queue would report it.
func ev(kind errand.EventKind, id string, at time.Time) errand.Event {
	return errand.Event{Kind: kind, Task: errand.TaskInfo{ID: id, Name: "kind-" + id}, Time: at}
}

func ids(l taskList) []string {
	out := make([]string, len(l.Tasks))
	for i, tv := range l.Tasks {
		out[i] = tv.ID
	}
	return out
}

// TestObserveTracksOnlyWhatFits checks the bounded lists: a list keeps the
// first MaxTasks tasks to arrive while it has room, a task that did not fit
// is ignored when it moves on, and a task that moves into a full list is
// forgotten.
func TestObserveTracksOnlyWhatFits(t *testing.T) {
	d := New(Options{MaxTasks: 3})
	now := time.Now()
	for i := range 10 {
		d.Observe(ev(errand.EventSubmitted, fmt.Sprint(i), now))
	}
	s := d.snapshot(now)
	if got, want := ids(s.Queued), []string{"0", "1", "2"}; !slices.Equal(got, want) {
		t.Fatalf("queued = %v, want %v", got, want)
	}
	if len(d.tr.tasks) != 3 {
		t.Fatalf("tracking %d tasks, want 3", len(d.tr.tasks))
	}

	// 0 starts: it moves to running, and the next arrival fills its place.
	d.Observe(ev(errand.EventStarted, "0", now))
	d.Observe(ev(errand.EventSubmitted, "10", now))
	// 5 was never tracked: its start is tracked (running has room), its
	// earlier life is not.
	d.Observe(ev(errand.EventStarted, "5", now))
	s = d.snapshot(now)
	if got, want := ids(s.Queued), []string{"1", "2", "10"}; !slices.Equal(got, want) {
		t.Errorf("queued = %v, want %v", got, want)
	}
	if got, want := ids(s.Running), []string{"0", "5"}; !slices.Equal(got, want) {
		t.Errorf("running = %v, want %v", got, want)
	}

	// Fill running; the fourth start is not tracked, and so 2 is dropped
	// from queued without a place in running.
	d.Observe(ev(errand.EventStarted, "1", now))
	d.Observe(ev(errand.EventStarted, "2", now))
	s = d.snapshot(now)
	if got, want := ids(s.Running), []string{"0", "5", "1"}; !slices.Equal(got, want) {
		t.Errorf("running = %v, want %v", got, want)
	}
	if got, want := ids(s.Queued), []string{"10"}; !slices.Equal(got, want) {
		t.Errorf("queued = %v, want %v", got, want)
	}
	if _, ok := d.tr.tasks["2"]; ok {
		t.Error("task 2 is still tracked after it moved into a full list")
	}

	// Finishing: untracked tasks are ignored, tracked ones leave.
	d.Observe(ev(errand.EventSucceeded, "2", now))
	d.Observe(ev(errand.EventSucceeded, "7", now))
	d.Observe(ev(errand.EventSucceeded, "0", now))
	d.Observe(ev(errand.EventCanceled, "10", now))
	d.Observe(ev(errand.EventFailed, "5", now))
	d.Observe(ev(errand.EventRetrying, "1", now))
	s = d.snapshot(now)
	if len(s.Queued.Tasks)+len(s.Running.Tasks) != 0 {
		t.Errorf("queued %v running %v, want both empty", ids(s.Queued), ids(s.Running))
	}
	if got, want := ids(s.Scheduled), []string{"1"}; !slices.Equal(got, want) {
		t.Errorf("scheduled = %v, want %v", got, want)
	}
	if got, want := ids(s.Failed), []string{"5"}; !slices.Equal(got, want) {
		t.Errorf("failed = %v, want %v", got, want)
	}
	if len(d.tr.tasks) != 1 || d.tr.lists[listQueued].n != 0 || d.tr.lists[listRunning].n != 0 || d.tr.lists[listScheduled].n != 1 {
		t.Errorf("tracker holds %d tasks, lists %d/%d/%d; want 1, 0/0/1",
			len(d.tr.tasks), d.tr.lists[listQueued].n, d.tr.lists[listRunning].n, d.tr.lists[listScheduled].n)
	}
	// Five entries were made (0, 1, 2, 10, 5); 1 still holds one, the
	// others wait on the free list, and are reused: a task's life in the
	// lists allocates nothing.
	free := 0
	for en := d.tr.free; en != nil; en = en.next {
		free++
	}
	if free != 4 {
		t.Errorf("%d entries on the free list, want 4", free)
	}
	life := []errand.Event{ev(errand.EventSubmitted, "x", now), ev(errand.EventStarted, "x", now), ev(errand.EventSucceeded, "x", now)}
	if n := testing.AllocsPerRun(100, func() {
		for _, e := range life {
			d.Observe(e)
		}
	}); n != 0 {
		t.Errorf("a task's life costs %v allocations in Observe, want 0", n)
	}
}

// TestObserveIgnoresEventsWithoutTask checks Rejected and Skipped events,
// which have no task id: they change no list (Stats counts them).
func TestObserveIgnoresEventsWithoutTask(t *testing.T) {
	d := New(Options{})
	now := time.Now()
	d.Observe(errand.Event{Kind: errand.EventRejected, Task: errand.TaskInfo{Name: "r"}, Time: now, Err: errand.ErrQueueFull})
	d.Observe(errand.Event{Kind: errand.EventSkipped, Task: errand.TaskInfo{Name: "s", Schedule: "x"}, Time: now})
	d.Observe(errand.Event{Kind: errand.EventSubmitted, Time: now})
	if len(d.tr.tasks) != 0 {
		t.Fatalf("tracking %d tasks, want 0", len(d.tr.tasks))
	}
	if got := d.version.Load(); got != 3 {
		t.Fatalf("version = %d, want 3", got)
	}
}

func TestFailuresAreTheMostRecentFirst(t *testing.T) {
	d := New(Options{MaxTasks: 3})
	now := time.Now()
	for i := range 5 {
		e := ev(errand.EventFailed, fmt.Sprint(i), now.Add(time.Duration(i)*time.Millisecond))
		e.Err = fmt.Errorf("boom %d", i)
		e.Task.Attempt = i + 1
		e.Panicked = i == 4
		d.Observe(e)
	}
	s := d.snapshot(now)
	if got, want := ids(s.Failed), []string{"4", "3", "2"}; !slices.Equal(got, want) {
		t.Fatalf("failed = %v, want %v", got, want)
	}
	f := s.Failed.Tasks[0]
	if f.Error != "boom 4" || f.Attempt != 5 || !f.Panicked || f.Name != "kind-4" || f.Since != now.Add(4*time.Millisecond).UnixMilli() {
		t.Fatalf("newest failure = %+v", f)
	}
	if s.Failed.Tasks[1].Panicked {
		t.Fatalf("failure 3 marked panicked")
	}
}

func TestThroughputPerSecond(t *testing.T) {
	d := New(Options{History: 10 * time.Second})
	end := time.Unix(1_700_000_000, 0)
	at := func(secsAgo int, ms int) time.Time {
		return end.Add(-time.Duration(secsAgo)*time.Second + time.Duration(ms)*time.Millisecond)
	}
	obs := func(kind errand.EventKind, t time.Time) { d.Observe(errand.Event{Kind: kind, Time: t}) }
	obs(errand.EventSucceeded, at(19, 0)) // in the slot of 9 s ago: reset when that second comes
	obs(errand.EventSucceeded, at(0, 100))
	obs(errand.EventSucceeded, at(0, 900))
	obs(errand.EventFailed, at(0, 500))
	obs(errand.EventSucceeded, at(3, 0))
	obs(errand.EventFailed, at(9, 999))
	obs(errand.EventCanceled, at(2, 0))   // not a completion
	obs(errand.EventSucceeded, at(10, 0)) // late: its slot holds a later second (now); ignored
	obs(errand.EventSucceeded, at(29, 0)) // late, the same

	s := d.snapshot(end.Add(500 * time.Millisecond))
	tp := s.Throughput
	if tp.End != end.Unix() {
		t.Fatalf("end = %d, want %d", tp.End, end.Unix())
	}
	wantOK := []uint32{0, 0, 0, 0, 0, 0, 1, 0, 0, 2}
	wantBad := []uint32{1, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	if !slices.Equal(tp.Succeeded, wantOK) || !slices.Equal(tp.Failed, wantBad) {
		t.Fatalf("succeeded %v failed %v, want %v and %v", tp.Succeeded, tp.Failed, wantOK, wantBad)
	}

	// Ten seconds later the window has moved past all of it.
	s = d.snapshot(end.Add(10 * time.Second))
	if slices.ContainsFunc(s.Throughput.Succeeded, func(n uint32) bool { return n != 0 }) ||
		slices.ContainsFunc(s.Throughput.Failed, func(n uint32) bool { return n != 0 }) {
		t.Fatalf("stale counts in %+v", s.Throughput)
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes
	tests := []struct {
		in, want string
	}{
		{"plain", "plain"},
		{"bad \xff byte", "bad \uFFFD byte"},
		{long, strings.Repeat("é", 500) + "…"},
		{strings.Repeat("a", 1000), strings.Repeat("a", 1000)},
		{"a" + strings.Repeat("é", 500), "a" + strings.Repeat("é", 499) + "…"},
	}
	for _, tt := range tests {
		if got := clip(tt.in); got != tt.want {
			t.Errorf("clip(%.20q...) = %.20q... (%d bytes), want %.20q... (%d bytes)", tt.in, got, len(got), tt.want, len(tt.want))
		}
	}
}

// TestLifecycleWithRealQueue follows real tasks through the lists and the
// counts: running, queued, backing off, failed, panicked, succeeded.
func TestLifecycleWithRealQueue(t *testing.T) {
	h := newHarness(t, Options{}, errand.Config{Workers: 1})

	// A task that fails once and then waits an hour for its retry.
	retry := submit(t, h.q, func(ctx context.Context) (int, error) { return 0, errors.New("upstream 503") },
		errand.WithName("webhook.deliver"),
		errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3, Backoff: errand.Constant(time.Hour)}))
	s := h.waitState(t, "the retry", func(s *state) bool { return len(s.Scheduled.Tasks) == 1 })
	sv := s.Scheduled.Tasks[0]
	if sv.ID != retry.ID() || sv.Name != "webhook.deliver" || sv.Attempt != 1 || sv.Error != "upstream 503" ||
		sv.Due < time.Now().Add(59*time.Minute).UnixMilli() {
		t.Fatalf("scheduled task = %+v", sv)
	}

	// A task that fails for good, and one that panics.
	bad := submit(t, h.q, func(ctx context.Context) (int, error) { return 0, errors.New("smtp: 451 try later") },
		errand.WithName("email.send"))
	await(t, bad)
	boom := submit(t, h.q, func(ctx context.Context) (int, error) { panic("nil map") }, errand.WithName("image.resize"))
	await(t, boom)
	h.waitState(t, "two failures", func(s *state) bool { return len(s.Failed.Tasks) == 2 })

	// One running, two waiting.
	run := submit(t, h.q, h.blocker, errand.WithName("report.build"))
	wait1 := submit(t, h.q, h.blocker, errand.WithName("q.one"), errand.WithPriority(3))
	wait2 := submit(t, h.q, h.blocker, errand.WithName("q.two"))
	s = h.waitState(t, "one running and two queued", func(s *state) bool {
		return len(s.Running.Tasks) == 1 && len(s.Queued.Tasks) == 2
	})
	if got := names(s.Running); !slices.Equal(got, []string{"report.build"}) {
		t.Errorf("running = %v", got)
	}
	if got := names(s.Queued); !slices.Equal(got, []string{"q.one", "q.two"}) {
		t.Errorf("queued = %v", got)
	}
	if s.Queued.Tasks[0].Priority != 3 || s.Queued.Tasks[0].ID != wait1.ID() || s.Running.Tasks[0].ID != run.ID() {
		t.Errorf("queued[0] = %+v, running[0] = %+v", s.Queued.Tasks[0], s.Running.Tasks[0])
	}
	if got := names(s.Failed); !slices.Equal(got, []string{"image.resize", "email.send"}) {
		t.Errorf("failed = %v", got)
	}
	if f := s.Failed.Tasks[0]; !f.Panicked || !strings.Contains(f.Error, "nil map") || f.Attempt != 1 {
		t.Errorf("panicked failure = %+v", f)
	}
	want := stats{Workers: 1, Queued: 2, Running: 1, Scheduled: 1, Submitted: 6, Failed: 2, Retried: 1, Panicked: 1}
	if s.Stats != want {
		t.Errorf("stats = %+v, want %+v", s.Stats, want)
	}
	if s.Queued.Total != 2 || s.Running.Total != 1 || s.Scheduled.Total != 1 || s.Failed.Total != 2 {
		t.Errorf("totals %d %d %d %d, want 2 1 1 2", s.Queued.Total, s.Running.Total, s.Scheduled.Total, s.Failed.Total)
	}
	if !s.Attached || s.Actions || s.Title != "errand" {
		t.Errorf("attached %v actions %v title %q", s.Attached, s.Actions, s.Title)
	}

	h.unblock()
	for _, f := range []*errand.Future[int]{run, wait1, wait2} {
		if err := await(t, f); err != nil {
			t.Fatal(err)
		}
	}
	s = h.waitState(t, "the lists to empty", func(s *state) bool {
		return len(s.Running.Tasks) == 0 && len(s.Queued.Tasks) == 0
	})
	var ok, failed uint32
	for i := range s.Throughput.Succeeded {
		ok += s.Throughput.Succeeded[i]
		failed += s.Throughput.Failed[i]
	}
	if ok != 3 || failed != 2 {
		t.Errorf("throughput counts %d succeeded and %d failed, want 3 and 2", ok, failed)
	}
	if s.Stats.Succeeded != 3 {
		t.Errorf("stats.succeeded = %d, want 3", s.Stats.Succeeded)
	}
}

// TestDelayedSubmission: a delayed task is listed as scheduled, with its due
// time, until it comes due or is canceled.
func TestDelayedSubmission(t *testing.T) {
	h := newHarness(t, Options{}, errand.Config{Workers: 1})
	f := submit(t, h.q, h.blocker, errand.WithName("later"), errand.WithDelay(time.Hour))
	s := h.waitState(t, "the delayed task", func(s *state) bool {
		return len(s.Queued.Tasks)+len(s.Scheduled.Tasks) == 1
	})
	if len(s.Scheduled.Tasks) != 1 || s.Scheduled.Tasks[0].Due == 0 {
		t.Fatalf("scheduled list %+v, want the delayed task with its due time", s.Scheduled.Tasks)
	}
	if s.Stats.Scheduled != 1 || s.Stats.Queued != 0 {
		t.Fatalf("stats = %+v, want 1 scheduled", s.Stats)
	}
	if s.Scheduled.Total != 1 {
		t.Fatalf("scheduled total = %d, want 1", s.Scheduled.Total)
	}
	if f.Cancel() != true {
		t.Fatal("Cancel = false")
	}
	h.waitState(t, "the canceled task to leave", func(s *state) bool {
		return len(s.Queued.Tasks)+len(s.Scheduled.Tasks) == 0
	})
}

func TestScheduleInState(t *testing.T) {
	h := newHarness(t, Options{MaxTasks: 2}, errand.Config{Workers: 1})
	cron, err := errand.ParseCron("0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	noop := func(context.Context) error { return nil }
	r1, err := h.q.Schedule(cron, noop, errand.WithName("report.nightly"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := h.q.Schedule(errand.Every(time.Minute), noop, errand.WithName("cache.warm"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.Schedule(plainTrigger{}, noop); err != nil {
		t.Fatal(err)
	}
	s := h.d.snapshot(time.Now())
	if s.Schedules.Total != 3 || len(s.Schedules.Items) != 2 {
		t.Fatalf("schedules: total %d, %d listed; want 3 and 2 (MaxTasks)", s.Schedules.Total, len(s.Schedules.Items))
	}
	// Ordered by next run: every minute, then the plain trigger (in two
	// minutes), then 3 a.m. (cut off by MaxTasks unless it is near).
	got := s.Schedules.Items[0]
	want := schedView{ID: r2.ID(), Name: "cache.warm", Trigger: "@every 1m0s", Next: r2.Next().UnixMilli()}
	if got != want {
		t.Fatalf("first schedule = %+v, want %+v", got, want)
	}
	if got := triggerString(cron); got != "0 0 3 * * *" {
		t.Errorf("cron trigger shows as %q", got)
	}
	if got := triggerString(plainTrigger{}); got != "errandui.plainTrigger" {
		t.Errorf("a trigger without String shows as %q", got)
	}
	r1.Stop()
	r2.Stop()
}

// plainTrigger fires every two minutes and has no String method.
type plainTrigger struct{}

func (plainTrigger) Next(after time.Time) time.Time { return after.Add(2 * time.Minute) }

func TestNotAttached(t *testing.T) {
	d := New(Options{Title: "x"})
	s := d.snapshot(time.Now())
	if s.Attached || s.Stats != (stats{}) || s.Schedules.Items == nil || len(s.Queued.Tasks) != 0 {
		t.Fatalf("state of an unattached dashboard: %+v", s)
	}
}
