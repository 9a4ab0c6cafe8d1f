package errand_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	_ "time/tzdata" // America/New_York on every machine

	"github.com/errandgo/errand"
)

// Schedule runs a function on the queue at each time a Trigger names, here
// every 10ms, until Stop or the queue closes. Runs never overlap, and get the
// queue's retries, timeouts, middleware and events like any task.
func ExampleQueue_Schedule() {
	q, err := errand.New(errand.Config{Workers: 2})
	if err != nil {
		panic(err)
	}
	defer q.Close()

	var n atomic.Int32
	third := make(chan struct{})
	r, err := q.Schedule(errand.Every(10*time.Millisecond), func(ctx context.Context) error {
		if k := n.Add(1); k <= 3 {
			fmt.Println("run", k) // runs never overlap: one at a time, in order
			if k == 3 {
				close(third)
			}
		}
		return nil
	}, errand.WithName("heartbeat"))
	if err != nil {
		panic(err)
	}
	fmt.Println("live schedules:", len(q.Recurring()))

	<-third
	r.Stop() // no run starts after Stop returns
	fmt.Println("stopped:", r.Next().IsZero(), "live schedules:", len(q.Recurring()))
	// Output:
	// live schedules: 1
	// run 1
	// run 2
	// run 3
	// stopped: true live schedules: 0
}

// ParseCron reads 5-field (or 6-field, with seconds) cron expressions,
// @daily-style descriptors and a CRON_TZ= prefix. Across daylight-saving
// changes it does what Vixie cron does: a time skipped by spring-forward runs
// once at the end of the gap, a repeated time runs once (its first
// occurrence), and hourly jobs follow the clock.
func ExampleParseCron() {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		panic(err)
	}
	show := func(expr string, after time.Time, n int) {
		tr, err := errand.ParseCron(expr)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s:", expr)
		for range n {
			after = tr.Next(after)
			fmt.Print(" ", after.In(ny).Format("Jan 2 15:04:05 MST"))
		}
		fmt.Println()
	}
	march7 := time.Date(2026, 3, 7, 12, 0, 0, 0, ny)
	oct31 := time.Date(2026, 10, 31, 12, 0, 0, 0, ny)

	show("CRON_TZ=America/New_York 30 2 * * *", march7, 3) // 02:30 does not exist on Mar 8
	show("CRON_TZ=America/New_York 30 1 * * *", oct31, 2)  // 01:30 happens twice on Nov 1
	show("CRON_TZ=America/New_York 0 * * * *", oct31.Add(12*time.Hour+30*time.Minute), 4)
	show("0 9 * * MON-FRI", march7, 2) // in the Location of the time given to Next
	show("*/20 * * * * *", march7, 3)  // six fields: every 20 seconds

	_, err = errand.ParseCron("0 25 * * *")
	fmt.Println(err)
	// Output:
	// CRON_TZ=America/New_York 30 2 * * *: Mar 8 03:00:00 EDT Mar 9 02:30:00 EDT Mar 10 02:30:00 EDT
	// CRON_TZ=America/New_York 30 1 * * *: Nov 1 01:30:00 EDT Nov 2 01:30:00 EST
	// CRON_TZ=America/New_York 0 * * * *: Nov 1 01:00:00 EDT Nov 1 01:00:00 EST Nov 1 02:00:00 EST Nov 1 03:00:00 EST
	// 0 9 * * MON-FRI: Mar 9 09:00:00 EDT Mar 10 09:00:00 EDT
	// */20 * * * * *: Mar 7 12:00:20 EST Mar 7 12:00:40 EST Mar 7 12:01:00 EST
	// errand: cron "0 25 * * *": hour field: value 25 out of range 0-23
}
