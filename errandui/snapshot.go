package errandui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/errandgo/errand"
)

// state is what /api/state and each message of /events carry: the whole
// page's data, bounded by Options.MaxTasks and Options.History. Times are
// Unix milliseconds.
type state struct {
	Title      string     `json:"title"`
	Now        int64      `json:"now"`
	Attached   bool       `json:"attached"` // a queue is attached
	Actions    bool       `json:"actions"`  // Options.EnableActions
	Stats      stats      `json:"stats"`
	Throughput throughput `json:"throughput"`
	Queued     taskList   `json:"queued"`
	Running    taskList   `json:"running"`
	Scheduled  taskList   `json:"scheduled"`
	Failed     taskList   `json:"failed"` // the most recent first; Total is Stats.Failed
	Schedules  schedList  `json:"schedules"`
}

// stats is errand.Stats with JSON names.
type stats struct {
	Workers   int    `json:"workers"`
	Idle      int    `json:"idle"`
	Queued    int    `json:"queued"`
	Running   int    `json:"running"`
	Scheduled int    `json:"scheduled"`
	Submitted uint64 `json:"submitted"`
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Canceled  uint64 `json:"canceled"`
	Rejected  uint64 `json:"rejected"`
	Retried   uint64 `json:"retried"`
	Panicked  uint64 `json:"panicked"`
	Skipped   uint64 `json:"skipped"`
}

// throughput is the tasks finished in each second of the chart's window,
// the last element being the second of End (Unix seconds).
type throughput struct {
	End       int64    `json:"end"`
	Succeeded []uint32 `json:"succeeded"`
	Failed    []uint32 `json:"failed"`
}

// taskList is one bounded list: Tasks are the tracked ones, Total how many
// the queue has in that state.
type taskList struct {
	Total uint64     `json:"total"`
	Tasks []taskView `json:"tasks"`
}

type taskView struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Priority int    `json:"priority,omitempty"`
	Attempt  int    `json:"attempt"`
	Schedule string `json:"schedule,omitempty"` // the Recurring's id, for a run of a schedule
	Since    int64  `json:"since"`              // entered the list; for a failure, when it failed
	Due      int64  `json:"due,omitempty"`      // scheduled: when it is due, if known
	Error    string `json:"error,omitempty"`
	Panicked bool   `json:"panicked,omitempty"`
}

type schedList struct {
	Total int         `json:"total"`
	Items []schedView `json:"items"`
}

type schedView struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Trigger string `json:"trigger"`
	Next    int64  `json:"next"`
}

// maxText bounds a name or an error message in the state.
const maxText = 1000

// snapshot builds the state at now. It holds the Dashboard's lock only to
// copy the bounded lists; Stats, the schedules and the errors' messages are
// read after.
func (d *Dashboard) snapshot(now time.Time) *state {
	s := &state{Title: d.opts.Title, Now: now.UnixMilli(), Actions: d.opts.EnableActions}
	var errs [numLists][]error
	fails := make([]failure, 0, d.opts.MaxTasks)

	d.mu.Lock()
	tr := &d.tr
	for k, dst := range [numLists]*taskList{listQueued: &s.Queued, listRunning: &s.Running, listScheduled: &s.Scheduled} {
		if dst == nil {
			continue
		}
		l := &tr.lists[k]
		dst.Tasks = make([]taskView, 0, l.n)
		if k == int(listScheduled) {
			errs[k] = make([]error, 0, l.n)
		}
		for en := l.head; en != nil; en = en.next {
			dst.Tasks = append(dst.Tasks, taskView{
				ID: en.info.ID, Name: en.info.Name, Priority: en.info.Priority,
				Attempt: en.info.Attempt, Schedule: en.info.Schedule,
				Since: en.since.UnixMilli(), Due: unixMilli(en.due),
			})
			if k == int(listScheduled) {
				errs[k] = append(errs[k], en.err)
			}
		}
	}
	for i := range tr.fcount {
		j := (tr.fnext - 1 - i + 2*len(tr.failures)) % len(tr.failures)
		fails = append(fails, tr.failures[j])
	}
	n := len(tr.ring)
	end := now.Unix()
	s.Throughput = throughput{End: end, Succeeded: make([]uint32, n), Failed: make([]uint32, n)}
	for i := range n {
		sec := end - int64(n-1-i)
		if b := tr.ring[tr.slot(sec)]; b.sec == sec {
			s.Throughput.Succeeded[i], s.Throughput.Failed[i] = b.succeeded, b.failed
		}
	}
	d.mu.Unlock()

	for i, err := range errs[listScheduled] {
		if err != nil {
			s.Scheduled.Tasks[i].Error = clip(err.Error())
		}
	}
	s.Failed.Tasks = make([]taskView, len(fails))
	for i, f := range fails {
		v := taskView{ID: f.id, Name: f.name, Priority: f.priority, Attempt: f.attempt,
			Schedule: f.schedule, Since: f.at.UnixMilli(), Panicked: f.panicked}
		if f.err != nil {
			v.Error = clip(f.err.Error())
		}
		s.Failed.Tasks[i] = v
	}
	for _, l := range []*taskList{&s.Queued, &s.Running, &s.Scheduled, &s.Failed} {
		for i := range l.Tasks {
			l.Tasks[i].Name = clip(l.Tasks[i].Name)
		}
	}

	s.Schedules.Items = []schedView{}
	if q := d.q.Load(); q != nil {
		s.Attached = true
		st := q.Stats()
		s.Stats = stats{
			Workers: st.Workers, Idle: st.Idle, Queued: st.Queued, Running: st.Running, Scheduled: st.Scheduled,
			Submitted: st.Submitted, Succeeded: st.Succeeded, Failed: st.Failed, Canceled: st.Canceled,
			Rejected: st.Rejected, Retried: st.Retried, Panicked: st.Panicked, Skipped: st.Skipped,
		}
		rs := q.Recurring()
		s.Schedules.Total = len(rs)
		for _, r := range rs[:min(len(rs), d.opts.MaxTasks)] {
			s.Schedules.Items = append(s.Schedules.Items, schedView{
				ID: r.ID(), Name: clip(r.Name()), Trigger: clip(triggerString(r.Trigger())), Next: unixMilli(r.Next()),
			})
		}
	}
	// Events arrive a little after the transitions they report, so a list
	// can briefly hold more than Stats counts: the total is never less
	// than what is shown.
	s.Queued.Total = max(uint64(s.Stats.Queued), uint64(len(s.Queued.Tasks)))
	s.Running.Total = max(uint64(s.Stats.Running), uint64(len(s.Running.Tasks)))
	s.Scheduled.Total = max(uint64(s.Stats.Scheduled), uint64(len(s.Scheduled.Tasks)))
	s.Failed.Total = max(s.Stats.Failed, uint64(len(s.Failed.Tasks)))
	return s
}

// triggerString describes a schedule's trigger: its String method if it
// has one (errand's cron expressions and Every do), else its type.
func triggerString(t errand.Trigger) string {
	if s, ok := t.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", t)
}

func unixMilli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// clip makes s valid UTF-8 of at most maxText bytes, marking a cut with an
// ellipsis.
func clip(s string) string {
	if len(s) <= maxText && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxText {
		return s
	}
	cut := maxText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
