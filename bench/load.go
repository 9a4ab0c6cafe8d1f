package main

import (
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// loadMeter measures how much CPU other processes used while the suite ran:
// the machine's busy time from /proc/stat less this process's own and its
// finished children's. Benchmarks
// on a shared 2-core machine are only as good as that number is small.
type loadMeter struct {
	ok         bool
	wall       time.Time
	busy, self float64 // seconds
}

func startLoad() loadMeter {
	busy, ok1 := machineBusy()
	self, ok2 := selfCPU()
	return loadMeter{ok: ok1 && ok2, wall: time.Now(), busy: busy, self: self}
}

// others returns the cores other processes kept busy on average since
// start, or NaN where it cannot tell (not Linux).
func (l loadMeter) others() float64 {
	busy, ok1 := machineBusy()
	self, ok2 := selfCPU()
	wall := time.Since(l.wall).Seconds()
	if !l.ok || !ok1 || !ok2 || wall <= 0 {
		return math.NaN()
	}
	return max(0, ((busy-l.busy)-(self-l.self))/wall)
}

// machineBusy is the seconds every CPU spent not idle since boot.
func machineBusy() (float64, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, false
	}
	var busy float64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, false
		}
		busy += n
	}
	return busy / 100, true // USER_HZ is 100 on Linux
}

// selfCPU is the user and system CPU seconds of this process and of the
// children it has waited for (the processes that ran isolated runs).
func selfCPU() (float64, bool) {
	sec := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	total := 0.0
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err != nil {
			return 0, false
		}
		total += sec(ru.Utime) + sec(ru.Stime)
	}
	return total, true
}
