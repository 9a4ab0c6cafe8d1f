package errand

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
)

// recLog records the instants at which the runs of a schedule happened.
type recLog struct {
	mu sync.Mutex
	at []time.Time
}

func (l *recLog) add(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = append(l.at, t)
}

func (l *recLog) times() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.at)
}

func (l *recLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.at)
}

// recEvents collects the events of a queue (Config.OnEvent: evs.on).
type recEvents struct {
	mu  sync.Mutex
	evs []Event
}

func (r *recEvents) on(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

func (r *recEvents) get() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// recWait waits for ch to close, or for ctx to end: a task blocked in a
// failed test is then released by the queue's Close at cleanup, instead of
// deadlocking the synctest bubble.
func recWait(ctx context.Context, ch <-chan struct{}) {
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

func mustSchedule(t testing.TB, q *Queue, tr Trigger, fn func(context.Context) error, opts ...Option) *Recurring {
	t.Helper()
	r, err := q.Schedule(tr, fn, opts...)
	if err != nil {
		t.Fatalf("Schedule: %v", err)
	}
	return r
}

// expectTimes checks that got are exactly t0 plus each of want.
func expectTimes(t testing.TB, what string, t0 time.Time, got []time.Time, want ...time.Duration) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = got[i].Equal(t0.Add(want[i]))
	}
	if !ok {
		rel := make([]time.Duration, len(got))
		for i, g := range got {
			rel[i] = g.Sub(t0)
		}
		t.Fatalf("%s at %v after start, want %v", what, rel, want)
	}
}

// expectCounters compares the counters of q's Stats (not the gauges) with want's.
func expectCounters(t testing.TB, q *Queue, want Stats) {
	t.Helper()
	got := q.Stats()
	got.Workers, got.Idle, got.Queued, got.Running, got.Scheduled = 0, 0, 0, 0, 0
	if got != want {
		t.Fatalf("Stats counters = %+v, want %+v", got, want)
	}
}

// expectRecurring checks that q.Recurring() is exactly want, in that order.
func expectRecurring(t testing.TB, q *Queue, want ...*Recurring) {
	t.Helper()
	got := q.Recurring()
	if !slices.Equal(got, want) {
		t.Fatalf("Recurring() = %v, want %v", got, want)
	}
}

// evRec is the part of an event the recurring tests compare.
type evRec struct {
	Kind     EventKind
	At       time.Duration // Event.Time - t0
	Attempt  int
	Schedule string
	Name     string
	Priority int
	Err      error
	RetryAt  time.Duration // Event.RetryAt - t0, or 0
}

func evRecs(t0 time.Time, evs []Event) []evRec {
	out := make([]evRec, len(evs))
	for i, e := range evs {
		out[i] = evRec{Kind: e.Kind, At: e.Time.Sub(t0), Attempt: e.Task.Attempt, Schedule: e.Task.Schedule,
			Name: e.Task.Name, Priority: e.Task.Priority, Err: e.Err}
		if !e.RetryAt.IsZero() {
			out[i].RetryAt = e.RetryAt.Sub(t0)
		}
	}
	return out
}

func expectEvRecs(t testing.TB, got, want []evRec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events:\n%s\nwant %d:\n%s", len(got), fmtEvRecs(got), len(want), fmtEvRecs(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		errOK := (g.Err == nil) == (w.Err == nil) && (w.Err == nil || errors.Is(g.Err, w.Err))
		g.Err, w.Err = nil, nil
		if g != w || !errOK {
			t.Fatalf("event %d = %+v (err %v), want %+v (err %v)\nall:\n%s", i, g, got[i].Err, w, want[i].Err, fmtEvRecs(got))
		}
	}
}

func fmtEvRecs(evs []evRec) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %v at %v attempt %d schedule %q name %q prio %d err %v retryAt %v\n",
			e.Kind, e.At, e.Attempt, e.Schedule, e.Name, e.Priority, e.Err, e.RetryAt)
	}
	return b.String()
}

// TestRecurringEveryRunsAtExactTimes: Every(d) runs at exactly start+d,
// start+2d, ..., not a nanosecond early; Next reports each due time exactly
// and advances after each run; the ID is a UUID.
func TestRecurringEveryRunsAtExactTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 2})
		t0 := time.Now()
		const d = 90 * time.Second
		var runs recLog
		r := mustSchedule(t, q, Every(d), func(context.Context) error { runs.add(time.Now()); return nil })
		if _, err := uuid.Parse(r.ID()); err != nil {
			t.Fatalf("ID() = %q: %v", r.ID(), err)
		}
		var want []time.Duration
		for i := 1; i <= 6; i++ {
			due := t0.Add(time.Duration(i) * d)
			if got := r.Next(); !got.Equal(due) {
				t.Fatalf("before run %d: Next() = +%v, want +%v", i, got.Sub(t0), due.Sub(t0))
			}
			time.Sleep(time.Until(due) - time.Nanosecond)
			synctest.Wait()
			expectTimes(t, "runs", t0, runs.times(), want...) // not yet
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			want = append(want, time.Duration(i)*d)
			expectTimes(t, "runs", t0, runs.times(), want...)
			if got, next := r.Next(), due.Add(d); !got.Equal(next) {
				t.Fatalf("after run %d: Next() = +%v, want +%v", i, got.Sub(t0), next.Sub(t0))
			}
		}
		expectCounters(t, q, Stats{Submitted: 6, Succeeded: 6})
		expectRecurring(t, q, r)
	})
}

// TestRecurringNotCountedAsScheduledTask: Stats.Scheduled counts tasks
// waiting in the scheduler ("delayed, or backing off before a retry"), not
// live schedules, which are listed by Queue.Recurring.
func TestRecurringNotCountedAsScheduledTask(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		scheduled := func(want int) {
			t.Helper()
			if got := q.Stats().Scheduled; got != want {
				t.Fatalf("Stats.Scheduled = %d, want %d", got, want)
			}
		}
		r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error { return nil })
		scheduled(0)
		mustSubmit(t, q, func(context.Context) (int, error) { return 1, nil }, WithDelay(90*time.Second))
		scheduled(1)
		time.Sleep(time.Minute) // the schedule fires and goes back in the heap
		synctest.Wait()
		scheduled(1)
		time.Sleep(30 * time.Second) // the delayed task runs
		synctest.Wait()
		scheduled(0)
		r.Stop()
		scheduled(0)
		expectCounters(t, q, Stats{Submitted: 2, Succeeded: 2})
	})
}

// TestRecurringStop: Stop ends a schedule without touching its running run,
// which completes and resolves normally; no run happens after Stop even a
// day later; Stop is idempotent; Next is zero after Stop; the run's events
// carry the schedule's ID and an ordinary task's do not.
func TestRecurringStop(t *testing.T) {
	t.Run("while running", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var evs recEvents
			q := newQueue(t, Config{Workers: 2, OnEvent: evs.on})
			t0 := time.Now()
			release := make(chan struct{})
			var runs recLog
			var runErr atomic.Pointer[error]
			r := mustSchedule(t, q, Every(time.Minute), func(ctx context.Context) error {
				runs.add(time.Now())
				recWait(ctx, release)
				err := ctx.Err()
				runErr.Store(&err)
				return err
			}, WithName("sweep"))
			time.Sleep(time.Minute)
			synctest.Wait()
			if s := q.Stats(); s.Running != 1 {
				t.Fatalf("Stats.Running = %d, want 1", s.Running)
			}
			r.Stop()
			if got := r.Next(); !got.IsZero() {
				t.Fatalf("Next() after Stop = %v, want zero", got)
			}
			r.Stop() // idempotent
			expectRecurring(t, q)
			if got := r.Next(); !got.IsZero() {
				t.Fatalf("Next() after second Stop = %v, want zero", got)
			}

			time.Sleep(30 * time.Second)
			close(release)
			synctest.Wait()
			if p := runErr.Load(); p == nil || *p != nil {
				t.Fatalf("the running run's ctx.Err() = %v, want it to finish with a live context", p)
			}
			expectCounters(t, q, Stats{Submitted: 1, Succeeded: 1})

			time.Sleep(24 * time.Hour)
			synctest.Wait()
			expectTimes(t, "runs", t0, runs.times(), time.Minute)
			expectCounters(t, q, Stats{Submitted: 1, Succeeded: 1})
			r.Stop()

			// An ordinary task on the same queue has no Schedule.
			f := mustSubmit(t, q, func(context.Context) (int, error) { return 7, nil })
			if v, err := f.Await(context.Background()); v != 7 || err != nil {
				t.Fatalf("ordinary task: %d, %v", v, err)
			}
			synctest.Wait()
			id, after := r.ID(), 24*time.Hour+90*time.Second
			expectEvRecs(t, evRecs(t0, evs.get()), []evRec{
				{Kind: EventSubmitted, At: time.Minute, Schedule: id, Name: "sweep"},
				{Kind: EventStarted, At: time.Minute, Attempt: 1, Schedule: id, Name: "sweep"},
				{Kind: EventSucceeded, At: 90 * time.Second, Attempt: 1, Schedule: id, Name: "sweep"},
				{Kind: EventSubmitted, At: after},
				{Kind: EventStarted, At: after, Attempt: 1},
				{Kind: EventSucceeded, At: after, Attempt: 1},
			})
		})
	})
	t.Run("before the first run", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue(t, Config{Workers: 2})
			var runs recLog
			r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error { runs.add(time.Now()); return nil })
			time.Sleep(time.Minute - time.Nanosecond)
			r.Stop()
			time.Sleep(24 * time.Hour)
			synctest.Wait()
			if n := runs.len(); n != 0 {
				t.Fatalf("%d runs after Stop, want 0", n)
			}
			expectCounters(t, q, Stats{})
			expectRecurring(t, q)
			if got := r.Next(); !got.IsZero() {
				t.Fatalf("Next() after Stop = %v, want zero", got)
			}
		})
	})
}

// TestQueueRecurringListsLiveSchedulesByNextRun: Queue.Recurring lists the
// live schedules ordered by their next run, follows them as they advance, and
// drops stopped ones.
func TestQueueRecurringListsLiveSchedulesByNextRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 2})
		noop := func(context.Context) error { return nil }
		expectRecurring(t, q)
		c := mustSchedule(t, q, Every(180*time.Second), noop)
		a := mustSchedule(t, q, Every(70*time.Second), noop)
		b := mustSchedule(t, q, Every(150*time.Second), noop)
		expectRecurring(t, q, a, b, c) // due at 70s, 150s, 180s

		time.Sleep(70 * time.Second)
		synctest.Wait()
		expectRecurring(t, q, a, b, c) // 140s, 150s, 180s

		time.Sleep(70 * time.Second)
		synctest.Wait()
		expectRecurring(t, q, b, c, a) // 150s, 180s, 210s

		b.Stop()
		expectRecurring(t, q, c, a)
		time.Sleep(40 * time.Second) // 180s: c runs
		synctest.Wait()
		expectRecurring(t, q, a, c) // 210s, 360s
		a.Stop()
		c.Stop()
		expectRecurring(t, q)
		expectCounters(t, q, Stats{Submitted: 3, Succeeded: 3}) // a at 70s and 140s, c at 180s
	})
}

// TestRecurringCronAcrossDST: a cron schedule through the queue on the 2026
// DST changes of America/New_York. A fixed-time job skipped by spring-forward
// runs once, at 03:00 EDT; one repeated by fall-back runs once, at its first
// occurrence (01:30 EDT); an hourly job follows the clock: 23 runs on
// 2026-03-08 and 25 on 2026-11-01, one per real hour.
func TestRecurringCronAcrossDST(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	hourly := func(from string, n int) []time.Time {
		ts := make([]time.Time, n)
		for i := range ts {
			ts[i] = at(from).Add(time.Duration(i) * time.Hour)
		}
		return ts
	}
	for _, tc := range []struct {
		name     string
		expr     string
		from, to string // the window: schedule at from, stop at to
		day      string // the DST day in New York
		want     []time.Time
		wantDay  int // runs on day
	}{
		{"spring forward 02:30", "30 2 * * *", "2026-03-07T12:00:00-05:00", "2026-03-09T12:00:00-04:00", "2026-03-08",
			[]time.Time{at("2026-03-08T03:00:00-04:00"), at("2026-03-09T02:30:00-04:00")}, 1},
		{"spring forward 01:30", "30 1 * * *", "2026-03-07T12:00:00-05:00", "2026-03-09T12:00:00-04:00", "2026-03-08",
			[]time.Time{at("2026-03-08T01:30:00-05:00"), at("2026-03-09T01:30:00-04:00")}, 1},
		{"fall back 01:30", "30 1 * * *", "2026-10-31T12:00:00-04:00", "2026-11-02T12:00:00-05:00", "2026-11-01",
			[]time.Time{at("2026-11-01T01:30:00-04:00"), at("2026-11-02T01:30:00-05:00")}, 1},
		{"fall back 02:30", "30 2 * * *", "2026-10-31T12:00:00-04:00", "2026-11-02T12:00:00-05:00", "2026-11-01",
			[]time.Time{at("2026-11-01T02:30:00-05:00"), at("2026-11-02T02:30:00-05:00")}, 1},
		{"spring forward hourly", "0 * * * *", "2026-03-07T23:30:00-05:00", "2026-03-08T23:30:00-04:00", "2026-03-08",
			hourly("2026-03-08T00:00:00-05:00", 23), 23},
		{"fall back hourly", "0 * * * *", "2026-10-31T23:30:00-04:00", "2026-11-01T23:30:00-05:00", "2026-11-01",
			hourly("2026-11-01T00:00:00-04:00", 25), 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				time.Sleep(time.Until(at(tc.from))) // from 2000-01-01 to 2026
				q := newQueue(t, Config{Workers: 2})
				tr, err := ParseCron("CRON_TZ=America/New_York " + tc.expr)
				if err != nil {
					t.Fatal(err)
				}
				var runs recLog
				r := mustSchedule(t, q, tr, func(context.Context) error { runs.add(time.Now()); return nil })
				if got := r.Next(); !got.Equal(tc.want[0]) {
					t.Fatalf("Next() = %v, want %v", got.In(ny), tc.want[0].In(ny))
				}
				time.Sleep(time.Until(at(tc.to)))
				synctest.Wait()
				r.Stop()
				got := runs.times()
				if !slices.EqualFunc(got, tc.want, time.Time.Equal) {
					t.Fatalf("runs:\n%v\nwant:\n%v", fmtNY(got, ny), fmtNY(tc.want, ny))
				}
				onDay := 0
				for _, g := range got {
					if g.In(ny).Format(time.DateOnly) == tc.day {
						onDay++
					}
				}
				if onDay != tc.wantDay {
					t.Fatalf("%d runs on %s, want %d", onDay, tc.day, tc.wantDay)
				}
				expectCounters(t, q, Stats{Submitted: uint64(len(tc.want)), Succeeded: uint64(len(tc.want))})
			})
		})
	}
}

func fmtNY(ts []time.Time, ny *time.Location) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString("  " + t.In(ny).Format("2006-01-02 15:04:05 MST") + "\n")
	}
	return b.String()
}

// TestRecurringOverlapSkipsWhileRunning: a run that takes longer than the
// interval makes the due times that find it running skip, each counted in
// Stats.Skipped and reported as EventSkipped with the schedule's ID; once it
// finishes, the next due time runs again.
func TestRecurringOverlapSkipsWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var evs recEvents
		q := newQueue(t, Config{Workers: 2, OnEvent: evs.on})
		t0 := time.Now()
		release := make(chan struct{})
		var runs recLog
		r := mustSchedule(t, q, Every(time.Minute), func(ctx context.Context) error {
			if runs.add(time.Now()); runs.len() == 1 {
				recWait(ctx, release)
			}
			return nil
		}, WithName("report"), WithPriority(2))
		time.Sleep(4*time.Minute + 30*time.Second) // due at 1m (runs), 2m, 3m, 4m (skipped)
		synctest.Wait()
		expectCounters(t, q, Stats{Submitted: 1, Skipped: 3})
		close(release) // 4m30s
		synctest.Wait()
		expectCounters(t, q, Stats{Submitted: 1, Succeeded: 1, Skipped: 3})
		time.Sleep(30 * time.Second) // 5m
		synctest.Wait()
		r.Stop()
		expectTimes(t, "runs", t0, runs.times(), time.Minute, 5*time.Minute)
		expectCounters(t, q, Stats{Submitted: 2, Succeeded: 2, Skipped: 3})
		id := r.ID()
		expectEvRecs(t, evRecs(t0, evs.get()), []evRec{
			{Kind: EventSubmitted, At: time.Minute, Schedule: id, Name: "report", Priority: 2},
			{Kind: EventStarted, At: time.Minute, Attempt: 1, Schedule: id, Name: "report", Priority: 2},
			{Kind: EventSkipped, At: 2 * time.Minute, Schedule: id, Name: "report", Priority: 2},
			{Kind: EventSkipped, At: 3 * time.Minute, Schedule: id, Name: "report", Priority: 2},
			{Kind: EventSkipped, At: 4 * time.Minute, Schedule: id, Name: "report", Priority: 2},
			{Kind: EventSucceeded, At: 4*time.Minute + 30*time.Second, Attempt: 1, Schedule: id, Name: "report", Priority: 2},
			{Kind: EventSubmitted, At: 5 * time.Minute, Schedule: id, Name: "report", Priority: 2},
			{Kind: EventStarted, At: 5 * time.Minute, Attempt: 1, Schedule: id, Name: "report", Priority: 2},
			{Kind: EventSucceeded, At: 5 * time.Minute, Attempt: 1, Schedule: id, Name: "report", Priority: 2},
		})
		for _, e := range evs.get() {
			if e.Kind == EventSkipped && e.Task.ID != "" {
				t.Fatalf("EventSkipped has Task.ID %q, want none (no task was made)", e.Task.ID)
			}
		}
	})
}

// TestRecurringOverlapSkipsWhileQueued: a run still waiting for a worker also
// makes due times skip. With the only worker held for ten intervals, exactly
// one run is queued (not ten), and it runs when the worker frees.
func TestRecurringOverlapSkipsWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		t0 := time.Now()
		gate := make(chan struct{})
		blocker := mustSubmit(t, q, func(ctx context.Context) (int, error) { recWait(ctx, gate); return 0, nil })
		var runs recLog
		r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error { runs.add(time.Now()); return nil })
		time.Sleep(10*time.Minute + 30*time.Second) // due at 1m (queued), 2m..10m (skipped)
		synctest.Wait()
		if s := q.Stats(); s.Queued != 1 || s.Running != 1 || s.Skipped != 9 || s.Submitted != 2 {
			t.Fatalf("worker held 10 intervals: Stats = %+v, want Queued 1, Running 1, Skipped 9, Submitted 2", s)
		}
		close(gate)
		if _, err := blocker.Await(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		expectTimes(t, "runs", t0, runs.times(), 10*time.Minute+30*time.Second)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		r.Stop()
		expectTimes(t, "runs", t0, runs.times(), 10*time.Minute+30*time.Second, 11*time.Minute)
		expectCounters(t, q, Stats{Submitted: 3, Succeeded: 3, Skipped: 9})
	})
}

// TestRecurringMissedRunsCoalesce: when the process stalls (a suspended VM:
// the timer fires late and the clock has jumped), the due times missed
// coalesce into one run at once, and the schedule continues from now, not
// from the missed times. A stall during a long run skips once, not per
// missed time.
func TestRecurringMissedRunsCoalesce(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue(t, Config{Workers: 2})
			var jump atomic.Int64 // how far the queue's clock is ahead of the timers
			q.now = func() time.Time { return time.Now().Add(time.Duration(jump.Load())) }
			t0 := time.Now()
			var runs recLog
			r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error { runs.add(q.now()); return nil })
			time.Sleep(30 * time.Second)
			jump.Store(int64(10 * time.Minute)) // the clock is at 10m30s; due times 1m..10m are missed
			time.Sleep(30 * time.Second)        // the timer, set for 1m, fires at 11m on the clock
			synctest.Wait()
			expectTimes(t, "runs", t0, runs.times(), 11*time.Minute)
			if got, want := r.Next(), t0.Add(12*time.Minute); !got.Equal(want) {
				t.Fatalf("Next() = +%v, want +%v", got.Sub(t0), want.Sub(t0))
			}
			time.Sleep(time.Minute)
			synctest.Wait()
			r.Stop()
			expectTimes(t, "runs", t0, runs.times(), 11*time.Minute, 12*time.Minute)
			expectCounters(t, q, Stats{Submitted: 2, Succeeded: 2})
		})
	})
	t.Run("running", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var evs recEvents
			q := newQueue(t, Config{Workers: 2, OnEvent: evs.on})
			var jump atomic.Int64
			q.now = func() time.Time { return time.Now().Add(time.Duration(jump.Load())) }
			t0 := time.Now()
			release := make(chan struct{})
			var runs recLog
			r := mustSchedule(t, q, Every(time.Minute), func(ctx context.Context) error {
				if runs.add(q.now()); runs.len() == 1 {
					recWait(ctx, release)
				}
				return nil
			})
			time.Sleep(90 * time.Second) // run 1 started at 1m
			jump.Store(int64(10 * time.Minute))
			time.Sleep(30 * time.Second) // the timer for 2m fires at 12m on the clock: one skip
			synctest.Wait()
			expectCounters(t, q, Stats{Submitted: 1, Skipped: 1})
			if got, want := r.Next(), t0.Add(13*time.Minute); !got.Equal(want) {
				t.Fatalf("Next() = +%v, want +%v", got.Sub(t0), want.Sub(t0))
			}
			close(release)
			time.Sleep(time.Minute)
			synctest.Wait()
			r.Stop()
			expectTimes(t, "runs", t0, runs.times(), time.Minute, 13*time.Minute)
			expectCounters(t, q, Stats{Submitted: 2, Succeeded: 2, Skipped: 1})
			skips := 0
			for _, e := range evs.get() {
				if e.Kind == EventSkipped {
					skips++
					if e.Task.Schedule != r.ID() || !e.Time.Equal(t0.Add(12*time.Minute)) {
						t.Fatalf("EventSkipped = %+v, want schedule %s at +12m", e, r.ID())
					}
				}
			}
			if skips != 1 {
				t.Fatalf("%d EventSkipped, want 1", skips)
			}
		})
	})
}

// TestRecurringRetry: a failing run is retried by Config.Retry or the
// schedule's WithRetry, as one task: its events carry the schedule's ID, its
// name and priority and the attempt; middleware sees each attempt. A run
// backing off counts as live: the due time that finds it retrying skips.
func TestRecurringRetry(t *testing.T) {
	policy := RetryPolicy{MaxAttempts: 3, Backoff: Constant(45 * time.Second)}
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name string
		cfg  RetryPolicy
		opts []Option
	}{
		{"Config.Retry", policy, nil},
		{"WithRetry", RetryPolicy{}, []Option{WithRetry(policy)}},
		{"WithRetry overrides Config.Retry", RetryPolicy{MaxAttempts: 1}, []Option{WithRetry(policy)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var evs recEvents
				type seen struct {
					schedule, name string
					attempt        int
					at             time.Duration
				}
				var mu sync.Mutex
				var mw []seen
				var t0 time.Time
				q := newQueue(t, Config{Workers: 2, Retry: tc.cfg, OnEvent: evs.on, Middleware: []Middleware{
					func(next Handler) Handler {
						return func(ctx context.Context, ti TaskInfo) error {
							mu.Lock()
							mw = append(mw, seen{ti.Schedule, ti.Name, ti.Attempt, time.Since(t0)})
							mu.Unlock()
							return next(ctx, ti)
						}
					},
				}})
				t0 = time.Now()
				var calls atomic.Int32
				opts := append([]Option{WithName("sync"), WithPriority(3)}, tc.opts...)
				r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error {
					if calls.Add(1) <= 2 {
						return errBoom
					}
					return nil
				}, opts...)
				// 1m: attempt 1 fails; 1m45s: attempt 2 fails; 2m: skipped
				// (retrying); 2m30s: attempt 3 succeeds; 3m: the next run.
				time.Sleep(3*time.Minute + 30*time.Second)
				synctest.Wait()
				r.Stop()
				expectCounters(t, q, Stats{Submitted: 2, Succeeded: 2, Retried: 2, Skipped: 1})
				id, m := r.ID(), time.Minute
				ev := func(k EventKind, at time.Duration, attempt int) evRec {
					return evRec{Kind: k, At: at, Attempt: attempt, Schedule: id, Name: "sync", Priority: 3}
				}
				retrying := func(at time.Duration, attempt int, retryAt time.Duration) evRec {
					e := ev(EventRetrying, at, attempt)
					e.Err, e.RetryAt = errBoom, retryAt
					return e
				}
				expectEvRecs(t, evRecs(t0, evs.get()), []evRec{
					ev(EventSubmitted, m, 0),
					ev(EventStarted, m, 1),
					retrying(m, 1, m+45*time.Second),
					ev(EventQueued, m+45*time.Second, 1),
					ev(EventStarted, m+45*time.Second, 2),
					retrying(m+45*time.Second, 2, 2*m+30*time.Second),
					ev(EventSkipped, 2*m, 0),
					ev(EventQueued, 2*m+30*time.Second, 2),
					ev(EventStarted, 2*m+30*time.Second, 3),
					ev(EventSucceeded, 2*m+30*time.Second, 3),
					ev(EventSubmitted, 3*m, 0),
					ev(EventStarted, 3*m, 1),
					ev(EventSucceeded, 3*m, 1),
				})
				// The three attempts of run 1 are one task.
				evsGot := evs.get()
				if a, b := evsGot[0].Task.ID, evsGot[9].Task.ID; a == "" || a != b || a == evsGot[10].Task.ID {
					t.Fatalf("task IDs: run 1 %q / %q, run 2 %q: want run 1's attempts to share one ID, run 2 another", a, b, evsGot[10].Task.ID)
				}
				mu.Lock()
				defer mu.Unlock()
				want := []seen{{id, "sync", 1, m}, {id, "sync", 2, m + 45*time.Second}, {id, "sync", 3, 2*m + 30*time.Second}, {id, "sync", 1, 3 * m}}
				if !slices.Equal(mw, want) {
					t.Fatalf("middleware saw %+v, want %+v", mw, want)
				}
			})
		})
	}
}

// TestRecurringTimeout: WithTimeout (or Config.Timeout) bounds each attempt
// of a run: each attempt's context has its own deadline and ends with
// context.DeadlineExceeded exactly then.
func TestRecurringTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     time.Duration
		opts    []Option
		timeout time.Duration
	}{
		{"WithTimeout", 0, []Option{WithTimeout(5 * time.Second)}, 5 * time.Second},
		{"Config.Timeout", 7 * time.Second, nil, 7 * time.Second},
		{"WithTimeout overrides Config.Timeout", time.Hour, []Option{WithTimeout(3 * time.Second)}, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var evs recEvents
				q := newQueue(t, Config{Workers: 2, Timeout: tc.cfg, OnEvent: evs.on})
				t0 := time.Now()
				var starts, deadlines, ends recLog
				opts := append([]Option{WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: Constant(time.Second)})}, tc.opts...)
				r := mustSchedule(t, q, Every(time.Minute), func(ctx context.Context) error {
					starts.add(time.Now())
					dl, ok := ctx.Deadline()
					if !ok {
						return Permanent(errors.New("no deadline"))
					}
					deadlines.add(dl)
					<-ctx.Done()
					ends.add(time.Now())
					return ctx.Err()
				}, opts...)
				time.Sleep(90 * time.Second)
				synctest.Wait()
				r.Stop()
				d, m := tc.timeout, time.Minute
				expectTimes(t, "attempt starts", t0, starts.times(), m, m+d+time.Second)
				expectTimes(t, "attempt deadlines", t0, deadlines.times(), m+d, m+2*d+time.Second)
				expectTimes(t, "attempt ends", t0, ends.times(), m+d, m+2*d+time.Second)
				expectCounters(t, q, Stats{Submitted: 1, Failed: 1, Retried: 1})
				all := evs.get()
				last := all[len(all)-1]
				if last.Kind != EventFailed || !errors.Is(last.Err, context.DeadlineExceeded) || last.Task.Schedule != r.ID() || last.Task.Attempt != 2 {
					t.Fatalf("last event = %v attempt %d schedule %q err %v, want failed attempt 2 schedule %q with DeadlineExceeded",
						last.Kind, last.Task.Attempt, last.Task.Schedule, last.Err, r.ID())
				}
			})
		})
	}
}

// TestRecurringPriority: under OrderPriority a due run competes by the
// schedule's WithPriority with the tasks already waiting; Stop does not touch
// a run already queued.
func TestRecurringPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1, Order: OrderPriority})
		gate := make(chan struct{})
		mustSubmit(t, q, func(ctx context.Context) (int, error) { recWait(ctx, gate); return 0, nil })
		var mu sync.Mutex
		var order []string
		record := func(s string) func(context.Context) error {
			return func(context.Context) error {
				mu.Lock()
				defer mu.Unlock()
				order = append(order, s)
				return nil
			}
		}
		for _, p := range []int{0, 1} {
			if err := q.Go(context.Background(), record(fmt.Sprintf("task %d", p)), WithPriority(p)); err != nil {
				t.Fatal(err)
			}
		}
		hi := mustSchedule(t, q, Every(time.Minute), record("schedule 5"), WithPriority(5))
		lo := mustSchedule(t, q, Every(time.Minute), record("schedule -1"), WithPriority(-1))
		time.Sleep(90 * time.Second) // both runs queued at 1m
		synctest.Wait()
		if s := q.Stats(); s.Queued != 4 {
			t.Fatalf("Stats.Queued = %d, want 4", s.Queued)
		}
		hi.Stop()
		lo.Stop()
		close(gate)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if want := []string{"schedule 5", "task 1", "task 0", "schedule -1"}; !slices.Equal(order, want) {
			t.Fatalf("order %q, want %q", order, want)
		}
		expectCounters(t, q, Stats{Submitted: 5, Succeeded: 5})
	})
}

// triggerFunc adapts a function to Trigger.
type triggerFunc func(after time.Time) time.Time

func (f triggerFunc) Next(after time.Time) time.Time { return f(after) }

// TestScheduleBadInput: invalid arguments and options that do not apply to a
// schedule are errors, and add nothing.
func TestScheduleBadInput(t *testing.T) {
	fn := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name string
		tr   Trigger
		fn   func(context.Context) error
		opts []Option
	}{
		{"nil trigger", nil, fn, nil},
		{"nil fn", Every(time.Second), nil, nil},
		{"Every(0)", Every(0), fn, nil},
		{"Every(-1)", Every(-1), fn, nil},
		{"zero first time", triggerFunc(func(time.Time) time.Time { return time.Time{} }), fn, nil},
		{"WithDelay", Every(time.Second), fn, []Option{WithDelay(time.Second)}},
		{"WithRunAt", Every(time.Second), fn, []Option{WithRunAt(time.Now().Add(time.Hour))}},
		{"WithKey", Every(time.Second), fn, []Option{WithKey("k")}},
		{"WithLinkedContext", Every(time.Second), fn, []Option{WithLinkedContext()}},
		{"invalid option", Every(time.Second), fn, []Option{WithTimeout(-1)}},
		{"zero option", Every(time.Second), fn, []Option{{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t, Config{Workers: 1})
			r, err := q.Schedule(tc.tr, tc.fn, tc.opts...)
			if err == nil || r != nil || errors.Is(err, ErrClosed) {
				t.Fatalf("Schedule = %v, %v; want nil and an error (not ErrClosed)", r, err)
			}
			if !strings.HasPrefix(err.Error(), "errand: ") {
				t.Fatalf("error %q does not start with \"errand: \"", err)
			}
			expectRecurring(t, q)
			if s := q.Stats(); s != (Stats{}) {
				t.Fatalf("Stats = %+v, want zero", s)
			}
		})
	}
	t.Run("nil queue", func(t *testing.T) {
		var q *Queue
		if r, err := q.Schedule(Every(time.Second), fn); err == nil || r != nil {
			t.Fatalf("Schedule on nil queue = %v, %v; want an error", r, err)
		}
	})
}

// TestScheduleFirstTimeNotInFuture: "t's first time must be in the future":
// a Trigger whose first time is now or past is an error, like one that
// names no time at all, and nothing runs.
func TestScheduleFirstTimeNotInFuture(t *testing.T) {
	for _, tc := range []struct {
		name string
		next func(after time.Time) time.Time
	}{
		{"now", func(after time.Time) time.Time { return after }},
		{"an hour ago", func(after time.Time) time.Time { return after.Add(-time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, Config{Workers: 1})
				var runs atomic.Int32
				r, err := q.Schedule(triggerFunc(tc.next), func(context.Context) error { runs.Add(1); return nil })
				synctest.Wait()
				if err == nil || r != nil {
					t.Fatalf("Schedule = %v, %v (%d runs); want an error", r, err, runs.Load())
				}
				expectCounters(t, q, Stats{})
			})
		})
	}
}

// TestScheduleClosed: Schedule after Shutdown or Close returns ErrClosed.
func TestScheduleClosed(t *testing.T) {
	for _, name := range []string{"Shutdown", "Close"} {
		t.Run(name, func(t *testing.T) {
			q := newQueue(t, Config{Workers: 1})
			if name == "Shutdown" {
				if err := q.Shutdown(context.Background()); err != nil {
					t.Fatal(err)
				}
			} else {
				q.Close()
			}
			r, err := q.Schedule(Every(time.Second), func(context.Context) error { return nil })
			if !errors.Is(err, ErrClosed) || r != nil {
				t.Fatalf("Schedule after %s = %v, %v; want ErrClosed", name, r, err)
			}
			expectRecurring(t, q)
		})
	}
}

// TestRecurringTriggerNotMovingForward: a Trigger whose Next does not return
// a time after now (stuck on one time, or going backwards) must not spin the
// timer goroutine: the schedule stops after its one run, an error is logged
// if there is a Logger, and the queue keeps working.
func TestRecurringTriggerNotMovingForward(t *testing.T) {
	for _, tc := range []struct {
		name   string
		next   func(t0, after time.Time, call int32) time.Time
		logger bool
	}{
		{"stuck", func(t0, _ time.Time, _ int32) time.Time { return t0.Add(time.Minute) }, true},
		{"stuck no logger", func(t0, _ time.Time, _ int32) time.Time { return t0.Add(time.Minute) }, false},
		{"backwards", func(_, after time.Time, call int32) time.Time {
			if call == 1 {
				return after.Add(time.Minute)
			}
			return after.Add(-time.Hour)
		}, true},
		{"panics", func(_, after time.Time, call int32) time.Time {
			if call == 1 {
				return after.Add(time.Minute)
			}
			panic("broken trigger")
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs logBuffer
				cfg := Config{Workers: 2}
				if tc.logger {
					cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				}
				q := newQueue(t, cfg)
				t0 := time.Now()
				var calls atomic.Int32
				var runs recLog
				r := mustSchedule(t, q, triggerFunc(func(after time.Time) time.Time {
					return tc.next(t0, after, calls.Add(1))
				}), func(context.Context) error { runs.add(time.Now()); return nil })
				time.Sleep(24 * time.Hour) // a spinning timer goroutine would never let the fake clock move
				synctest.Wait()
				expectTimes(t, "runs", t0, runs.times(), time.Minute)
				if got := r.Next(); !got.IsZero() {
					t.Fatalf("Next() = %v, want zero: the schedule should have stopped", got)
				}
				expectRecurring(t, q)
				if n := calls.Load(); n > 3 {
					t.Fatalf("Trigger.Next called %d times, want at most 3", n)
				}
				log := logs.String()
				if tc.logger {
					if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "schedule stopped") || !strings.Contains(log, r.ID()) {
						t.Fatalf("log %q: want an error naming the stopped schedule %s", log, r.ID())
					}
				}
				f := mustSubmit(t, q, func(context.Context) (int, error) { return 5, nil })
				if v, err := f.Await(context.Background()); v != 5 || err != nil {
					t.Fatalf("the queue after: %d, %v", v, err)
				}
				expectCounters(t, q, Stats{Submitted: 2, Succeeded: 2})
			})
		})
	}
}

// TestScheduleTriggerPanicsAtOnce: a Trigger that panics on its first call
// makes Schedule return an error holding the *PanicError, and adds nothing.
func TestScheduleTriggerPanicsAtOnce(t *testing.T) {
	q := newQueue(t, Config{})
	r, err := q.Schedule(triggerFunc(func(time.Time) time.Time { panic("broken trigger") }),
		func(context.Context) error { return nil })
	var pe *PanicError
	if r != nil || !errors.As(err, &pe) || pe.Value != "broken trigger" {
		t.Fatalf("Schedule = %v, %v; want an error holding the *PanicError", r, err)
	}
	expectRecurring(t, q)
}

// TestRecurringTriggerEnds: a Trigger that returns the zero time after a few
// runs ends the schedule, quietly.
func TestRecurringTriggerEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs logBuffer
		q := newQueue(t, Config{Workers: 2, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		t0 := time.Now()
		var calls atomic.Int32
		var runs recLog
		r := mustSchedule(t, q, triggerFunc(func(after time.Time) time.Time {
			if calls.Add(1) > 3 {
				return time.Time{}
			}
			return after.Add(time.Minute)
		}), func(context.Context) error { runs.add(time.Now()); return nil })
		time.Sleep(2*time.Minute + 30*time.Second)
		synctest.Wait()
		expectRecurring(t, q, r)
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		expectTimes(t, "runs", t0, runs.times(), time.Minute, 2*time.Minute, 3*time.Minute)
		if got := r.Next(); !got.IsZero() {
			t.Fatalf("Next() = %v, want zero", got)
		}
		expectRecurring(t, q)
		expectCounters(t, q, Stats{Submitted: 3, Succeeded: 3})
		if log := logs.String(); log != "" {
			t.Fatalf("logged %q, want nothing: the end of a schedule is not an error", log)
		}
		r.Stop()
	})
}

// TestRecurringShutdownAndClose: Shutdown and Close stop every schedule
// (Recurring empty, Next zero, no run after). A run in progress during
// Shutdown completes; Close cancels it with ErrClosed.
func TestRecurringShutdownAndClose(t *testing.T) {
	for _, name := range []string{"Shutdown", "Close"} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var evs recEvents
				q := newQueue(t, Config{Workers: 2, OnEvent: evs.on})
				t0 := time.Now()
				release := make(chan struct{})
				var runs recLog
				var runErr atomic.Pointer[error]
				noop := func(context.Context) error { runs.add(time.Now()); return nil }
				long := mustSchedule(t, q, Every(time.Minute), func(ctx context.Context) error {
					runs.add(time.Now())
					var err error
					select {
					case <-release:
					case <-ctx.Done():
						err = ctx.Err()
					}
					runErr.Store(&err)
					return err
				})
				cron, err := ParseCron("@hourly")
				if err != nil {
					t.Fatal(err)
				}
				rs := []*Recurring{long, mustSchedule(t, q, Every(5*time.Minute), noop), mustSchedule(t, q, cron, noop)}
				time.Sleep(90 * time.Second) // the long run started at 1m
				synctest.Wait()

				var closeErr error
				if name == "Shutdown" {
					done := make(chan error, 1)
					go func() { done <- q.Shutdown(context.Background()) }()
					synctest.Wait()
					select {
					case err := <-done:
						t.Fatalf("Shutdown returned %v with a run in progress", err)
					default:
					}
					expectRecurring(t, q)
					time.Sleep(30 * time.Second)
					close(release)
					closeErr = <-done
				} else {
					closeErr = q.Close()
				}
				if closeErr != nil {
					t.Fatalf("%s: %v", name, closeErr)
				}
				expectRecurring(t, q)
				for i, r := range rs {
					if got := r.Next(); !got.IsZero() {
						t.Fatalf("schedule %d: Next() = %v after %s, want zero", i, got, name)
					}
					r.Stop() // harmless
				}
				time.Sleep(24 * time.Hour)
				synctest.Wait()
				expectTimes(t, "runs", t0, runs.times(), time.Minute)
				p := runErr.Load()
				if p == nil {
					t.Fatal("the run in progress did not return")
				}
				last := evs.get()[len(evs.get())-1]
				if name == "Shutdown" {
					if *p != nil || last.Kind != EventSucceeded || !last.Time.Equal(t0.Add(2*time.Minute)) {
						t.Fatalf("run in progress: ctx err %v, last event %v at +%v; want it to complete at +2m", *p, last.Kind, last.Time.Sub(t0))
					}
					expectCounters(t, q, Stats{Submitted: 1, Succeeded: 1})
				} else {
					if !errors.Is(*p, context.Canceled) || last.Kind != EventCanceled || !errors.Is(last.Err, ErrClosed) {
						t.Fatalf("run in progress: ctx err %v, last event %v (%v); want canceled with ErrClosed", *p, last.Kind, last.Err)
					}
					expectCounters(t, q, Stats{Submitted: 1, Canceled: 1})
				}
				if last.Task.Schedule != long.ID() {
					t.Fatalf("last event's schedule %q, want %q", last.Task.Schedule, long.ID())
				}
			})
		})
	}
}

// TestRecurringShutdownRunsQueuedRun: Shutdown drains a run that is waiting
// for a worker, like any queued task, and then no more runs are made.
func TestRecurringShutdownRunsQueuedRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		t0 := time.Now()
		gate := make(chan struct{})
		mustSubmit(t, q, func(ctx context.Context) (int, error) { recWait(ctx, gate); return 0, nil })
		var runs recLog
		r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error { runs.add(time.Now()); return nil })
		time.Sleep(90 * time.Second)
		done := make(chan error, 1)
		go func() { done <- q.Shutdown(context.Background()) }()
		synctest.Wait()
		if got := r.Next(); !got.IsZero() {
			t.Fatalf("Next() during Shutdown = %v, want zero", got)
		}
		time.Sleep(time.Hour)
		close(gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		expectTimes(t, "runs", t0, runs.times(), time.Hour+90*time.Second)
		expectCounters(t, q, Stats{Submitted: 2, Succeeded: 2})
	})
}

// TestRecurringShutdownDropsRetryingRun: Shutdown resolves a run backing
// off before a retry with ErrClosed, like any retrying task, without waiting
// for its back-off.
func TestRecurringShutdownDropsRetryingRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var evs recEvents
		q := newQueue(t, Config{Workers: 1, OnEvent: evs.on})
		t0 := time.Now()
		errBoom := errors.New("boom")
		r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error { return errBoom },
			WithRetry(RetryPolicy{MaxAttempts: 5, Backoff: Constant(time.Hour)}))
		time.Sleep(2*time.Minute + 30*time.Second) // 1m: fails, backs off for 1h; 2m: skipped
		if err := q.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if now := time.Since(t0); now != 2*time.Minute+30*time.Second {
			t.Fatalf("Shutdown returned at +%v, want at once", now)
		}
		expectCounters(t, q, Stats{Submitted: 1, Canceled: 1, Retried: 1, Skipped: 1})
		all := evs.get()
		last := all[len(all)-1]
		if last.Kind != EventCanceled || !errors.Is(last.Err, ErrClosed) || last.Task.Schedule != r.ID() {
			t.Fatalf("last event %v (%v) schedule %q, want canceled with ErrClosed, schedule %q", last.Kind, last.Err, last.Task.Schedule, r.ID())
		}
	})
}

// TestRecurringStopFromRun: a run may stop its own schedule; no run
// follows, and the run itself completes.
func TestRecurringStopFromRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 2})
		t0 := time.Now()
		var self atomic.Pointer[Recurring]
		var runs recLog
		r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error {
			if runs.add(time.Now()); runs.len() == 3 {
				self.Load().Stop()
			}
			return nil
		})
		self.Store(r)
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		expectTimes(t, "runs", t0, runs.times(), time.Minute, 2*time.Minute, 3*time.Minute)
		expectRecurring(t, q)
		expectCounters(t, q, Stats{Submitted: 3, Succeeded: 3})
	})
}

// TestRecurringPanickingRun: a run that panics is a failed task (a
// *PanicError, counted in Panicked) and the schedule goes on.
func TestRecurringPanickingRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var evs recEvents
		q := newQueue(t, Config{Workers: 1, OnEvent: evs.on})
		var calls atomic.Int32
		r := mustSchedule(t, q, Every(time.Minute), func(context.Context) error {
			if calls.Add(1) == 1 {
				panic("kaboom")
			}
			return nil
		})
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		r.Stop()
		expectCounters(t, q, Stats{Submitted: 2, Succeeded: 1, Failed: 1, Panicked: 1})
		var pe *PanicError
		for _, e := range evs.get() {
			if e.Kind == EventFailed {
				if !errors.As(e.Err, &pe) || pe.Value != "kaboom" || !e.Panicked || e.Task.Schedule != r.ID() {
					t.Fatalf("failed event: %+v, want a *PanicError of schedule %s", e, r.ID())
				}
			}
		}
		if pe == nil {
			t.Fatal("no EventFailed for the panicking run")
		}
	})
}

// TestRecurringConcurrentUse: Schedule, Stop, Next and Recurring from many
// goroutines while schedules fire: no race (under -race), nothing lost, and
// once all are stopped no run is live and every run succeeded.
func TestRecurringConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 4})
		var runs atomic.Int64
		fn := func(context.Context) error { runs.Add(1); return nil }
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				var mine []*Recurring
				for i := range 50 {
					r, err := q.Schedule(Every(time.Duration(g+1)*time.Second+time.Duration(i)*time.Millisecond), fn)
					if err != nil {
						t.Errorf("Schedule: %v", err) // not Fatal: this is not the test's goroutine
						return
					}
					mine = append(mine, r)
					if i%10 == 9 {
						time.Sleep(time.Duration(g+1) * 700 * time.Millisecond)
						_ = q.Recurring()
					}
				}
				for i, r := range mine {
					if r.Next().IsZero() {
						t.Errorf("schedule %d/%d stopped by itself", g, i)
					}
					r.Stop()
					if i%7 == 0 {
						time.Sleep(300 * time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		expectRecurring(t, q)
		time.Sleep(time.Hour)
		synctest.Wait()
		s := q.Stats()
		if s.Submitted == 0 || s.Succeeded != s.Submitted || uint64(runs.Load()) != s.Submitted || s.Skipped != 0 || s.Scheduled != 0 {
			t.Fatalf("Stats = %+v, %d runs: want every submitted run to have succeeded, none skipped", s, runs.Load())
		}
	})
}

// TestScheduleManyCostNoGoroutines: 100,000 live schedules wait in the
// scheduler's heap, served by one timer goroutine: no goroutine (and no
// worker) each. Queue.Recurring lists them all, by next run.
func TestScheduleManyCostNoGoroutines(t *testing.T) {
	const n = 100_000
	base := runtime.NumGoroutine()
	q := newQueue(t, Config{})
	fn := func(context.Context) error { return nil }
	rs := make([]*Recurring, n)
	for i := range rs {
		rs[i] = mustSchedule(t, q, Every(time.Hour+time.Duration(i)*time.Millisecond), fn)
	}
	if g := runtime.NumGoroutine(); g > base+2 {
		t.Fatalf("%d goroutines with %d schedules, %d before: want at most 2 more (the timer goroutine)", g, n, base)
	}
	if s := q.Stats(); s != (Stats{}) {
		t.Fatalf("Stats = %+v, want zero: no worker, no task", s)
	}
	// Each was made later and due later than the one before.
	expectRecurring(t, q, rs...)
	for _, r := range rs[:n/2] {
		r.Stop()
	}
	expectRecurring(t, q, rs[n/2:]...)
	q.Close()
	expectRecurring(t, q)
	if got := rs[n-1].Next(); !got.IsZero() {
		t.Fatalf("Next() after Close = %v, want zero", got)
	}
}

// BenchmarkSchedule measures adding one schedule to a queue that keeps all
// of them live, and reports the heap held per live schedule.
func BenchmarkSchedule(b *testing.B) {
	q, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	fn := func(context.Context) error { return nil }
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := q.Schedule(Every(time.Hour+time.Duration(i)*time.Millisecond), fn); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := len(q.Recurring()); got != b.N {
		b.Fatalf("%d live schedules, want %d", got, b.N)
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "B/schedule")
}

// TestRecurringAccessors: Name and Trigger report what Schedule was given.
func TestRecurringAccessors(t *testing.T) {
	q := newQueue(t, Config{})
	tr := Every(time.Hour)
	r := mustSchedule(t, q, tr, func(context.Context) error { return nil }, WithName("cleanup"))
	if r.Name() != "cleanup" || r.Trigger() != tr {
		t.Fatalf("Name, Trigger = %q, %v; want cleanup, %v", r.Name(), r.Trigger(), tr)
	}
}
