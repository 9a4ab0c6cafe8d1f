package errand

import (
	"math/bits"
	"time"
)

// searchYears bounds Next's search: Feb 29 can be 8 years away (2096 to 2104).
const searchYears = 12

// maxOffsetSpan exceeds the difference between any two UTC offsets.
const maxOffsetSpan = 48 * time.Hour

// maxSegments bounds the number of zone offset periods Next walks through
// (real zones have at most a few per year).
const maxSegments = 4 * searchYears * 12

// Next returns the first matching instant strictly after after (see ParseCron
// for the daylight-saving rules), in after's Location, or the zero time if
// none is found within the search bound.
//
// The zone's timeline is split into segments of constant UTC offset
// (time.Time.ZoneBounds). Within a segment, wall-clock time is instant plus
// offset, so the earliest matching wall time maps to the earliest matching
// instant. At a segment start, a spring-forward gap (offset increases) holds
// wall times that never occur and a fall-back (offset decreases) repeats wall
// times that the previous segment already had; for fixed-time jobs the former
// run at the segment start and the latter are skipped.
func (c *cronSchedule) Next(after time.Time) time.Time {
	loc := c.loc
	if loc == nil {
		loc = after.Location()
	}
	t := after.Truncate(time.Second).Add(time.Second).In(loc)
	maxDate := dateKey(t.UTC().Year()+searchYears, 12, 31)
	prevOff, prevKnown := 0, false // offset before segStart, once known
	for range maxSegments {
		segStart, segEnd := t.ZoneBounds()
		if !segEnd.IsZero() && !segEnd.After(t) {
			// time.ZoneBounds can report an end at or before t on the last
			// UTC day of a leap year served by the zone's TZ footer rule (it
			// takes the year as 365 days; golang.org/issue/81583). No
			// transition is left in that UTC year, so the next UTC year's
			// start is a safe segment end.
			segEnd = time.Date(t.UTC().Year()+1, 1, 1, 0, 0, 0, 0, time.UTC).In(loc)
		}
		_, off := t.Zone()
		from := wallClock(t, off)
		// A segment that started more than maxOffsetSpan ago has no gap or
		// repeat left to handle.
		if !c.hourWild && !segStart.IsZero() && t.Sub(segStart) < maxOffsetSpan {
			if !prevKnown {
				_, prevOff = segStart.Add(-time.Second).Zone()
			}
			switch {
			case prevOff < off && t.Equal(segStart):
				// Wall times in [gapFrom, from) were skipped: run once now if
				// any of them matches.
				gapFrom := wallClock(segStart, prevOff)
				if w, ok := c.nextWall(gapFrom, dateKeyOf(from)); ok && w.Before(from) {
					return segStart.In(after.Location())
				}
			case prevOff > off:
				// Wall times before segStart+prevOff occurred already, in the
				// previous segment: only their first occurrence runs.
				if first := wallClock(segStart, prevOff); from.Before(first) {
					from = first
				}
			}
		}
		w, ok := c.nextWall(from, maxDate)
		inst := w.Add(-time.Duration(off) * time.Second)
		if ok && (segEnd.IsZero() || inst.Before(segEnd)) {
			return inst.In(after.Location())
		}
		if segEnd.IsZero() {
			return time.Time{}
		}
		// No match in this segment. If every wall time after segEnd is at
		// or after from (offsets differ by less than maxOffsetSpan), w is
		// the first matching wall time left, so no run, gap run or repeat
		// can come before the instants near w: jump there, skipping the
		// segments in between.
		if from.Before(wallClock(segEnd, off).Add(-maxOffsetSpan)) {
			if !ok {
				return time.Time{}
			}
			if j := inst.Add(-maxOffsetSpan); j.After(segEnd) {
				t, prevKnown = j.In(loc), false
				continue
			}
		}
		t, prevOff, prevKnown = segEnd, off, true
	}
	return time.Time{}
}

// dateKey orders dates: it increases with (y, m, d), also for d = 32 (the
// day after the end of a month), which sorts with the next month's day 0.
func dateKey(y, m, d int) int64 { return int64(y)*512 + int64(m)*32 + int64(d) }

func dateKeyOf(w time.Time) int64 {
	y, m, d := w.Date()
	return dateKey(y, int(m), d)
}

// wallClock returns the wall-clock reading of t at UTC offset off (seconds),
// as a UTC time whose fields are that reading.
func wallClock(t time.Time, off int) time.Time {
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// nextWall returns the earliest wall-clock time at or after from (fields read
// in UTC) whose fields match, on a date no later than the one whose dateKey
// is limit. It skips whole months, days and hours that do not match.
func (c *cronSchedule) nextWall(from time.Time, limit int64) (time.Time, bool) {
	y, mon, d := from.Date()
	m := int(mon)
	h, mi, s := from.Clock()
	for dateKey(y, m, d) <= limit {
		if nm := nextBit(c.month, m); nm != m {
			if nm < 0 {
				y, m = y+1, 1
			} else {
				m = nm
			}
			d, h, mi, s = 1, 0, 0, 0
			continue
		}
		days := daysIn(y, m)
		if c.dowStar { // only day-of-month restricts: jump to the next allowed day
			if nd := nextBit(c.dom, d); nd != d {
				if nd < 0 || nd > days {
					d = days + 1
				} else {
					d = nd
				}
				h, mi, s = 0, 0, 0
			}
		}
		if d > days {
			m, d, h, mi, s = m+1, 1, 0, 0, 0
			if m > 12 {
				y, m = y+1, 1
			}
			continue
		}
		if !c.dayMatches(y, m, d) {
			d, h, mi, s = d+1, 0, 0, 0
			continue
		}
		if nh := nextBit(c.hour, h); nh != h {
			if nh < 0 {
				d, h, mi, s = d+1, 0, 0, 0
				continue
			}
			h, mi, s = nh, 0, 0
		}
		if nmi := nextBit(c.minute, mi); nmi != mi {
			if nmi < 0 {
				h, mi, s = h+1, 0, 0
				continue
			}
			mi, s = nmi, 0
		}
		ns := nextBit(c.second, s)
		if ns < 0 {
			mi, s = mi+1, 0
			continue
		}
		return time.Date(y, time.Month(m), d, h, mi, ns, 0, time.UTC), true
	}
	return time.Time{}, false
}

// dayMatches applies the POSIX rule: if both day fields are restricted, either
// may match; otherwise only the restricted one (if any) counts.
func (c *cronSchedule) dayMatches(y, m, d int) bool {
	domOK := c.dom&(1<<d) != 0
	if c.dowStar {
		return domOK
	}
	dowOK := c.dow&(1<<weekday(y, m, d)) != 0
	if c.domStar {
		return dowOK
	}
	return domOK || dowOK
}

// nextBit returns the smallest set bit of set at or above v, or -1.
func nextBit(set uint64, v int) int {
	if v < 0 || v > 63 {
		return -1
	}
	set = set >> uint(v) << uint(v)
	if set == 0 {
		return -1
	}
	return bits.TrailingZeros64(set)
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// weekday returns the day of the week (Sunday = 0) of a proleptic Gregorian
// date, using days since 1970-01-01 (a Thursday).
func weekday(y, m, d int) int {
	days := daysFromCivil(y, m, d)
	return int(((days+4)%7 + 7) % 7)
}

// daysFromCivil is Howard Hinnant's days_from_civil algorithm.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := int64(y - era*400)
	mp := int64((m + 9) % 12)
	doy := (153*mp+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + doe - 719468
}
