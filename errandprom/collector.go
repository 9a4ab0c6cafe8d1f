package errandprom

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/errandgo/errand"
	"github.com/prometheus/client_golang/prometheus"
)

// Label values that do not come from a task's name.
const (
	// LabelUnnamed is the name label of tasks submitted without
	// errand.WithName (Task.Name is empty). An empty label value would be
	// indistinguishable in PromQL from a missing label.
	LabelUnnamed = "unnamed"

	// LabelOther is the name label of every task whose name arrived after
	// Options.MaxNames distinct names had been seen: it bounds the number of
	// series a collector can make, whatever names the tasks carry.
	LabelOther = "other"
)

// DefaultBuckets are the histogram buckets, in seconds, used when
// Options.Buckets is nil: 16 exponential buckets from 0.5ms to 16.384s
// (prometheus.ExponentialBuckets(0.0005, 2, 16)), fit for tasks that take from
// well under a millisecond to several seconds. New copies them, so changing
// this variable affects only collectors made afterwards.
var DefaultBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)

// DefaultMaxNames is Options.MaxNames's default.
const DefaultMaxNames = 100

// Options configures a Collector. The zero value is valid.
type Options struct {
	// Namespace prefixes every metric name, joined with an underscore.
	// Defaults to "errand" (errand_tasks_total, ...).
	Namespace string

	// ConstLabels are added to every metric, e.g. {"queue": "email"} to tell
	// apart the collectors of several queues registered in one registry.
	// They must not be "name" or "outcome". Defaults to none.
	ConstLabels prometheus.Labels

	// Buckets are the upper bounds, in seconds, of the buckets of the
	// errand_task_wait_seconds and errand_task_run_seconds histograms. They
	// must be strictly increasing. Defaults to DefaultBuckets (0.5ms to
	// 16.384s, doubling).
	Buckets []float64

	// MaxNames bounds the number of distinct task names used as the name
	// label, so that tasks named from unbounded data cannot make unbounded
	// series. The first MaxNames names seen get a label value of their own;
	// later new names are all reported as LabelOther. LabelUnnamed does not
	// count towards it. 0 or less means DefaultMaxNames (100).
	MaxNames int
}

// outcome indexes the per-outcome series of a task name.
type outcome uint8

const (
	succeeded outcome = iota
	failed
	canceled
	rejected // errand_tasks_total only: never ran
	retried  // errand_task_run_seconds only: the attempt failed and is retried
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"succeeded", "failed", "canceled", "rejected", "retried"}

// Collector is a prometheus.Collector of errand metrics. Its Observe method
// turns the events of a queue (errand.Config.OnEvent) into counters and
// histograms labelled by task name; Watch makes it report the gauges of a
// queue's Stats at each scrape. Register it in a prometheus.Registerer.
//
// The metrics, with the default Namespace:
//
//	errand_tasks_total{name, outcome}        counter: tasks that ended, by outcome:
//	                                         succeeded, failed, canceled; and
//	                                         submissions rejected for want of room (rejected)
//	errand_task_retries_total{name}          counter: failed attempts scheduled again
//	errand_task_panics_total{name}           counter: attempts that panicked
//	errand_schedule_skips_total{name}        counter: recurring runs skipped because the
//	                                         previous run was still waiting or running
//	errand_task_wait_seconds{name}           histogram: time from entering the queue to an
//	                                         attempt's start (EventStarted.Wait)
//	errand_task_run_seconds{name, outcome}   histogram: run time of each attempt, by how it
//	                                         ended: succeeded, failed, canceled, or retried
//	                                         (failed and scheduled again)
//	errand_workers                           gauge: live worker goroutines   (Watch only)
//	errand_workers_idle                      gauge: workers waiting for a task
//	errand_tasks_queued                      gauge: tasks waiting for a worker
//	errand_tasks_running                     gauge: tasks running
//	errand_tasks_scheduled                   gauge: tasks delayed or backing off before a retry
//
// Series appear when first used: a name that never failed has no
// outcome="failed" series. The name label is the task's errand.WithName,
// LabelUnnamed for tasks without one, LabelOther beyond Options.MaxNames;
// names that are not valid UTF-8 have their invalid bytes replaced by U+FFFD.
// A task named "unnamed" or "other" shares that series.
//
// One collector watches at most one queue; to export several queues, make a
// collector for each with distinct Options.ConstLabels (say {"queue": "email"}).
// All methods are safe for concurrent use.
type Collector struct {
	tasks   *prometheus.CounterVec   // name, outcome
	retries *prometheus.CounterVec   // name
	panics  *prometheus.CounterVec   // name
	skips   *prometheus.CounterVec   // name
	wait    *prometheus.HistogramVec // name
	run     *prometheus.HistogramVec // name, outcome

	workers, idle, queued, running, scheduled *prometheus.Desc
	queue                                     atomic.Pointer[errand.Queue]

	maxNames int
	mu       sync.RWMutex
	byName   map[string]*series // guarded by mu; at most maxNames entries besides ""
	full     atomic.Bool        // byName holds maxNames names: new names go to other
	other    *series
}

// series caches the metric children of one name label value, each made on
// first use, so that Observe does not hash label values each time.
type series struct {
	label   string
	tasks   [numOutcomes]atomic.Pointer[prometheus.Counter]
	retries atomic.Pointer[prometheus.Counter]
	panics  atomic.Pointer[prometheus.Counter]
	skips   atomic.Pointer[prometheus.Counter]
	wait    atomic.Pointer[prometheus.Observer]
	run     [numOutcomes]atomic.Pointer[prometheus.Observer]
}

// New returns a Collector configured by opts. It panics if opts.Buckets are
// not strictly increasing, as prometheus.NewHistogram does. ConstLabels
// named "name" or "outcome" make registering the collector fail.
func New(opts Options) *Collector {
	ns := opts.Namespace
	if ns == "" {
		ns = "errand"
	}
	buckets := DefaultBuckets
	if opts.Buckets != nil {
		buckets = opts.Buckets
	}
	buckets = append([]float64(nil), buckets...)
	for i := 1; i < len(buckets); i++ {
		if !(buckets[i] > buckets[i-1]) {
			panic(fmt.Sprintf("errandprom: Options.Buckets are not strictly increasing: %v then %v", buckets[i-1], buckets[i]))
		}
	}
	maxNames := opts.MaxNames
	if maxNames <= 0 {
		maxNames = DefaultMaxNames
	}
	labels := make(prometheus.Labels, len(opts.ConstLabels))
	for k, v := range opts.ConstLabels {
		labels[k] = v
	}
	counter := func(name, help string, labelNames ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help, ConstLabels: labels}, labelNames)
	}
	histogram := func(name, help string, labelNames ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, ConstLabels: labels, Buckets: buckets}, labelNames)
	}
	gauge := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, nil, labels)
	}
	c := &Collector{
		tasks:   counter("tasks_total", "Tasks that ended, by task name and outcome: succeeded, failed or canceled; rejected counts submissions refused for want of room.", "name", "outcome"),
		retries: counter("task_retries_total", "Failed task attempts that were scheduled to run again, by task name.", "name"),
		panics:  counter("task_panics_total", "Task attempts that panicked, by task name.", "name"),
		skips:   counter("schedule_skips_total", "Recurring runs skipped because the previous run was still waiting or running, by task name.", "name"),
		wait:    histogram("task_wait_seconds", "Time task attempts waited in the queue for a worker, by task name.", "name"),
		run:     histogram("task_run_seconds", "Run time of task attempts, by task name and outcome: succeeded, failed, canceled, or retried (failed and scheduled again).", "name", "outcome"),

		workers:   gauge("workers", "Live worker goroutines of the queue."),
		idle:      gauge("workers_idle", "Workers of the queue waiting for a task."),
		queued:    gauge("tasks_queued", "Tasks waiting for a worker."),
		running:   gauge("tasks_running", "Tasks running."),
		scheduled: gauge("tasks_scheduled", "Tasks waiting in the scheduler: delayed, or backing off before a retry."),

		maxNames: maxNames,
		byName:   map[string]*series{"": {label: LabelUnnamed}},
		other:    &series{label: LabelOther},
	}
	return c
}

// Watch makes c report q's gauges (errand_workers, errand_workers_idle,
// errand_tasks_queued, errand_tasks_running, errand_tasks_scheduled), read
// from q.Stats() at each scrape. A later call replaces the queue; Watch(nil)
// stops reporting the gauges. A closed queue reports zeros. Watch does not
// wire events: pass c.Observe to errand.Config.OnEvent for the counters and
// histograms. Safe for concurrent use.
func (c *Collector) Watch(q *errand.Queue) { c.queue.Store(q) }

// Observe records one event: pass it as errand.Config.OnEvent, or call it
// from your own OnEvent. Events of kinds it does not count (Submitted,
// Queued) cost next to nothing.
//
// It is cheap and allocates nothing once a task name has been seen: about
// 40ns per event, 120ns for a task's Submitted, Started and Succeeded
// together (BenchmarkObserve, on a 2-core AMD EPYC). A name's first events
// make its series. Safe for concurrent use, e.g. by the OnEvent of several
// queues, though the gauges follow only the queue given to Watch.
func (c *Collector) Observe(e errand.Event) {
	switch e.Kind {
	case errand.EventStarted:
		s := c.series(e.Task.Name)
		c.observer(&s.wait, c.wait, s.label, "").Observe(e.Wait.Seconds())
	case errand.EventRetrying:
		c.attemptEnded(e, retried)
	case errand.EventSucceeded:
		c.attemptEnded(e, succeeded)
	case errand.EventFailed:
		c.attemptEnded(e, failed)
	case errand.EventCanceled:
		c.attemptEnded(e, canceled)
	case errand.EventRejected:
		s := c.series(e.Task.Name)
		c.counter(&s.tasks[rejected], c.tasks, s.label, outcomeNames[rejected]).Inc()
	case errand.EventSkipped:
		s := c.series(e.Task.Name)
		c.counter(&s.skips, c.skips, s.label, "").Inc()
	}
}

// attemptEnded records an event that may end an attempt (Retrying) or a
// task (Succeeded, Failed, Canceled).
func (c *Collector) attemptEnded(e errand.Event, o outcome) {
	s := c.series(e.Task.Name)
	if e.Ran { // the event ends an attempt that ran, which Duration times
		c.observer(&s.run[o], c.run, s.label, outcomeNames[o]).Observe(e.Duration.Seconds())
		if e.Panicked {
			c.counter(&s.panics, c.panics, s.label, "").Inc()
		}
	}
	if o == retried {
		c.counter(&s.retries, c.retries, s.label, "").Inc()
	} else {
		c.counter(&s.tasks[o], c.tasks, s.label, outcomeNames[o]).Inc()
	}
}

// series returns the series of a task name, making it on first sight.
func (c *Collector) series(name string) *series {
	c.mu.RLock()
	s := c.byName[name]
	c.mu.RUnlock()
	if s != nil {
		return s
	}
	if c.full.Load() {
		return c.other
	}
	return c.newSeries(name)
}

func (c *Collector) newSeries(name string) *series {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.byName[name]; s != nil {
		return s
	}
	if len(c.byName)-1 >= c.maxNames { // byName also holds ""
		c.full.Store(true)
		return c.other
	}
	label := name
	if !utf8.ValidString(label) {
		label = strings.ToValidUTF8(label, "\uFFFD")
	}
	s := &series{label: label}
	c.byName[strings.Clone(name)] = s
	if len(c.byName)-1 >= c.maxNames {
		c.full.Store(true)
	}
	return s
}

// counter returns the child of vec cached in p, making it on first use.
// outcome is "" for vectors labelled by name alone.
func (c *Collector) counter(p *atomic.Pointer[prometheus.Counter], vec *prometheus.CounterVec, name, outcome string) prometheus.Counter {
	if m := p.Load(); m != nil {
		return *m
	}
	return newChild(p, vec.WithLabelValues, name, outcome)
}

// observer is counter for histograms.
func (c *Collector) observer(p *atomic.Pointer[prometheus.Observer], vec *prometheus.HistogramVec, name, outcome string) prometheus.Observer {
	if m := p.Load(); m != nil {
		return *m
	}
	return newChild(p, vec.WithLabelValues, name, outcome)
}

// newChild makes and caches a child. Two goroutines may both make it: a
// vector returns the same child for the same labels, so either store is right.
func newChild[M any](p *atomic.Pointer[M], with func(...string) M, name, outcome string) M {
	var m M
	if outcome == "" {
		m = with(name)
	} else {
		m = with(name, outcome)
	}
	p.Store(&m)
	return m
}

// Describe sends the descriptors of every metric c may report. It
// implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.tasks.Describe(ch)
	c.retries.Describe(ch)
	c.panics.Describe(ch)
	c.skips.Describe(ch)
	c.wait.Describe(ch)
	c.run.Describe(ch)
	ch <- c.workers
	ch <- c.idle
	ch <- c.queued
	ch <- c.running
	ch <- c.scheduled
}

// Collect sends the current value of every series, and the gauges of the
// watched queue, read with one call of its Stats (which takes the queue's
// lock briefly). It implements prometheus.Collector; a registry calls it at
// each scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.tasks.Collect(ch)
	c.retries.Collect(ch)
	c.panics.Collect(ch)
	c.skips.Collect(ch)
	c.wait.Collect(ch)
	c.run.Collect(ch)
	q := c.queue.Load()
	if q == nil {
		return
	}
	st := q.Stats()
	ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(st.Workers))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(st.Idle))
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(st.Running))
	ch <- prometheus.MustNewConstMetric(c.scheduled, prometheus.GaugeValue, float64(st.Scheduled))
}

var _ prometheus.Collector = (*Collector)(nil)
