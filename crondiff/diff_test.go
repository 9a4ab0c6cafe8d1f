// Package crondiff compares errand's cron parser with github.com/robfig/cron/v3.
//
// It is a separate module so that errand itself does not depend on
// robfig/cron. The differential test parses several thousand random valid
// expressions (fixed seed) with both libraries and compares Next from random
// instants in UTC and in Asia/Tokyo (no DST since 1951), where the two must
// agree except for the deliberate differences below, which
// TestDocumentedDifferences demonstrates one by one. The same list is in the
// DIFFERENCES section of ParseCron's doc comment in errand's cron.go.
//
// DELIBERATE DIFFERENCES (errand vs robfig/cron/v3):
//
//  1. DST. errand follows Vixie cron: a fixed-time job (hour field not "*"
//     nor "*/n") whose time is skipped by a spring-forward gap runs once at
//     the first instant after the gap; a repeated time runs once, at its first
//     occurrence; jobs whose hour field contains "*" follow the clock (no run
//     in the gap, runs in both copies of a repeated hour). robfig/cron has no
//     such policy: it searches the wall clock with time.Date and Add, so a
//     fixed-time job whose time falls in a spring-forward gap does not run
//     that day ("30 2 * * *" in America/New_York skips 2026-03-08), and one
//     in a repeated hour runs in both copies ("30 1 * * *" runs at 01:30 EDT
//     and 01:30 EST on 2026-11-01). For clock-following jobs ("0 * * * *",
//     "*/15 * * * *") the two agree around these transitions. This test
//     therefore compares only in UTC and Asia/Tokyo.
//  2. Search bound. robfig gives up after 5 years and returns the zero time,
//     e.g. "0 0 29 2 *" from 2096-03-01 (the next Feb 29 is in 2104);
//     errand searches about 12 years.
//  3. Impossible dates. robfig accepts "0 0 30 2 *" and its Next returns the
//     zero time; errand's ParseCron returns an error naming the
//     day-of-month field.
//  4. Day-of-week 7. errand accepts 7 as Sunday, also in ranges ("5-7");
//     robfig rejects it (its range is 0-6).
//  5. "?" is accepted by errand only in day-of-month and day-of-week; robfig
//     accepts it in every field, as "*".
//  6. Numbers. errand accepts only decimal digits; robfig uses strconv.Atoi
//     and so also accepts a sign ("+5").
//  7. Empty list elements. errand rejects "1,,2" and "1,"; robfig skips empty
//     elements.
//  8. Descriptors are case-insensitive in errand ("@DAILY"); robfig accepts
//     only lower case.
//  9. @every. errand's trigger is exactly after.Add(d) and a duration <= 0 is
//     an error; robfig rounds durations under 1s up to 1s, drops the
//     sub-second part of the duration, and drops after's sub-second part
//     (robfig: "@every 1500ms" fires every 1s on whole seconds; "@every -1h"
//     every 1s).
//  10. Whitespace. errand splits the whole expression on white space, so it
//     accepts a CRON_TZ= prefix after leading spaces and several spaces after
//     @every; robfig requires the prefix at the very start and exactly one
//     space after "@every".
//  11. CRON_TZ=Local. errand computes in time.Local; robfig treats
//     time.Local as "no zone given" and computes in the Location of Next's
//     argument.
//
// Both libraries use the same POSIX day rule: when day-of-month and
// day-of-week are both restricted, a day matches if either matches; a field
// counts as unrestricted when one of its list elements is "*" or "?" without
// a step or with step 1 (robfig's star bit), so "*/2" restricts and "*/1"
// does not. Both read "N/step" as N through the field's maximum (day-of-week:
// 6, so "1/2" is 1,3,5 in both).
package crondiff

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	_ "time/tzdata"

	"github.com/errandgo/errand"
	"github.com/robfig/cron/v3"
)

// robfig's Schedule has errand's Trigger method set.
var (
	_ errand.Trigger = cron.Schedule(nil)
	_ errand.Trigger = (*cron.SpecSchedule)(nil)
	_ errand.Trigger = cron.ConstantDelaySchedule{}
)

var robfigParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

func TestRobfigScheduleIsTrigger(t *testing.T) {
	sched, err := robfigParser.Parse("0 30 2 * * *")
	if err != nil {
		t.Fatal(err)
	}
	var tr errand.Trigger = sched // compiles: same Next method
	after := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, want := tr.Next(after), time.Date(2026, 1, 1, 2, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Errorf("robfig schedule as errand.Trigger: Next = %v, want %v", got, want)
	}
}

// TestRobfigScheduleRunsOnQueue: a robfig schedule is a Trigger a queue
// runs: Queue.Schedule fires it at its times (every 2 hours on the hour,
// under a fake clock).
func TestRobfigScheduleRunsOnQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sched, err := robfigParser.Parse("0 0 */2 * * *")
		if err != nil {
			t.Fatal(err)
		}
		q, err := errand.New(errand.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		var mu sync.Mutex
		var runs []time.Time
		if _, err := q.Schedule(sched, func(context.Context) error {
			mu.Lock()
			runs = append(runs, time.Now())
			mu.Unlock()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(7 * time.Hour) // the fake clock starts at 2000-01-01 00:00 UTC
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(runs) != 3 {
			t.Fatalf("%d runs in 7 hours, want 3 (02:00, 04:00, 06:00): %v", len(runs), runs)
		}
		for i, r := range runs {
			if r.UTC().Hour() != 2*(i+1) || r.Minute() != 0 || r.Second() != 0 {
				t.Errorf("run %d at %v, want %02d:00", i, r.UTC(), 2*(i+1))
			}
		}
	})
}

// randomExpr builds a random expression in the syntax both libraries accept.
func randomExpr(r *rand.Rand) string {
	switch r.IntN(40) {
	case 0:
		return []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}[r.IntN(7)]
	case 1:
		return fmt.Sprintf("@every %ds", 1+r.IntN(100000))
	}
	type bound struct{ lo, hi int }
	bounds := []bound{{0, 59}, {0, 59}, {0, 23}, {1, 31}, {1, 12}, {0, 6}}
	months := strings.Split("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC", " ")
	days := strings.Split("SUN MON TUE WED THU FRI SAT", " ")
	val := func(f, v int) string {
		switch {
		case f == 4 && r.IntN(3) == 0:
			return strings.ToLower(months[v-1])
		case f == 5 && r.IntN(3) == 0:
			return days[v]
		}
		return fmt.Sprint(v)
	}
	item := func(f int) string {
		b := bounds[f]
		v := b.lo + r.IntN(b.hi-b.lo+1)
		switch r.IntN(9) {
		case 0:
			if f >= 3 && f != 4 && r.IntN(2) == 0 {
				return "?"
			}
			return "*"
		case 1:
			return fmt.Sprintf("*/%d", 1+r.IntN(b.hi-b.lo+1))
		case 2:
			return val(f, v) + "-" + val(f, v+r.IntN(b.hi-v+1))
		case 3:
			return fmt.Sprintf("%s-%s/%d", val(f, v), val(f, v+r.IntN(b.hi-v+1)), 1+r.IntN(10))
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
	first := 1
	if r.IntN(3) == 0 {
		first = 0
	}
	var fs []string
	for f := first; f <= 5; f++ {
		fs = append(fs, field(f))
	}
	return strings.Join(fs, " ")
}

func TestDifferential(t *testing.T) {
	r := rand.New(rand.NewPCG(2026, 1))
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	const exprs = 5000
	var compared, impossible, beyondBound int
	for range exprs {
		expr := randomExpr(r)
		loc := time.UTC
		if r.IntN(2) == 0 {
			loc = tokyo
		}
		if r.IntN(5) == 0 {
			expr = "CRON_TZ=" + []string{"UTC", "Asia/Tokyo"}[r.IntN(2)] + " " + expr
		}
		theirs, err := robfigParser.Parse(expr)
		if err != nil {
			t.Fatalf("robfig rejects generated %q: %v", expr, err)
		}
		var standard cron.Schedule
		if len(strings.Fields(expr)) == 5 && !strings.HasPrefix(expr, "CRON_TZ=") {
			if standard, err = cron.ParseStandard(expr); err != nil {
				t.Fatalf("robfig's standard parser rejects %q: %v", expr, err)
			}
		}
		ours, err := errand.ParseCron(expr)
		if err != nil {
			// Difference 3: only impossible dates may fail, and robfig
			// never finds a run for them.
			if !strings.Contains(err.Error(), "day-of-month field: no month allowed") {
				t.Fatalf("errand rejects %q: %v", expr, err)
			}
			for range 3 {
				if u := randomInstant(r, loc); !theirs.Next(u).IsZero() {
					t.Fatalf("errand rejects %q (%v) but robfig finds %v after %v", expr, err, theirs.Next(u), u)
				}
			}
			impossible++
			continue
		}
		u := randomInstant(r, loc)
		if strings.Contains(expr, "@every") {
			u = u.Truncate(time.Second) // difference 9: robfig drops after's sub-second part
		}
		for range 5 {
			want, got := theirs.Next(u), ours.Next(u)
			if standard != nil {
				if s := standard.Next(u); !s.Equal(want) {
					t.Fatalf("robfig's parsers disagree on %q after %v: %v vs %v", expr, u, want, s)
				}
			}
			if want.IsZero() && !got.IsZero() && got.Year() > u.Year()+5 {
				beyondBound++ // difference 2
				break
			}
			if !got.Equal(want) {
				t.Fatalf("%q after %v: errand %v, robfig %v", expr, u, got, want)
			}
			if got.IsZero() {
				break
			}
			compared++
			u = got
		}
	}
	t.Logf("%d expressions, %d Next results compared, %d impossible dates, %d beyond robfig's 5-year bound", exprs, compared, impossible, beyondBound)
	if compared < exprs*4 {
		t.Errorf("only %d comparisons", compared)
	}
}

// randomInstant returns a random instant in 1971-2099, sometimes with
// sub-second precision.
func randomInstant(r *rand.Rand, loc *time.Location) time.Time {
	lo := time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(2099, 12, 31, 0, 0, 0, 0, time.UTC).Unix()
	var nsec int64
	if r.IntN(2) == 0 {
		nsec = r.Int64N(1e9)
	}
	return time.Unix(lo+r.Int64N(hi-lo), nsec).In(loc)
}

// TestDocumentedDifferences shows each deliberate difference listed at the
// top of this file.
func TestDocumentedDifferences(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	date := func(y int, m time.Month, d, h, mi int, loc *time.Location) time.Time {
		return time.Date(y, m, d, h, mi, 0, 0, loc)
	}
	type result struct {
		next time.Time
		err  error
	}
	run := func(parse func(string) (errand.Trigger, error), expr string, after time.Time) result {
		tr, err := parse(expr)
		if err != nil {
			return result{err: err}
		}
		return result{next: tr.Next(after)}
	}
	oursP := errand.ParseCron
	theirsP := func(s string) (errand.Trigger, error) { return robfigParser.Parse(s) }
	tests := []struct {
		name         string
		expr         string
		after        time.Time
		ours, theirs result // zero next with nil err: zero time; non-nil err: any error
	}{
		{"1 DST spring forward, fixed time in the gap", "30 2 * * *", date(2026, 3, 7, 3, 0, ny),
			result{next: date(2026, 3, 8, 3, 0, ny)}, result{next: date(2026, 3, 9, 2, 30, ny)}},
		{"1 DST fall back, fixed time runs once", "30 1 * * *", date(2026, 11, 1, 1, 30, ny),
			result{next: date(2026, 11, 2, 1, 30, ny)}, result{next: date(2026, 11, 1, 1, 30, ny).Add(time.Hour)}},
		{"2 search bound", "0 0 29 2 *", date(2096, 3, 1, 0, 0, time.UTC),
			result{next: date(2104, 2, 29, 0, 0, time.UTC)}, result{}},
		{"3 impossible date", "0 0 30 2 *", date(2026, 1, 1, 0, 0, time.UTC),
			result{err: errAny}, result{}},
		{"4 day-of-week 7", "0 0 * * 7", date(2026, 1, 1, 0, 0, time.UTC),
			result{next: date(2026, 1, 4, 0, 0, time.UTC)}, result{err: errAny}},
		{"4 day-of-week 5-7", "0 0 * * 5-7", date(2026, 1, 3, 12, 0, time.UTC),
			result{next: date(2026, 1, 4, 0, 0, time.UTC)}, result{err: errAny}},
		{"5 ? in minute", "? 0 * * *", date(2026, 1, 1, 0, 0, time.UTC),
			result{err: errAny}, result{next: date(2026, 1, 1, 0, 1, time.UTC)}},
		{"6 signed number", "+5 0 * * *", date(2026, 1, 1, 0, 0, time.UTC),
			result{err: errAny}, result{next: date(2026, 1, 1, 0, 5, time.UTC)}},
		{"7 empty list element", "1,,2 0 * * *", date(2026, 1, 1, 0, 1, time.UTC),
			result{err: errAny}, result{next: date(2026, 1, 1, 0, 2, time.UTC)}},
		{"8 descriptor case", "@DAILY", date(2026, 1, 1, 12, 0, time.UTC),
			result{next: date(2026, 1, 2, 0, 0, time.UTC)}, result{err: errAny}},
		{"9 @every sub-second", "@every 1500ms", date(2026, 1, 1, 0, 0, time.UTC),
			result{next: date(2026, 1, 1, 0, 0, time.UTC).Add(1500 * time.Millisecond)}, result{next: date(2026, 1, 1, 0, 0, time.UTC).Add(time.Second)}},
		{"9 @every negative", "@every -1h", date(2026, 1, 1, 0, 0, time.UTC),
			result{err: errAny}, result{next: date(2026, 1, 1, 0, 0, time.UTC).Add(time.Second)}},
		{"9 @every drops after's nanoseconds", "@every 1h", date(2026, 1, 1, 0, 0, time.UTC).Add(300 * time.Millisecond),
			result{next: date(2026, 1, 1, 1, 0, time.UTC).Add(300 * time.Millisecond)}, result{next: date(2026, 1, 1, 1, 0, time.UTC)}},
		{"10 leading space before CRON_TZ", " CRON_TZ=UTC 0 0 * * *", date(2026, 1, 1, 12, 0, time.UTC),
			result{next: date(2026, 1, 2, 0, 0, time.UTC)}, result{err: errAny}},
		{"10 two spaces after @every", "@every  1h", date(2026, 1, 1, 0, 0, time.UTC),
			result{next: date(2026, 1, 1, 1, 0, time.UTC)}, result{err: errAny}},
	}
	for _, tt := range tests {
		for _, side := range []struct {
			who   string
			parse func(string) (errand.Trigger, error)
			want  result
		}{{"errand", oursP, tt.ours}, {"robfig", theirsP, tt.theirs}} {
			got := run(side.parse, tt.expr, tt.after)
			switch {
			case side.want.err != nil && got.err == nil:
				t.Errorf("%s: %s accepts %q (Next = %v), want an error", tt.name, side.who, tt.expr, got.next)
			case side.want.err == nil && got.err != nil:
				t.Errorf("%s: %s rejects %q: %v", tt.name, side.who, tt.expr, got.err)
			case side.want.err == nil && !got.next.Equal(side.want.next):
				t.Errorf("%s: %s %q Next(%v) = %v, want %v", tt.name, side.who, tt.expr, tt.after, got.next, side.want.next)
			}
		}
	}

	// 11: CRON_TZ=Local, visible only when time.Local differs from Tokyo.
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	after := date(2026, 1, 1, 12, 0, tokyo)
	if _, off := after.In(time.Local).Zone(); off != 9*3600 {
		ours := run(oursP, "CRON_TZ=Local 0 0 * * *", after).next
		theirs := run(theirsP, "CRON_TZ=Local 0 0 * * *", after).next
		if wall := ours.In(time.Local); wall.Hour() != 0 || wall.Minute() != 0 {
			t.Errorf("11: errand CRON_TZ=Local: %v is not local midnight", ours)
		}
		if wall := theirs.In(tokyo); wall.Hour() != 0 || wall.Minute() != 0 {
			t.Errorf("11: robfig CRON_TZ=Local: %v is not Tokyo midnight", theirs)
		}
	}
}

var errAny = fmt.Errorf("any error")
