package errandprom

import (
	"fmt"
	"testing"
	"time"

	"github.com/errandgo/errand"
)

// lifecycle returns the events of n tasks, each submitted, started and
// succeeded, over four names: what Observe sees from a busy queue.
func lifecycle(n int) []errand.Event {
	names := []string{"email.send", "card.charge", "report.build", ""}
	var evs []errand.Event
	for i := range n {
		ti := errand.TaskInfo{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Name: names[i%len(names)]}
		evs = append(evs, errand.Event{Kind: errand.EventSubmitted, Task: ti})
		ti.Attempt = 1
		evs = append(evs,
			errand.Event{Kind: errand.EventStarted, Task: ti, Wait: 3 * time.Millisecond},
			errand.Event{Kind: errand.EventSucceeded, Task: ti, Ran: true, Duration: 20 * time.Millisecond})
	}
	return evs
}

// BenchmarkObserve measures Observe per event, over the events of whole task
// lifecycles (Submitted, Started, Succeeded), names already seen.
func BenchmarkObserve(b *testing.B) {
	c := New(Options{})
	evs := lifecycle(64)
	for _, e := range evs {
		c.Observe(e)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.Observe(evs[i])
		if i++; i == len(evs) {
			i = 0
		}
	}
}

// BenchmarkObserveParallel is BenchmarkObserve from GOMAXPROCS goroutines,
// as when one collector serves several queues.
func BenchmarkObserveParallel(b *testing.B) {
	c := New(Options{})
	evs := lifecycle(64)
	for _, e := range evs {
		c.Observe(e)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.Observe(evs[i])
			if i++; i == len(evs) {
				i = 0
			}
		}
	})
}
