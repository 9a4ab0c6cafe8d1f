package errand

import (
	"fmt"
	"strings"
	"time"
)

// Trigger is satisfied by errand's own cron and by other libraries' schedules
// (robfig/cron's Schedule has the same method). A zero time from Next means "no more runs".
//
// Next returns the first run strictly after its argument.
type Trigger interface {
	Next(after time.Time) time.Time
}

// Every returns an interval Trigger whose Next(after) is after.Add(d).
//
// It counts real elapsed time, not wall-clock time: across a daylight-saving
// change, Every(time.Hour) still fires 60 minutes after the previous run.
// There is no alignment and no truncation; sub-second durations are kept.
// If d <= 0, Next always returns the zero time, meaning "no runs" (the
// queue's Schedule rejects such a trigger with an error).
//
// The Trigger is immutable and safe for concurrent use; Next costs a few
// nanoseconds and does not allocate.
func Every(d time.Duration) Trigger { return every{d} }

type every struct{ d time.Duration }

func (e every) Next(after time.Time) time.Time {
	if e.d <= 0 {
		return time.Time{}
	}
	return after.Add(e.d)
}

func (e every) String() string { return "@every " + e.d.String() }

// ParseCron parses a cron expression into a Trigger.
//
// Syntax:
//   - 5 fields "minute hour day-of-month month day-of-week" (second = 0), or
//     6 fields with the second first: "second minute hour dom month dow".
//     Ranges: second and minute 0-59, hour 0-23, day-of-month 1-31,
//     month 1-12 or JAN-DEC, day-of-week 0-7 or SUN-SAT (0 and 7 are Sunday).
//   - In each field: "*", a value, a list "1,5,10", a range "1-5" or "MON-FRI",
//     a step "*/15", "10-50/5" or "5/10" (from 5 to the field's maximum).
//     Names are case-insensitive. "?" means "*" in day-of-month and
//     day-of-week only.
//   - Descriptors: @yearly (@annually), @monthly, @weekly, @daily
//     (@midnight), @hourly, and "@every <duration>" (time.ParseDuration
//     syntax, must be positive), which returns the same trigger as Every
//     (a CRON_TZ= prefix is accepted and has no effect on it).
//   - An optional "CRON_TZ=Area/City " (or "TZ=Area/City ") prefix: times are
//     computed in that zone (time.LoadLocation). Without it, Next uses the
//     Location of its argument.
//
// Days follow POSIX: if both day-of-month and day-of-week are restricted, a
// day matches when either matches; if one of them is unrestricted (it
// contains "*" or "?" without a step, or with step 1), only the other one
// restricts. Day-of-month values that no selected month has (such as
// "0 0 30 2 *") are an error. Errors name the field and the reason, e.g.
// `errand: cron "0 25 * * *": hour field: value 25 out of range 0-23`.
//
// Next(after) returns the first matching instant strictly after after,
// which is first truncated to whole seconds; the result is in after's
// Location. The search is bounded (about 12 years ahead, enough for Feb 29
// across a skipped century leap year); beyond that Next returns the zero
// time.
//
// Daylight-saving time follows Vixie cron. A job whose hour field has no
// "*" (such as "2", "1-3" or "0,12") runs at fixed times of day: a time skipped
// by a spring-forward gap runs once, at the first instant after the gap (all
// of the job's times in one gap collapse into that single run), and a time
// repeated by a fall-back runs once, at its first occurrence. A job whose
// hour field contains "*" (hourly, every 15 minutes, every second, ...)
// follows the clock as it is: it does not run at wall times that do not
// exist and runs in both copies of a repeated hour, so it neither loses nor
// doubles elapsed time. Half-hour shifts (Australia/Lord_Howe) and
// southern-hemisphere zones work the same way.
//
// The returned Trigger is immutable and safe for concurrent use. Its String
// method returns the normalized 6-field expression, which parses back to
// the same schedule.
//
// Cost: Next does not allocate and takes 0.1-1 µs (BenchmarkCronNext, 2-core
// amd64: ~100 ns/op for "*/15 * * * *" in UTC, ~270 ns/op for a daily job
// and ~330 ns/op for a weekday job in America/New_York, ~1 µs for @yearly
// there; zone lookups dominate). ParseCron takes under 1 µs and 10
// allocations, or about 11 µs with a CRON_TZ= prefix, which loads the zone.
//
// DIFFERENCES from github.com/robfig/cron/v3 (parser with SecondOptional |
// Minute | Hour | Dom | Month | Dow | Descriptor, and its standard 5-field
// parser). The crondiff module's differential test checks that, in zones
// without DST, both give the same Next for every expression both accept
// (apart from 2 and 9 below), and demonstrates each deliberate difference:
//  1. DST: robfig has no skipped/repeated-time policy. A fixed-time job in
//     a spring-forward gap does not run that day ("30 2 * * *" in
//     America/New_York skips 2026-03-08) and one in a repeated hour runs
//     twice ("30 1 * * *" at 01:30 EDT and 01:30 EST on 2026-11-01); errand
//     applies the rules above. Clock-following jobs agree.
//  2. Search bound: robfig gives up after 5 years and returns the zero time
//     ("0 0 29 2 *" from 2096-03-01); errand returns 2104-02-29.
//  3. Impossible dates ("0 0 30 2 *"): robfig parses them and Next returns
//     the zero time; errand rejects them.
//  4. Day-of-week 7 is Sunday in errand (also in ranges, "5-7"); robfig
//     rejects it.
//  5. "?" is accepted only in day-of-month and day-of-week; robfig accepts
//     it in any field, as "*".
//  6. Numbers are plain decimal digits; robfig (strconv.Atoi) also accepts
//     a sign ("+5").
//  7. Empty list elements ("1,,2", "1,") are errors; robfig skips them.
//  8. Descriptors are case-insensitive ("@DAILY"); robfig's are not.
//  9. @every fires exactly after.Add(d) and rejects d <= 0; robfig rounds
//     durations under 1s up to 1s, drops the duration's and after's
//     sub-second parts, and accepts negative durations (as 1s).
//  10. White space: errand accepts spaces before CRON_TZ= and several
//     spaces after @every; robfig rejects both.
//  11. CRON_TZ=Local computes in time.Local; robfig then uses the Location
//     of Next's argument instead.
func ParseCron(expr string) (Trigger, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("errand: cron %q: "+format, append([]any{expr}, args...)...)
	}
	fields := strings.Fields(expr)
	var loc *time.Location
	tzName := ""
	if len(fields) > 0 {
		if name, ok := cutPrefixes(fields[0], "CRON_TZ=", "TZ="); ok {
			if name == "" {
				return nil, fail("empty time zone name")
			}
			l, err := time.LoadLocation(name)
			if err != nil {
				return nil, fail("unknown time zone %q", name)
			}
			loc, tzName, fields = l, name, fields[1:]
		}
	}
	if len(fields) == 0 {
		return nil, fail("empty expression")
	}
	if strings.HasPrefix(fields[0], "@") {
		desc := strings.ToLower(fields[0])
		if desc == "@every" {
			if len(fields) != 2 {
				return nil, fail("@every takes exactly one duration, got %d arguments", len(fields)-1)
			}
			d, err := time.ParseDuration(fields[1])
			if err != nil {
				return nil, fail("@every: invalid duration %q", fields[1])
			}
			if d <= 0 {
				return nil, fail("@every: duration %s is not positive", d)
			}
			return every{d}, nil
		}
		spec, ok := descriptorSpec(desc)
		if !ok {
			return nil, fail("unknown descriptor %q", fields[0])
		}
		if len(fields) != 1 {
			return nil, fail("descriptor %s takes no arguments", fields[0])
		}
		fields = strings.Fields(spec)
	}
	switch len(fields) {
	case 5:
		fields = append([]string{"0"}, fields...)
	case 6:
	default:
		return nil, fail("expected 5 or 6 fields, got %d", len(fields))
	}
	c := &cronSchedule{loc: loc}
	sets := [6]*uint64{&c.second, &c.minute, &c.hour, &c.dom, &c.month, &c.dow}
	for i, f := range fields {
		bits, star, err := parseField(f, i)
		if err != nil {
			return nil, fail("%s field: %v", fieldName(i), err)
		}
		*sets[i] = bits
		switch i {
		case fHour:
			c.hourWild = strings.Contains(f, "*")
		case fDom:
			c.domStar = star
		case fDow:
			c.dowStar = star
		}
		fields[i] = strings.ToUpper(f)
	}
	if c.dowStar && !c.domStar && !c.someDayExists() {
		return nil, fail("day-of-month field: no month allowed by the month field has day(s) %s", fields[fDom])
	}
	c.expr = strings.Join(fields, " ")
	if loc != nil {
		c.expr = "CRON_TZ=" + tzName + " " + c.expr
	}
	return c, nil
}

// cronSchedule is a parsed cron expression. Bit v of a set means value v is
// allowed; dow uses 0-6 with Sunday = 0.
type cronSchedule struct {
	expr                 string
	loc                  *time.Location // nil: use the Location of Next's argument
	second, minute, hour uint64
	dom, month, dow      uint64
	domStar, dowStar     bool // field unrestricted for the POSIX day rule
	hourWild             bool // hour field contains "*": follow the clock across DST
}

func (c *cronSchedule) String() string { return c.expr }

// Field indexes, in 6-field order.
const (
	fSecond = iota
	fMinute
	fHour
	fDom
	fMonth
	fDow
)

// Names in 3-letter chunks; the index of a chunk is its value (months start at 1).
const (
	monthNames = "JANFEBMARAPRMAYJUNJULAUGSEPOCTNOVDEC"
	dayNames   = "SUNMONTUEWEDTHUFRISAT"
)

// fieldInfo returns a field's name and its bounds: min and max for explicit
// values, and starMax, the maximum that "*" and "N/step" extend to.
func fieldInfo(i int) (name string, minV, maxV, starMax int) {
	switch i {
	case fSecond:
		return "second", 0, 59, 59
	case fMinute:
		return "minute", 0, 59, 59
	case fHour:
		return "hour", 0, 23, 23
	case fDom:
		return "day-of-month", 1, 31, 31
	case fMonth:
		return "month", 1, 12, 12
	default:
		return "day-of-week", 0, 7, 6
	}
}

func fieldName(i int) string { name, _, _, _ := fieldInfo(i); return name }

func descriptorSpec(desc string) (string, bool) {
	switch desc {
	case "@yearly", "@annually":
		return "0 0 0 1 1 *", true
	case "@monthly":
		return "0 0 0 1 * *", true
	case "@weekly":
		return "0 0 0 * * 0", true
	case "@daily", "@midnight":
		return "0 0 0 * * *", true
	case "@hourly":
		return "0 0 * * * *", true
	}
	return "", false
}

func cutPrefixes(s string, prefixes ...string) (string, bool) {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest, true
		}
	}
	return "", false
}

// parseField parses one field into a bit set. star reports whether an
// element is "*" or "?" without a step (or with step 1).
func parseField(field string, i int) (bits uint64, star bool, err error) {
	_, minV, _, starMax := fieldInfo(i)
	for _, item := range strings.Split(field, ",") {
		if item == "" {
			return 0, false, fmt.Errorf("empty element in list %q", field)
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, ok := parseNumber(stepText)
			if !ok || n <= 0 {
				return 0, false, fmt.Errorf("bad step %q in %q: must be a positive integer", stepText, item)
			}
			step = n
		}
		var lo, hi int
		switch {
		case rng == "*" || (rng == "?" && (i == fDom || i == fDow)):
			lo, hi = minV, starMax
			star = star || step == 1
		case rng == "?":
			return 0, false, fmt.Errorf("%q is only allowed in day-of-month and day-of-week", "?")
		default:
			loText, hiText, isRange := strings.Cut(rng, "-")
			if lo, err = parseValue(loText, i, item); err != nil {
				return 0, false, err
			}
			switch {
			case isRange:
				if hi, err = parseValue(hiText, i, item); err != nil {
					return 0, false, err
				}
				if lo > hi {
					return 0, false, fmt.Errorf("range %q is reversed: %d is after %d", rng, lo, hi)
				}
			case hasStep:
				hi = max(starMax, lo)
			default:
				hi = lo
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v%64)
		}
	}
	if i == fDow && bits&(1<<7) != 0 {
		bits = bits&^(1<<7) | 1 // 7 is Sunday
	}
	return bits, star, nil
}

// parseValue parses a number or, in month and day-of-week, a name.
func parseValue(s string, i int, item string) (int, error) {
	_, minV, maxV, _ := fieldInfo(i)
	if s == "" {
		return 0, fmt.Errorf("missing value in %q", item)
	}
	if n, ok := parseNumber(s); ok {
		if n < minV || n > maxV {
			return 0, fmt.Errorf("value %s out of range %d-%d", s, minV, maxV)
		}
		return n, nil
	}
	names, first := "", 0
	switch i {
	case fMonth:
		names, first = monthNames, 1
	case fDow:
		names = dayNames
	}
	if len(s) == 3 && names != "" {
		up := strings.ToUpper(s)
		for k := 0; k+3 <= len(names); k += 3 {
			if names[k:k+3] == up {
				return first + k/3, nil
			}
		}
	}
	if names == "" || s[0] >= '0' && s[0] <= '9' {
		return 0, fmt.Errorf("bad value %q in %q: not a number", s, item)
	}
	return 0, fmt.Errorf("unknown name %q", s)
}

// parseNumber parses plain decimal digits. Huge numbers saturate, so that
// they are reported as out of range rather than as syntax errors.
func parseNumber(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = min(n*10+int(s[i]-'0'), 1<<20)
	}
	return n, true
}

// someDayExists reports whether some allowed month has an allowed
// day-of-month (February counts 29 days).
func (c *cronSchedule) someDayExists() bool {
	for m := 1; m <= 12; m++ {
		if c.month&(1<<m) != 0 && c.dom&(1<<(daysIn(2000, m)+1)-1) != 0 {
			return true
		}
	}
	return false
}
