package errand

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the DST tests need these zones on every machine
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func mustCron(t testing.TB, expr string) *cronSchedule {
	t.Helper()
	tr, err := ParseCron(expr)
	if err != nil {
		t.Fatalf("ParseCron(%q): %v", expr, err)
	}
	c, ok := tr.(*cronSchedule)
	if !ok {
		t.Fatalf("ParseCron(%q) = %T, want *cronSchedule", expr, tr)
	}
	return c
}

// mustTime parses an RFC 3339 time; a time without offset is read in loc.
func mustTime(t testing.TB, s string, loc *time.Location) time.Time {
	t.Helper()
	if tm, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return tm
	}
	tm, err := time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	if err != nil {
		t.Fatalf("bad time %q: %v", s, err)
	}
	return tm
}

func bitsOf(vals ...int) uint64 {
	var b uint64
	for _, v := range vals {
		b |= 1 << v
	}
	return b
}

func span(lo, hi, step int) []int {
	var vs []int
	for v := lo; v <= hi; v += step {
		vs = append(vs, v)
	}
	return vs
}

func TestParseCronFields(t *testing.T) {
	tests := []struct {
		expr  string
		field int
		want  []int
	}{
		{"* * * * *", fSecond, []int{0}},
		{"1,5,10 * * * *", fMinute, []int{1, 5, 10}},
		{"1-5 * * * *", fMinute, span(1, 5, 1)},
		{"*/15 * * * *", fMinute, []int{0, 15, 30, 45}},
		{"10-50/5 * * * *", fMinute, span(10, 50, 5)},
		{"5/10 * * * *", fMinute, []int{5, 15, 25, 35, 45, 55}},
		{"1-5,10-12,30 * * * *", fMinute, []int{1, 2, 3, 4, 5, 10, 11, 12, 30}},
		{"*/100 * * * *", fMinute, []int{0}},
		{"0 */7 * * *", fHour, []int{0, 7, 14, 21}},
		{"0 * * * *", fHour, span(0, 23, 1)},
		{"0 0 * * *", fDom, span(1, 31, 1)},
		{"0 0 ? * *", fDom, span(1, 31, 1)},
		{"0 0 1/10 * *", fDom, []int{1, 11, 21, 31}},
		{"0 0 1 JAN-MAR *", fMonth, []int{1, 2, 3}},
		{"0 0 1 jan,Jun,DEC *", fMonth, []int{1, 6, 12}},
		{"0 0 1 */3 *", fMonth, []int{1, 4, 7, 10}},
		{"0 0 1 2/5 *", fMonth, []int{2, 7, 12}},
		{"0 0 1 FEB/5 *", fMonth, []int{2, 7, 12}},
		{"0 0 * * MON-FRI", fDow, span(1, 5, 1)},
		{"0 0 * * mon-Fri/2", fDow, []int{1, 3, 5}},
		{"0 0 * * sun", fDow, []int{0}},
		{"0 0 * * 0", fDow, []int{0}},
		{"0 0 * * 7", fDow, []int{0}},
		{"0 0 * * SAT,7", fDow, []int{0, 6}},
		{"0 0 * * 5-7", fDow, []int{0, 5, 6}},
		{"0 0 * * 0-7", fDow, span(0, 6, 1)},
		{"0 0 * * *", fDow, span(0, 6, 1)},
		{"0 0 * * ?", fDow, span(0, 6, 1)},
		{"0 0 * * */2", fDow, []int{0, 2, 4, 6}},
		{"0 0 * * 1/2", fDow, []int{1, 3, 5}},
		{"0 0 * * 7/3", fDow, []int{0}},
		{"*/20 * * * * *", fSecond, []int{0, 20, 40}},
		{"7 */20 * * * *", fMinute, []int{0, 20, 40}},
		{"@hourly", fMinute, []int{0}},
		{"@hourly", fHour, span(0, 23, 1)},
		{"@weekly", fDow, []int{0}},
		{"@yearly", fMonth, []int{1}},
		{"@annually", fDom, []int{1}},
		{"  CRON_TZ=Europe/Berlin   30   2 * * *  ", fHour, []int{2}},
	}
	for _, tt := range tests {
		c := mustCron(t, tt.expr)
		got := [6]uint64{c.second, c.minute, c.hour, c.dom, c.month, c.dow}[tt.field]
		if want := bitsOf(tt.want...); got != want {
			t.Errorf("ParseCron(%q) %s field = %b, want %b", tt.expr, fieldName(tt.field), got, want)
		}
	}
}

func TestParseCronString(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"30 2 * * *", "0 30 2 * * *"},
		{" 5  30 2 ? jan mon-fri ", "5 30 2 ? JAN MON-FRI"},
		{"CRON_TZ=Europe/Berlin 30 2 * * *", "CRON_TZ=Europe/Berlin 0 30 2 * * *"},
		{"TZ=UTC @daily", "CRON_TZ=UTC 0 0 0 * * *"},
		{"@yearly", "0 0 0 1 1 *"},
		{"@annually", "0 0 0 1 1 *"},
		{"@monthly", "0 0 0 1 * *"},
		{"@weekly", "0 0 0 * * 0"},
		{"@daily", "0 0 0 * * *"},
		{"@midnight", "0 0 0 * * *"},
		{"@hourly", "0 0 * * * *"},
		{"@DAILY", "0 0 0 * * *"},
		{"@every 1h30m", "@every 1h30m0s"},
		{"CRON_TZ=Asia/Tokyo @every 90s", "@every 1m30s"},
	}
	for _, tt := range tests {
		tr, err := ParseCron(tt.expr)
		if err != nil {
			t.Errorf("ParseCron(%q): %v", tt.expr, err)
			continue
		}
		if got := tr.(fmt.Stringer).String(); got != tt.want {
			t.Errorf("ParseCron(%q).String() = %q, want %q", tt.expr, got, tt.want)
		}
		// The normalized form parses to the same schedule.
		again, err := ParseCron(tr.(fmt.Stringer).String())
		if err != nil {
			t.Errorf("ParseCron(%q) of String(): %v", tt.expr, err)
			continue
		}
		from := time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC)
		if a, b := tr.Next(from), again.Next(from); !a.Equal(b) {
			t.Errorf("%q: Next = %v, but after String round trip %v", tt.expr, a, b)
		}
	}
}

func TestParseCronFlags(t *testing.T) {
	tests := []struct {
		expr                       string
		domStar, dowStar, hourWild bool
	}{
		{"0 0 * * *", true, true, false},
		{"0 0 ? * ?", true, true, false},
		{"0 0 13 * FRI", false, false, false},
		{"0 0 */1 * MON", true, false, false},
		{"0 0 */2 * MON", false, false, false},
		{"0 0 *,5 * MON", true, false, false},
		{"0 0 1-31 * MON", false, false, false},
		{"0 * * * *", true, true, true},
		{"0 */2 * * *", true, true, true},
		{"0 0-23 * * *", true, true, false},
		{"@hourly", true, true, true},
		{"@daily", true, true, false},
	}
	for _, tt := range tests {
		c := mustCron(t, tt.expr)
		if c.domStar != tt.domStar || c.dowStar != tt.dowStar || c.hourWild != tt.hourWild {
			t.Errorf("ParseCron(%q): domStar, dowStar, hourWild = %v, %v, %v; want %v, %v, %v",
				tt.expr, c.domStar, c.dowStar, c.hourWild, tt.domStar, tt.dowStar, tt.hourWild)
		}
	}
}

func TestParseCronErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"0 25 * * *", `errand: cron "0 25 * * *": hour field: value 25 out of range 0-23`},
		{"60 * * * *", "minute field: value 60 out of range 0-59"},
		{"60 * * * * *", "second field: value 60 out of range 0-59"},
		{"* * 0 * *", "day-of-month field: value 0 out of range 1-31"},
		{"* * 32 * *", "day-of-month field: value 32 out of range 1-31"},
		{"* * * 13 *", "month field: value 13 out of range 1-12"},
		{"* * * 0 *", "month field: value 0 out of range 1-12"},
		{"* * * * 8", "day-of-week field: value 8 out of range 0-7"},
		{"99999999999999 * * * *", "minute field: value 99999999999999 out of range 0-59"},
		{"0 10-30 * * *", "hour field: value 30 out of range 0-23"},
		{"", "empty expression"},
		{"   ", "empty expression"},
		{"* * * *", "expected 5 or 6 fields, got 4"},
		{"* * * * * * *", "expected 5 or 6 fields, got 7"},
		{"1,,2 * * * *", `minute field: empty element in list "1,,2"`},
		{"0 1, * * *", "hour field: empty element"},
		{"*/0 * * * *", `minute field: bad step "0"`},
		{"0 */-1 * * *", `hour field: bad step "-1"`},
		{"0 0 1/ * *", `day-of-month field: bad step ""`},
		{"0 0 1/x * *", `day-of-month field: bad step "x"`},
		{"0 0 1/2/3 * *", `day-of-month field: bad step "2/3"`},
		{"5-1 * * * *", `minute field: range "5-1" is reversed`},
		{"* * * * FRI-MON", `day-of-week field: range "FRI-MON" is reversed`},
		{"* * * FOO *", `month field: unknown name "FOO"`},
		{"* * * JAN-FOO *", `month field: unknown name "FOO"`},
		{"* * * * Funday", `day-of-week field: unknown name "Funday"`},
		{"* * * * MON-", `day-of-week field: missing value in "MON-"`},
		{"-5 * * * *", `minute field: missing value in "-5"`},
		{"1-2-3 * * * *", `minute field: bad value "2-3"`},
		{"+5 * * * *", `minute field: bad value "+5"`},
		{"MON * * * *", `minute field: bad value "MON"`},
		{"* JAN * * *", `hour field: bad value "JAN"`},
		{"? * * * *", `minute field: "?" is only allowed in day-of-month and day-of-week`},
		{"0 0 30 2 *", "day-of-month field: no month allowed by the month field has day(s) 30"},
		{"0 0 31 4,6,9,11 *", "day-of-month field: no month allowed"},
		{"0 0 30,31 FEB ?", "day-of-month field: no month allowed"},
		{"@foo", `unknown descriptor "@foo"`},
		{"@daily 5", "descriptor @daily takes no arguments"},
		{"@every", "@every takes exactly one duration"},
		{"@every 1h 2h", "@every takes exactly one duration"},
		{"@every abc", `@every: invalid duration "abc"`},
		{"@every 0s", "@every: duration 0s is not positive"},
		{"@every -1h", "@every: duration -1h0m0s is not positive"},
		{"CRON_TZ=Mars/Olympus_Mons * * * * *", `unknown time zone "Mars/Olympus_Mons"`},
		{"TZ=../etc/passwd * * * * *", `unknown time zone "../etc/passwd"`},
		{"CRON_TZ= * * * * *", "empty time zone name"},
		{"CRON_TZ=UTC", "empty expression"},
	}
	for _, tt := range tests {
		tr, err := ParseCron(tt.expr)
		if err == nil {
			t.Errorf("ParseCron(%q) = %v, want error containing %q", tt.expr, tr, tt.want)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, fmt.Sprintf("errand: cron %q: ", tt.expr)) || !strings.Contains(msg, tt.want) {
			t.Errorf("ParseCron(%q) error = %q, want it to quote the expression and contain %q", tt.expr, msg, tt.want)
		}
	}
}

// checkNext iterates Next from after and compares with want (RFC 3339).
func checkNext(t *testing.T, tr Trigger, name string, after time.Time, want []string) {
	t.Helper()
	got := after
	for i, w := range want {
		prev := got
		got = tr.Next(prev)
		if w == "" {
			if !got.IsZero() {
				t.Errorf("%s: Next #%d (after %v) = %v, want zero time", name, i+1, prev, got)
			}
			return
		}
		wt := mustTime(t, w, nil)
		if !got.Equal(wt) || got.Format(time.RFC3339) != w {
			t.Errorf("%s: Next #%d (after %v) = %s, want %s", name, i+1, prev, got.Format(time.RFC3339), w)
			return
		}
	}
}

func TestCronNext(t *testing.T) {
	utc := time.UTC
	tokyo := mustLoc(t, "Asia/Tokyo")
	ny := mustLoc(t, "America/New_York")
	lordHowe := mustLoc(t, "Australia/Lord_Howe")
	tests := []struct {
		expr  string
		loc   *time.Location
		after string
		want  []string
	}{
		// Months, month ends and year ends.
		{"0 0 1 * *", utc, "2026-01-15T10:00:00", []string{"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"}},
		{"0 0 31 * *", utc, "2026-01-31T00:00:00", []string{"2026-03-31T00:00:00Z", "2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"}},
		{"59 23 31 12 *", utc, "2026-12-31T23:59:00", []string{"2027-12-31T23:59:00Z", "2028-12-31T23:59:00Z"}},
		{"*/20 * * * * *", utc, "2026-12-31T23:59:30", []string{"2026-12-31T23:59:40Z", "2027-01-01T00:00:00Z", "2027-01-01T00:00:20Z"}},
		{"0 0 1 1 *", utc, "2026-06-01T00:00:00", []string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"}},
		// Leap years.
		{"0 0 29 2 *", utc, "2026-01-01T00:00:00", []string{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"}},
		{"0 0 29 2 *", utc, "2096-03-01T00:00:00", []string{"2104-02-29T00:00:00Z"}},
		{"0 12 29 FEB ?", tokyo, "2027-06-01T00:00:00", []string{"2028-02-29T12:00:00+09:00"}},
		{"0 0 28-29 2 *", utc, "2027-02-28T00:00:00", []string{"2028-02-28T00:00:00Z", "2028-02-29T00:00:00Z", "2029-02-28T00:00:00Z"}},
		// POSIX day rule. 2026-01-01 is a Thursday.
		{"0 0 13 * FRI", utc, "2026-01-01T00:00:00", []string{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-16T00:00:00Z"}},
		{"0 0 13 * *", utc, "2026-01-01T00:00:00", []string{"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z"}},
		{"0 0 13 * ?", utc, "2026-01-01T00:00:00", []string{"2026-01-13T00:00:00Z", "2026-02-13T00:00:00Z"}},
		{"0 0 * * FRI", utc, "2026-01-01T00:00:00", []string{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-16T00:00:00Z"}},
		{"0 0 ? * 5", utc, "2026-01-01T00:00:00", []string{"2026-01-02T00:00:00Z", "2026-01-09T00:00:00Z"}},
		{"0 0 1-3 * MON", utc, "2026-01-01T00:00:00", []string{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"}},
		{"0 0 */1 * MON", utc, "2026-01-01T00:00:00", []string{"2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"}},
		{"0 0 30 2 MON", utc, "2026-01-31T00:00:00", []string{"2026-02-02T00:00:00Z", "2026-02-09T00:00:00Z"}},
		{"0 0 * * 7", utc, "2026-01-01T00:00:00", []string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
		{"0 0 * * 5-7", utc, "2026-01-01T00:00:00", []string{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z", "2026-01-09T00:00:00Z"}},
		// Names, descriptors.
		{"0 12 * JAN-MAR mon-fri", utc, "2026-03-31T12:00:00", []string{"2027-01-01T12:00:00Z", "2027-01-04T12:00:00Z"}},
		{"@yearly", utc, "2026-01-01T00:00:00", []string{"2027-01-01T00:00:00Z"}},
		{"@monthly", utc, "2026-01-31T23:59:59", []string{"2026-02-01T00:00:00Z"}},
		{"@weekly", utc, "2026-01-01T00:00:00", []string{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"}},
		{"@daily", utc, "2026-01-01T00:00:00", []string{"2026-01-02T00:00:00Z"}},
		{"@midnight", utc, "2026-01-01T23:00:00", []string{"2026-01-02T00:00:00Z"}},
		{"@hourly", utc, "2026-01-01T00:00:00", []string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},
		{"@every 1h30m", utc, "2026-01-01T00:00:10", []string{"2026-01-01T01:30:10Z", "2026-01-01T03:00:10Z"}},
		// Beyond the explicit transitions of the tz database, Go computes
		// zones from a rule and ZoneBounds misreports the last UTC day of
		// leap years (golang.org/issue/81583).
		{"0 0 29 2 *", ny, "2036-03-01T00:00:00", []string{"2040-02-29T00:00:00-05:00", "2044-02-29T00:00:00-05:00", "2048-02-29T00:00:00-05:00"}},
		{"0 12 * * *", ny, "2040-12-30T13:00:00", []string{"2040-12-31T12:00:00-05:00", "2041-01-01T12:00:00-05:00"}},
		{"0 * * * *", lordHowe, "2044-12-31T09:30:00", []string{"2044-12-31T10:00:00+11:00", "2044-12-31T11:00:00+11:00", "2044-12-31T12:00:00+11:00"}},
		{"30 2 * * *", ny, "2044-03-12T12:00:00", []string{"2044-03-13T03:00:00-04:00", "2044-03-14T02:30:00-04:00"}},
		// Time zones: CRON_TZ wins; without it, after's Location is used.
		// The result is in after's Location.
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", utc, "2025-12-31T23:00:00", []string{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"}},
		{"TZ=Asia/Tokyo 0 9 * * *", utc, "2026-01-01T00:00:00", []string{"2026-01-02T00:00:00Z"}},
		{"0 9 * * *", tokyo, "2026-01-01T00:00:00", []string{"2026-01-01T09:00:00+09:00", "2026-01-02T09:00:00+09:00"}},
		{"CRON_TZ=UTC 0 9 * * *", tokyo, "2026-01-01T00:00:00", []string{"2026-01-01T18:00:00+09:00"}},
	}
	for _, tt := range tests {
		checkNext(t, mustCronTrigger(t, tt.expr), tt.expr, mustTime(t, tt.after, tt.loc), tt.want)
	}
}

func mustCronTrigger(t testing.TB, expr string) Trigger {
	t.Helper()
	tr, err := ParseCron(expr)
	if err != nil {
		t.Fatalf("ParseCron(%q): %v", expr, err)
	}
	return tr
}

func TestCronNextTruncatesToSeconds(t *testing.T) {
	every := mustCronTrigger(t, "* * * * * *")
	after := time.Date(2026, 1, 1, 12, 0, 0, 500_000_000, time.UTC)
	if got, want := every.Next(after), time.Date(2026, 1, 1, 12, 0, 1, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", after, got, want)
	}
	hourly := mustCronTrigger(t, "0 * * * *")
	after = time.Date(2026, 1, 1, 11, 59, 59, 999_999_999, time.UTC)
	if got, want := hourly.Next(after), time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", after, got, want)
	}
	// Exactly on a match: strictly after.
	after = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if got, want := hourly.Next(after), time.Date(2026, 1, 1, 13, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("Next(%v) = %v, want %v", after, got, want)
	}
	// Zero time and far-away instants work.
	if got := hourly.Next(time.Time{}); !got.Equal(time.Date(1, 1, 1, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("Next(zero) = %v", got)
	}
}

// The four zones and their 2026 transitions (checked against Go's tzdata):
//
//	America/New_York    spring 2026-03-08 02:00 EST -> 03:00 EDT, fall 2026-11-01 02:00 EDT -> 01:00 EST
//	Europe/Berlin       spring 2026-03-29 02:00 CET -> 03:00 CEST, fall 2026-10-25 03:00 CEST -> 02:00 CET
//	Australia/Sydney    fall 2026-04-05 03:00 AEDT -> 02:00 AEST, spring 2026-10-04 02:00 AEST -> 03:00 AEDT
//	Australia/Lord_Howe fall 2026-04-05 02:00 +11 -> 01:30 +1030, spring 2026-10-04 02:00 +1030 -> 02:30 +11
func TestTransitionDates(t *testing.T) {
	tests := []struct {
		zone, before, at string
	}{
		{"America/New_York", "2026-03-08T01:59:59-05:00", "2026-03-08T03:00:00-04:00"},
		{"America/New_York", "2026-11-01T01:59:59-04:00", "2026-11-01T01:00:00-05:00"},
		{"Europe/Berlin", "2026-03-29T01:59:59+01:00", "2026-03-29T03:00:00+02:00"},
		{"Europe/Berlin", "2026-10-25T02:59:59+02:00", "2026-10-25T02:00:00+01:00"},
		{"Australia/Sydney", "2026-04-05T02:59:59+11:00", "2026-04-05T02:00:00+10:00"},
		{"Australia/Sydney", "2026-10-04T01:59:59+10:00", "2026-10-04T03:00:00+11:00"},
		{"Australia/Lord_Howe", "2026-04-05T01:59:59+11:00", "2026-04-05T01:30:00+10:30"},
		{"Australia/Lord_Howe", "2026-10-04T01:59:59+10:30", "2026-10-04T02:30:00+11:00"},
	}
	for _, tt := range tests {
		loc := mustLoc(t, tt.zone)
		before := mustTime(t, tt.before, nil).In(loc)
		_, end := before.ZoneBounds()
		if got := end.Format(time.RFC3339); got != tt.at {
			t.Errorf("%s: transition after %s is %s, want %s", tt.zone, tt.before, got, tt.at)
		}
	}
}

func TestCronDST(t *testing.T) {
	tests := []struct {
		zone, expr, after string
		want              []string
	}{
		// America/New_York, spring forward: 02:00-02:59 does not exist.
		{"America/New_York", "30 2 * * *", "2026-03-07T03:00:00", []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}},
		{"America/New_York", "0,30 2 * * *", "2026-03-08T00:00:00", []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"}},
		{"America/New_York", "0 2,3 * * *", "2026-03-08T00:00:00", []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"}},
		{"America/New_York", "0 * * * *", "2026-03-08T00:30:00", []string{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"}},
		{"America/New_York", "30 30 2 * * *", "2026-03-08T00:00:00", []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:30-04:00"}},
		{"America/New_York", "*/30 * * * * *", "2026-03-08T01:59:00", []string{"2026-03-08T01:59:30-05:00", "2026-03-08T03:00:00-04:00", "2026-03-08T03:00:30-04:00"}},
		// America/New_York, fall back: 01:00-01:59 happens twice.
		{"America/New_York", "30 1 * * *", "2026-10-31T12:00:00", []string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}},
		{"America/New_York", "30 1 * * *", "2026-11-01T01:10:00-05:00", []string{"2026-11-02T01:30:00-05:00"}},
		{"America/New_York", "30 1 * * *", "2026-11-01T01:40:00-04:00", []string{"2026-11-02T01:30:00-05:00"}},
		{"America/New_York", "0 * * * *", "2026-11-01T00:30:00", []string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T02:00:00-05:00"}},
		{"America/New_York", "30 30 1 * * *", "2026-11-01T00:00:00", []string{"2026-11-01T01:30:30-04:00", "2026-11-02T01:30:30-05:00"}},
		{"America/New_York", "*/30 * * * * *", "2026-11-01T01:59:00-04:00", []string{"2026-11-01T01:59:30-04:00", "2026-11-01T01:00:00-05:00", "2026-11-01T01:00:30-05:00"}},
		// Europe/Berlin: gap 02:00-02:59 on 2026-03-29, 02:00-02:59 twice on 2026-10-25.
		{"Europe/Berlin", "30 2 * * *", "2026-03-28T12:00:00", []string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"Europe/Berlin", "0 * * * *", "2026-03-29T00:30:00", []string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00"}},
		{"Europe/Berlin", "30 2 * * *", "2026-10-24T12:00:00", []string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"Europe/Berlin", "0 * * * *", "2026-10-25T01:30:00", []string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00", "2026-10-25T03:00:00+01:00"}},
		{"Europe/Berlin", "15 30 2 * * *", "2026-03-29T00:00:00", []string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:15+02:00"}},
		{"Europe/Berlin", "15 30 2 * * *", "2026-10-25T00:00:00", []string{"2026-10-25T02:30:15+02:00", "2026-10-26T02:30:15+01:00"}},
		// Australia/Sydney: 02:00-02:59 twice on 2026-04-05, gap 02:00-02:59 on 2026-10-04.
		{"Australia/Sydney", "30 2 * * *", "2026-04-04T12:00:00", []string{"2026-04-05T02:30:00+11:00", "2026-04-06T02:30:00+10:00"}},
		{"Australia/Sydney", "0 * * * *", "2026-04-05T01:30:00", []string{"2026-04-05T02:00:00+11:00", "2026-04-05T02:00:00+10:00", "2026-04-05T03:00:00+10:00"}},
		{"Australia/Sydney", "30 2 * * *", "2026-10-03T12:00:00", []string{"2026-10-04T03:00:00+11:00", "2026-10-05T02:30:00+11:00"}},
		{"Australia/Sydney", "0 * * * *", "2026-10-04T01:30:00", []string{"2026-10-04T03:00:00+11:00", "2026-10-04T04:00:00+11:00"}},
		{"Australia/Sydney", "0 0 2 * * *", "2026-10-04T00:00:00", []string{"2026-10-04T03:00:00+11:00", "2026-10-05T02:00:00+11:00"}},
		// Australia/Lord_Howe: 01:30-01:59 twice on 2026-04-05, gap 02:00-02:29 on 2026-10-04.
		{"Australia/Lord_Howe", "45 1 * * *", "2026-04-04T12:00:00", []string{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}},
		{"Australia/Lord_Howe", "30 * * * *", "2026-04-05T01:00:00", []string{"2026-04-05T01:30:00+11:00", "2026-04-05T01:30:00+10:30", "2026-04-05T02:30:00+10:30"}},
		{"Australia/Lord_Howe", "0 * * * *", "2026-04-05T00:30:00", []string{"2026-04-05T01:00:00+11:00", "2026-04-05T02:00:00+10:30"}},
		{"Australia/Lord_Howe", "15 2 * * *", "2026-10-03T12:00:00", []string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}},
		{"Australia/Lord_Howe", "0,15 2 * * *", "2026-10-04T00:00:00", []string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:00:00+11:00"}},
		{"Australia/Lord_Howe", "30 2 * * *", "2026-10-04T00:00:00", []string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:30:00+11:00"}},
		{"Australia/Lord_Howe", "0 * * * *", "2026-10-04T01:30:00", []string{"2026-10-04T03:00:00+11:00"}},
		{"Australia/Lord_Howe", "30 * * * *", "2026-10-04T01:00:00", []string{"2026-10-04T01:30:00+10:30", "2026-10-04T02:30:00+11:00", "2026-10-04T03:30:00+11:00"}},
		{"Australia/Lord_Howe", "10 20 2 * * *", "2026-10-04T00:00:00", []string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:20:10+11:00"}},
		// Asia/Beirut changes at midnight: 00:00-00:59 does not exist on
		// 2026-03-29 and 23:00-23:59 happens twice on 2026-10-24. The
		// second copy of 23:30 is the last run for a year.
		{"Asia/Beirut", "@daily", "2026-03-28T12:00:00", []string{"2026-03-29T01:00:00+03:00", "2026-03-30T00:00:00+03:00"}},
		{"Asia/Beirut", "30 * 24 10 *", "2026-10-24T23:45:00+03:00", []string{"2026-10-24T23:30:00+02:00", "2027-10-24T00:30:00+03:00"}},
		{"Asia/Beirut", "30 23 24 10 *", "2026-10-24T23:45:00+03:00", []string{"2027-10-24T23:30:00+03:00"}},
		// CRON_TZ with an after in another zone.
		{"UTC", "CRON_TZ=America/New_York 30 2 * * *", "2026-03-08T00:00:00", []string{"2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
	}
	for _, tt := range tests {
		loc := mustLoc(t, tt.zone)
		checkNext(t, mustCronTrigger(t, tt.expr), tt.zone+" "+tt.expr, mustTime(t, tt.after, loc).In(loc), tt.want)
	}
}

// countRuns counts the runs in the local day that starts on date in loc.
func countRuns(tr Trigger, loc *time.Location, y int, m time.Month, d int) int {
	start := time.Date(y, m, d, 0, 0, 0, 0, loc)
	end := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	n := 0
	for t := tr.Next(start.Add(-time.Second)); !t.IsZero() && t.Before(end); t = tr.Next(t) {
		n++
	}
	return n
}

func TestCronDSTCounts(t *testing.T) {
	type day struct {
		m time.Month
		d int
	}
	zones := []struct {
		zone         string
		spring, fall day
		// Expected runs on the spring and fall days.
		quarter, hourly, halfPast, minuteOfTwo, halfMinute [2]int
	}{
		{"America/New_York", day{3, 8}, day{11, 1}, [2]int{23 * 4, 25 * 4}, [2]int{23, 25}, [2]int{23, 25}, [2]int{1, 60}, [2]int{23 * 120, 25 * 120}},
		{"Europe/Berlin", day{3, 29}, day{10, 25}, [2]int{23 * 4, 25 * 4}, [2]int{23, 25}, [2]int{23, 25}, [2]int{1, 60}, [2]int{23 * 120, 25 * 120}},
		{"Australia/Sydney", day{10, 4}, day{4, 5}, [2]int{23 * 4, 25 * 4}, [2]int{23, 25}, [2]int{23, 25}, [2]int{1, 60}, [2]int{23 * 120, 25 * 120}},
		// Lord Howe shifts by 30 minutes: spring loses 02:00 and 02:15
		// (and the 02:00 hourly run), fall repeats 01:30 and 01:45 (and
		// the 01:30 run of "30 * * * *"). Hour 2 loses its first half hour
		// on the spring day: "* 2 * * *" runs 02:30..02:59, the skipped
		// minutes collapsing into the 02:30 run.
		{"Australia/Lord_Howe", day{10, 4}, day{4, 5}, [2]int{96 - 2, 96 + 2}, [2]int{23, 24}, [2]int{24, 25}, [2]int{30, 60}, [2]int{24*120 - 60, 24*120 + 60}},
	}
	for _, z := range zones {
		loc := mustLoc(t, z.zone)
		for i, dd := range []day{z.spring, z.fall} {
			for _, c := range []struct {
				expr string
				want int
			}{
				{"*/15 * * * *", z.quarter[i]},
				{"0 * * * *", z.hourly[i]},
				{"30 * * * *", z.halfPast[i]},
				{"* 2 * * *", z.minuteOfTwo[i]},
				{"*/30 * * * * *", z.halfMinute[i]},
				{"0 30 2 * * *", 1},
				{"0 0 0 * * *", 1},
			} {
				expr := c.expr
				if z.zone == "Australia/Lord_Howe" && dd == z.fall && expr == "* 2 * * *" {
					expr = "* 1 * * *" // the repeated time is in hour 1 there
				}
				if got := countRuns(mustCronTrigger(t, expr), loc, 2026, dd.m, dd.d); got != c.want {
					t.Errorf("%s 2026-%02d-%02d %q: %d runs, want %d", z.zone, dd.m, dd.d, expr, got, c.want)
				}
			}
		}
	}
}

// bruteRuns lists the runs of c whose instants fall in (from, to], found by
// enumerating wall-clock times step by step and applying the documented DST
// rules directly. All transitions in the zones used are on whole minutes.
func bruteRuns(c *cronSchedule, loc *time.Location, from, to time.Time, step time.Duration) []time.Time {
	offsets := map[int]bool{}
	for u := from.Add(-48 * time.Hour); u.Before(to.Add(48 * time.Hour)); u = u.Add(15 * time.Minute) {
		_, off := u.In(loc).Zone()
		offsets[off] = true
	}
	wallOf := func(u time.Time) time.Time { _, off := u.In(loc).Zone(); return wallClock(u, off) }
	var runs []time.Time
	wStart := wallOf(from).Add(-3 * time.Hour).Truncate(step)
	wEnd := wallOf(to).Add(3 * time.Hour)
	for w := wStart; !w.After(wEnd); w = w.Add(step) {
		if !bruteMatches(c, w) {
			continue
		}
		var insts []time.Time
		for off := range offsets {
			if u := w.Add(-time.Duration(off) * time.Second); wallOf(u).Equal(w) {
				insts = append(insts, u)
			}
		}
		slices.SortFunc(insts, func(a, b time.Time) int { return a.Compare(b) })
		switch {
		case c.hourWild:
			runs = append(runs, insts...)
		case len(insts) > 0:
			runs = append(runs, insts[0]) // first occurrence
		default: // in a gap: the first instant after it
			u := w.Add(-14 * time.Hour).Truncate(time.Minute)
			for !wallOf(u).After(w) {
				u = u.Add(time.Minute)
			}
			runs = append(runs, u)
		}
	}
	slices.SortFunc(runs, func(a, b time.Time) int { return a.Compare(b) })
	runs = slices.CompactFunc(runs, time.Time.Equal)
	return slices.DeleteFunc(runs, func(u time.Time) bool { return !u.After(from) || u.After(to) })
}

// bruteMatches checks a wall-clock time (fields read in UTC) against c.
func bruteMatches(c *cronSchedule, w time.Time) bool {
	has := func(set uint64, v int) bool { return set&(1<<v) != 0 }
	dom, dow := has(c.dom, w.Day()), has(c.dow, int(w.Weekday()))
	day := dom || dow
	if c.domStar || c.dowStar {
		day = dom && dow
	}
	return day && has(c.month, int(w.Month())) && has(c.hour, w.Hour()) &&
		has(c.minute, w.Minute()) && has(c.second, w.Second())
}

func TestCronNextMatchesBruteForce(t *testing.T) {
	days := map[string][]string{
		"America/New_York":    {"2026-03-08", "2026-11-01"},
		"Europe/Berlin":       {"2026-03-29", "2026-10-25"},
		"Australia/Sydney":    {"2026-04-05", "2026-10-04"},
		"Australia/Lord_Howe": {"2026-04-05", "2026-10-04"},
		"UTC":                 {"2026-03-08"},
	}
	exprs := []string{
		"*/15 * * * *", "0 * * * *", "30 * * * *", "*/7 * * * *", "0 */2 * * *",
		"30 2 * * *", "0,30 2 * * *", "15 1 * * *", "45 1 * * *", "* 2 * * *", "* 1 * * *",
		"0 1-3 * * *", "*/10 0-4 * * *", "5 2,3 * * *", "0 0 * * *", "59 1 * * SUN",
		"0/30 1,2 * * *", "20 3 * * *", "0 0-23 * * *",
	}
	secondExprs := []string{"*/20 * * * * *", "10 30 2 * * *", "*/15 * 2 * * *", "45 59 1 * * *", "0 30 1 * * *"}
	for zone, ds := range days {
		loc := mustLoc(t, zone)
		for _, d := range ds {
			day := mustTime(t, d+"T00:00:00", loc)
			check := func(expr string, from, to time.Time, step time.Duration) {
				c := mustCron(t, expr)
				want := bruteRuns(c, loc, from, to, step)
				var got []time.Time
				for u := c.Next(from); !u.IsZero() && !u.After(to); u = c.Next(u) {
					got = append(got, u)
				}
				if !slices.EqualFunc(got, want, time.Time.Equal) {
					t.Errorf("%s %s from %v: Next gives %d runs %v\nbrute force gives %d runs %v", zone, expr, from, len(got), got, len(want), want)
				}
			}
			for _, expr := range exprs {
				check(expr, day.Add(-3*time.Hour), day.Add(27*time.Hour), time.Minute)
			}
			for _, expr := range secondExprs {
				check(expr, day.Add(30*time.Minute), day.Add(4*time.Hour), time.Second)
			}
		}
	}
}

// refNext is a slow reference for Next on 5-field expressions: it walks the
// wall-clock days and brute-forces the matching ones minute by minute.
func refNext(c *cronSchedule, loc *time.Location, after time.Time) time.Time {
	y, m, d := after.In(loc).Date()
	for day := time.Date(y, m, d-1, 0, 0, 0, 0, time.UTC); day.Year() <= y+searchYears; day = day.AddDate(0, 0, 1) {
		if !bruteMatchesDay(c, day) {
			continue
		}
		start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc).Add(-3 * time.Hour)
		if start.Before(after) {
			start = after
		}
		if runs := bruteRuns(c, loc, start, start.Add(30*time.Hour), time.Minute); len(runs) > 0 {
			return runs[0]
		}
	}
	return time.Time{}
}

func bruteMatchesDay(c *cronSchedule, w time.Time) bool {
	full := *c
	full.hour, full.minute, full.second = 1<<24-1, 1<<60-1, 1<<60-1
	return bruteMatches(&full, w)
}

func TestCronNextMatchesReferenceRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	zones := []string{"America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe", "Asia/Beirut"}
	var transitions []time.Time
	for _, z := range zones {
		u := time.Date(2026, 1, 1, 0, 0, 0, 0, mustLoc(t, z))
		for range 8 {
			_, u = u.ZoneBounds()
			transitions = append(transitions, u)
		}
	}
	n := 600
	if testing.Short() {
		n = 100
	}
	for i := 0; i < n; i++ {
		expr := randomCronExpr(r, false)
		c0, err := ParseCron(expr)
		if err != nil {
			continue
		}
		c := c0.(*cronSchedule)
		loc := mustLoc(t, zones[i%len(zones)])
		u := transitions[r.IntN(len(transitions))].Add(time.Duration(r.IntN(96)-48) * time.Hour).Add(time.Duration(r.IntN(3600)) * time.Second)
		for j := 0; j < 4; j++ {
			got, want := c.Next(u.In(loc)), refNext(c, loc, u)
			if !got.Equal(want) {
				t.Fatalf("%q in %v: Next(%v) = %v, reference %v", expr, loc, u.In(loc), got, want.In(loc))
			}
			if got.IsZero() {
				break
			}
			u = got
		}
	}
}

func TestEveryTrigger(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	after := time.Date(2026, 3, 8, 1, 30, 0, 123, ny)
	tr := Every(time.Hour)
	got := tr.Next(after)
	if !got.Equal(after.Add(time.Hour)) {
		t.Errorf("Every(1h).Next(%v) = %v, want %v", after, got, after.Add(time.Hour))
	}
	if h, m, _ := got.Clock(); h != 3 || m != 30 {
		t.Errorf("Every(1h) across spring forward: wall clock %02d:%02d, want 03:30", h, m)
	}
	fall := time.Date(2026, 11, 1, 1, 30, 0, 0, ny) // EDT
	if got := Every(time.Hour).Next(fall); !got.Equal(fall.Add(time.Hour)) || got.Hour() != 1 {
		t.Errorf("Every(1h).Next(%v) = %v, want 01:30 EST", fall, got)
	}
	if got := Every(1500 * time.Millisecond).Next(after); !got.Equal(after.Add(1500 * time.Millisecond)) {
		t.Errorf("Every(1.5s).Next = %v", got)
	}
	for _, d := range []time.Duration{0, -1, -time.Hour} {
		if got := Every(d).Next(after); !got.IsZero() {
			t.Errorf("Every(%v).Next = %v, want zero time", d, got)
		}
	}
	// @every is the same trigger.
	tr2 := mustCronTrigger(t, "@every 1h")
	if tr2 != tr {
		t.Errorf("@every 1h = %#v, want %#v", tr2, tr)
	}
}

// A parsed Trigger is immutable: concurrent Next calls agree (run with -race).
func TestCronConcurrentNext(t *testing.T) {
	tr := mustCronTrigger(t, "CRON_TZ=Australia/Lord_Howe 0,15 2 * * *")
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	want := make([]time.Time, 20)
	for i, u := 0, from; i < len(want); i++ {
		u = tr.Next(u)
		want[i] = u
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := from
			for i := range want {
				if u = tr.Next(u); !u.Equal(want[i]) {
					errs <- fmt.Sprintf("run %d: %v, want %v", i, u, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestWeekday(t *testing.T) {
	for y := -801; y <= 2801; y += 7 {
		for m := 1; m <= 12; m++ {
			for _, d := range []int{1, 13, 28} {
				want := int(time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Weekday())
				if got := weekday(y, m, d); got != want {
					t.Fatalf("weekday(%d, %d, %d) = %d, want %d", y, m, d, got, want)
				}
			}
		}
	}
}

// randomCronExpr builds a random, usually valid, cron expression.
func randomCronExpr(r *rand.Rand, withSeconds bool) string {
	type bound struct{ lo, hi int }
	bounds := []bound{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 7}}
	months := strings.Split("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC", " ")
	days := strings.Split("SUN MON TUE WED THU FRI SAT", " ")
	val := func(f, v int) string {
		if f == fMonth && r.IntN(3) == 0 {
			return strings.ToLower(months[v-1])
		}
		if f == fDow && v < 7 && r.IntN(3) == 0 {
			return days[v]
		}
		return fmt.Sprint(v)
	}
	item := func(f int) string {
		b := bounds[f]
		v := b.lo + r.IntN(b.hi-b.lo+1)
		switch r.IntN(8) {
		case 0:
			if (f == fDom || f == fDow) && r.IntN(2) == 0 {
				return "?"
			}
			return "*"
		case 1:
			return fmt.Sprintf("*/%d", 1+r.IntN(b.hi-b.lo+1))
		case 2:
			w := v + r.IntN(b.hi-v+1)
			return val(f, v) + "-" + val(f, w)
		case 3:
			w := v + r.IntN(b.hi-v+1)
			return fmt.Sprintf("%s-%s/%d", val(f, v), val(f, w), 1+r.IntN(10))
		case 4:
			return fmt.Sprintf("%s/%d", val(f, v), 1+r.IntN(10))
		default:
			return val(f, v)
		}
	}
	field := func(f int) string {
		if r.IntN(3) == 0 {
			return "*"
		}
		items := []string{item(f)}
		for r.IntN(3) == 0 {
			items = append(items, item(f))
		}
		return strings.Join(items, ",")
	}
	var fs []string
	first := fMinute
	if withSeconds {
		first = fSecond
	}
	for f := first; f <= fDow; f++ {
		fs = append(fs, field(f))
	}
	return strings.Join(fs, " ")
}

func TestCronNextRandomStrictlyIncreasing(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	locs := []*time.Location{time.UTC, mustLoc(t, "America/New_York"), mustLoc(t, "Australia/Lord_Howe"), mustLoc(t, "Europe/Berlin")}
	parsed := 0
	for i := 0; i < 2000; i++ {
		expr := randomCronExpr(r, r.IntN(3) == 0)
		c0, err := ParseCron(expr)
		if err != nil {
			if !strings.Contains(err.Error(), "no month allowed") {
				t.Fatalf("ParseCron(%q): %v", expr, err)
			}
			continue
		}
		parsed++
		c := c0.(*cronSchedule)
		loc := locs[i%len(locs)]
		u := time.Unix(r.Int64N(4_000_000_000), r.Int64N(1e9)).In(loc)
		for j := 0; j < 50; j++ {
			next := c.Next(u)
			if next.IsZero() {
				t.Fatalf("%q in %v: Next(%v) = zero time", expr, loc, u)
			}
			if !next.After(u) {
				t.Fatalf("%q in %v: Next(%v) = %v, not after", expr, loc, u, next)
			}
			// Every run matches the fields, except the one run of a
			// fixed-time job that stands for times skipped by a gap.
			_, off := next.Zone()
			if w := wallClock(next, off); !bruteMatches(c, w) {
				start, _ := next.ZoneBounds()
				_, prevOff := start.Add(-time.Second).Zone()
				if c.hourWild || !start.Equal(next) || prevOff >= off {
					t.Fatalf("%q in %v: Next(%v) = %v, which does not match", expr, loc, u, next)
				}
			}
			u = next
		}
	}
	if parsed < 1900 {
		t.Errorf("only %d of 2000 random expressions parsed", parsed)
	}
}

func FuzzParseCron(f *testing.F) {
	for _, s := range []string{
		"* * * * *", "0 25 * * *", "*/15 * * * *", "10-50/5 * * * *", "5/10 * * * *",
		"0 0 1,15 * MON-FRI", "0 0 * * 7", "0 0 * * 5-7", "0 0 ? * SUN", "0 0 29 2 *",
		"0 0 30 2 *", "0 0 31 4 *", "0 0 30 2 MON", "*/20 * * * * *", "30 30 2 * * *",
		"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
		"@every 1h30m", "@every 0s", "@every -5m", "@every 1ns", "@every 2562047h",
		"CRON_TZ=America/New_York 30 2 * * *", "TZ=Australia/Lord_Howe 0,15 2 * * *",
		"CRON_TZ=Nowhere/Land * * * * *", "CRON_TZ= * * * * *", "TZ=Local @hourly",
		"1,,2 * * * *", "*/0 * * * *", "5-1 * * * *", "* * * FOO *", "1-2-3/4/5 * * * *",
		"99999999999999999999 * * * *", "", " ", "@", "0 0 L * *", "0 0 1W * *", "0 0 * * 5#3",
	} {
		f.Add(s)
	}
	froms := []time.Time{
		time.Date(2026, 3, 8, 1, 59, 59, 0, time.UTC),
		time.Date(2026, 11, 1, 0, 59, 59, 999, mustLoc(f, "America/New_York")),
		time.Date(2026, 10, 4, 1, 45, 0, 0, mustLoc(f, "Australia/Lord_Howe")),
		time.Date(2096, 3, 1, 0, 0, 0, 0, mustLoc(f, "Europe/Berlin")),
		{},
	}
	f.Fuzz(func(t *testing.T, expr string) {
		tr, err := ParseCron(expr)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "errand: cron ") {
				t.Fatalf("ParseCron(%q) error %q lacks the errand: cron prefix", expr, err)
			}
			return
		}
		for _, u := range froms {
			for range 20 {
				next := tr.Next(u)
				if next.IsZero() {
					break
				}
				if !next.After(u) {
					t.Fatalf("%q: Next(%v) = %v, not strictly after", expr, u, next)
				}
				u = next
			}
		}
	})
}

func BenchmarkCronNext(b *testing.B) {
	ny := mustLoc(b, "America/New_York")
	for _, bc := range []struct {
		name, expr string
		loc        *time.Location
	}{
		{"daily/NewYork", "30 2 * * *", ny},
		{"quarterHour/UTC", "*/15 * * * *", time.UTC},
		{"weekdays/NewYork", "0 9 * * MON-FRI", ny},
		{"yearly/NewYork", "@yearly", ny},
		{"feb29/UTC", "0 0 29 2 *", time.UTC},
		{"everySecond/NewYork", "* * * * * *", ny},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := mustCronTrigger(b, bc.expr)
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, bc.loc)
			end := time.Date(2100, 1, 1, 0, 0, 0, 0, bc.loc)
			u := start
			b.ReportAllocs()
			for b.Loop() {
				u = tr.Next(u)
				if u.After(end) {
					u = start
				}
			}
		})
	}
}

func BenchmarkParseCron(b *testing.B) {
	for _, expr := range []string{"*/15 9-17 * * MON-FRI", "CRON_TZ=America/New_York 30 2 * * *"} {
		b.Run(strings.Fields(expr)[0], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseCron(expr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
