package errand

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// rNearOne is the largest random number delay can be given: just under 1.
var rNearOne = math.Nextafter(1, 0)

func durations(ds ...float64) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = time.Duration(d * float64(time.Millisecond))
	}
	return out
}

// TestExponentialDefaultSequence: with the defaults the waits are exactly
// 100ms, 200ms, ... 25.6s, then capped at 30s; Jitter moves nothing when
// the random number is 0.5.
func TestExponentialDefaultSequence(t *testing.T) {
	want := durations(100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000, 30000)
	for _, e := range []Exponential{{}, {Jitter: 0.2}, defaultBackoff, {Jitter: 1}} {
		for i, w := range want {
			if got := e.delay(i+1, 0.5); got != w {
				t.Errorf("%+v.delay(%d, 0.5) = %v, want %v", e, i+1, got, w)
			}
		}
	}
	if want := (Exponential{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2}); defaultBackoff != want {
		t.Fatalf("default backoff %+v, want %+v", defaultBackoff, want)
	}
}

// TestExponentialJitterBounds: Jitter J moves each wait within [d-J*d, d+J*d]:
// r = 0 gives the lower bound exactly, r just under 1 the upper bound (to
// within a nanosecond of rounding), and every r in between stays inside.
func TestExponentialJitterBounds(t *testing.T) {
	base := durations(100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000)
	for _, j := range []float64{0.2, 0.5, 1} {
		e := Exponential{Jitter: j}
		for i, d := range base {
			lo := time.Duration(float64(d) * (1 - j))
			hi := time.Duration(float64(d) * (1 + j))
			if got := e.delay(i+1, 0); got != lo {
				t.Errorf("Jitter %v: delay(%d, 0) = %v, want %v", j, i+1, got, lo)
			}
			if got := e.delay(i+1, rNearOne); got > hi || got < hi-time.Nanosecond {
				t.Errorf("Jitter %v: delay(%d, ~1) = %v, want %v", j, i+1, got, hi)
			}
		}
	}
	r := rand.New(rand.NewPCG(11, 12))
	e := Exponential{Jitter: 0.2}
	for range 10000 {
		attempt := 1 + r.IntN(12)
		d := e.delay(attempt, 0.5)
		if got := e.delay(attempt, r.Float64()); got < d*8/10 || got > d*12/10 {
			t.Fatalf("delay(%d, r) = %v, outside [%v, %v]", attempt, got, d*8/10, d*12/10)
		}
	}
	// Delay draws its own random number.
	seen := map[time.Duration]bool{}
	for range 1000 {
		got := e.Delay(3)
		if got < 320*time.Millisecond || got > 480*time.Millisecond {
			t.Fatalf("Delay(3) = %v, outside [320ms, 480ms]", got)
		}
		seen[got] = true
	}
	if len(seen) < 2 {
		t.Fatalf("Delay(3) returned the same wait 1000 times: no jitter")
	}
	if got := (Exponential{}).Delay(3); got != 400*time.Millisecond {
		t.Fatalf("Delay(3) without jitter = %v, want 400ms", got)
	}
}

// TestExponentialFields: each zero field takes its default, the others apply;
// the wait is capped at Max.
func TestExponentialFields(t *testing.T) {
	for _, tc := range []struct {
		e    Exponential
		want []time.Duration
	}{
		{Exponential{Initial: time.Second}, durations(1000, 2000, 4000, 8000, 16000, 30000, 30000)},
		{Exponential{Max: time.Second}, durations(100, 200, 400, 800, 1000, 1000)},
		{Exponential{Multiplier: 3}, durations(100, 300, 900, 2700, 8100, 24300, 30000)},
		{Exponential{Multiplier: 1}, durations(100, 100, 100, 100)},
		{Exponential{Multiplier: 1.5, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}, durations(10, 15, 22.5, 33.75, 50, 50)},
		{Exponential{Initial: time.Second, Max: 5 * time.Second}, durations(1000, 2000, 4000, 5000, 5000)},
		{Exponential{Initial: time.Second, Max: 500 * time.Millisecond}, durations(500, 500, 500)},
		{Exponential{Initial: time.Nanosecond, Max: 4 * time.Nanosecond}, []time.Duration{1, 2, 4, 4}},
	} {
		for i, w := range tc.want {
			if got := tc.e.delay(i+1, 0.5); got != w {
				t.Errorf("%+v.delay(%d) = %v, want %v", tc.e, i+1, got, w)
			}
			if tc.e.Jitter == 0 {
				if got := tc.e.Delay(i + 1); got != w {
					t.Errorf("%+v.Delay(%d) = %v, want %v", tc.e, i+1, got, w)
				}
			}
		}
	}
}

// TestExponentialExtremes: huge attempt numbers, multipliers and bounds
// neither overflow nor go negative; attempts below 1 count as 1.
func TestExponentialExtremes(t *testing.T) {
	for _, attempt := range []int{64, 1000, 1 << 40, math.MaxInt} {
		if got := (Exponential{}).delay(attempt, 0.5); got != 30*time.Second {
			t.Errorf("delay(%d) = %v, want 30s", attempt, got)
		}
		if got := (Exponential{Jitter: 0.5}).delay(attempt, 0); got != 15*time.Second {
			t.Errorf("Jitter 0.5: delay(%d, 0) = %v, want 15s", attempt, got)
		}
		if got := (Exponential{Multiplier: 1e300}).delay(attempt, 0.5); got != 30*time.Second {
			t.Errorf("Multiplier 1e300: delay(%d) = %v, want 30s", attempt, got)
		}
	}
	for _, attempt := range []int{0, -1, math.MinInt} {
		if got := (Exponential{}).delay(attempt, 0.5); got != 100*time.Millisecond {
			t.Errorf("delay(%d) = %v, want 100ms (as attempt 1)", attempt, got)
		}
	}
	if got := (Exponential{Initial: math.MaxInt64}).delay(1, 0.5); got != 30*time.Second {
		t.Errorf("Initial MaxInt64: delay(1) = %v, want 30s (the default Max)", got)
	}
	// The largest Max: the wait is capped at it and stays positive.
	huge := Exponential{Max: math.MaxInt64}
	if got := huge.delay(1, 0.5); got != 100*time.Millisecond {
		t.Errorf("Max MaxInt64: delay(1) = %v, want 100ms", got)
	}
	for _, e := range []Exponential{huge, {Max: math.MaxInt64, Jitter: 1}, {Max: math.MaxInt64 / 3 * 2, Jitter: 1}} {
	cases:
		for _, attempt := range []int{100, 1000, math.MaxInt} {
			for _, r := range []float64{0.5, rNearOne} {
				if got := e.delay(attempt, r); got < math.MaxInt64/2 {
					t.Errorf("%+v.delay(%d, %v) = %v, want about %v (no overflow)", e, attempt, r, got, time.Duration(math.MaxInt64))
					break cases
				}
			}
		}
	}
}

// TestConstantBackoff: Constant waits the same before every retry.
func TestConstantBackoff(t *testing.T) {
	for _, c := range []Constant{0, Constant(time.Nanosecond), Constant(250 * time.Millisecond), Constant(time.Hour)} {
		for _, attempt := range []int{1, 2, 3, 100, math.MaxInt} {
			if got := c.Delay(attempt); got != time.Duration(c) {
				t.Fatalf("Constant(%v).Delay(%d) = %v", time.Duration(c), attempt, got)
			}
		}
	}
}

// TestRetryPolicyValidate: a bad RetryPolicy is refused by New (Config.Retry)
// and by WithRetry; good ones are accepted.
func TestRetryPolicyValidate(t *testing.T) {
	nan := math.NaN()
	bad := []RetryPolicy{
		{MaxAttempts: -1},
		{Backoff: Exponential{Initial: -1}},
		{Backoff: Exponential{Max: -time.Second}},
		{Backoff: Exponential{Multiplier: 0.5}},
		{Backoff: Exponential{Multiplier: -2}},
		{Backoff: Exponential{Multiplier: nan}},
		{Backoff: Exponential{Multiplier: math.Inf(1)}},
		{Backoff: Exponential{Jitter: -0.1}},
		{Backoff: Exponential{Jitter: 1.1}},
		{Backoff: Exponential{Jitter: nan}},
		{Backoff: &Exponential{Jitter: 2}},
		{Backoff: Constant(-time.Second)},
	}
	good := []RetryPolicy{
		{},
		{MaxAttempts: 1},
		{MaxAttempts: 5, Backoff: Exponential{}},
		{MaxAttempts: 5, Backoff: Exponential{Multiplier: 1, Jitter: 1}},
		{MaxAttempts: 5, Backoff: &Exponential{Initial: time.Second}},
		{MaxAttempts: 5, Backoff: Constant(0)},
		{MaxAttempts: 5, RetryIf: func(error) bool { return true }},
	}
	q := newQueue(t, Config{})
	fn := func(context.Context) (int, error) { return 0, nil }
	for _, p := range bad {
		if err := p.validate(); err == nil {
			t.Errorf("validate(%+v) = nil, want an error", p)
		}
		if _, err := New(Config{Retry: p}); err == nil {
			t.Errorf("New(Config{Retry: %+v}) = nil error", p)
		}
		if _, err := Submit(context.Background(), q, fn, WithRetry(p)); err == nil {
			t.Errorf("Submit(WithRetry(%+v)) = nil error", p)
		}
		if err := q.Go(context.Background(), func(context.Context) error { return nil }, WithRetry(p)); err == nil {
			t.Errorf("Go(WithRetry(%+v)) = nil error", p)
		}
	}
	for _, p := range good {
		if err := p.validate(); err != nil {
			t.Errorf("validate(%+v) = %v", p, err)
		}
		q2, err := New(Config{Retry: p})
		if err != nil {
			t.Errorf("New(Config{Retry: %+v}) = %v", p, err)
		} else {
			q2.Close()
		}
		if _, err := Submit(context.Background(), q, fn, WithRetry(p)); err != nil {
			t.Errorf("Submit(WithRetry(%+v)) = %v", p, err)
		}
	}
	if err := q.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.Submitted != uint64(len(good)) {
		t.Fatalf("Submitted %d, want %d (bad policies submit nothing)", st.Submitted, len(good))
	}
}

var errTransient = errors.New("transient")

// TestRetryDelay: the decision whether and when to retry after a failed
// attempt.
func TestRetryDelay(t *testing.T) {
	var consulted []error
	onlyTransient := func(err error) bool {
		consulted = append(consulted, err)
		return errors.Is(err, errTransient)
	}
	other := errors.New("other")
	for _, tc := range []struct {
		name      string
		p         RetryPolicy
		attempt   int
		err       error
		want      time.Duration
		retry     bool
		consulted int // RetryIf calls
	}{
		{"zero policy", RetryPolicy{}, 1, errTransient, 0, false, 0},
		{"MaxAttempts 1", RetryPolicy{MaxAttempts: 1}, 1, errTransient, 0, false, 0},
		{"attempt 1 of 3", RetryPolicy{MaxAttempts: 3, Backoff: Constant(5 * time.Second)}, 1, errTransient, 5 * time.Second, true, 0},
		{"attempt 2 of 3", RetryPolicy{MaxAttempts: 3, Backoff: Constant(5 * time.Second)}, 2, errTransient, 5 * time.Second, true, 0},
		{"attempt 3 of 3", RetryPolicy{MaxAttempts: 3, Backoff: Constant(5 * time.Second)}, 3, errTransient, 0, false, 0},
		{"exponential by attempt", RetryPolicy{MaxAttempts: 9, Backoff: Exponential{}}, 4, errTransient, 800 * time.Millisecond, true, 0},
		{"Permanent", RetryPolicy{MaxAttempts: 3, RetryIf: onlyTransient}, 1, Permanent(errTransient), 0, false, 0},
		{"wrapped Permanent", RetryPolicy{MaxAttempts: 3}, 1, fmt.Errorf("op: %w", Permanent(errTransient)), 0, false, 0},
		{"context.Canceled", RetryPolicy{MaxAttempts: 3, RetryIf: onlyTransient}, 1, context.Canceled, 0, false, 0},
		{"wrapped context.Canceled", RetryPolicy{MaxAttempts: 3}, 1, fmt.Errorf("op: %w", context.Canceled), 0, false, 0},
		{"context.DeadlineExceeded is retried", RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Second)}, 1, context.DeadlineExceeded, time.Second, true, 0},
		{"RetryAfter overrides the backoff", RetryPolicy{MaxAttempts: 3, Backoff: Constant(5 * time.Second)}, 1, RetryAfter(7*time.Second, errTransient), 7 * time.Second, true, 0},
		{"wrapped RetryAfter", RetryPolicy{MaxAttempts: 3, Backoff: Constant(5 * time.Second)}, 1, fmt.Errorf("op: %w", RetryAfter(time.Minute, other)), time.Minute, true, 0},
		{"negative RetryAfter", RetryPolicy{MaxAttempts: 3}, 1, RetryAfter(-time.Second, errTransient), 0, true, 0},
		{"RetryAfter past MaxAttempts", RetryPolicy{MaxAttempts: 2}, 2, RetryAfter(time.Second, errTransient), 0, false, 0},
		{"RetryAfter of a Permanent", RetryPolicy{MaxAttempts: 3}, 1, RetryAfter(time.Second, Permanent(errTransient)), 0, false, 0},
		{"RetryIf yes", RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Second), RetryIf: onlyTransient}, 1, errTransient, time.Second, true, 1},
		{"RetryIf no", RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Second), RetryIf: onlyTransient}, 1, other, 0, false, 1},
		{"RetryIf no beats RetryAfter", RetryPolicy{MaxAttempts: 3, RetryIf: onlyTransient}, 1, RetryAfter(time.Second, other), 0, false, 1},
		{"RetryIf not asked past MaxAttempts", RetryPolicy{MaxAttempts: 3, RetryIf: onlyTransient}, 3, errTransient, 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			consulted = nil
			got, retry := tc.p.retryDelay(tc.attempt, tc.err)
			if got != tc.want || retry != tc.retry {
				t.Fatalf("retryDelay(%d, %v) = %v, %v; want %v, %v", tc.attempt, tc.err, got, retry, tc.want, tc.retry)
			}
			if len(consulted) != tc.consulted {
				t.Fatalf("RetryIf called %d times, want %d", len(consulted), tc.consulted)
			}
			if tc.consulted > 0 && consulted[0] != tc.err {
				t.Fatalf("RetryIf got %v, want %v", consulted[0], tc.err)
			}
		})
	}

	// Without a Backoff: the default one, jitter included.
	p := RetryPolicy{MaxAttempts: 10}
	for attempt, base := range durations(100, 200, 400, 800) {
		for range 100 {
			d, ok := p.retryDelay(attempt+1, errTransient)
			if !ok || d < base*8/10 || d > base*12/10 {
				t.Fatalf("default backoff: retryDelay(%d) = %v, %v; want within 20%% of %v", attempt+1, d, ok, base)
			}
		}
	}
	if Permanent(nil) != nil || RetryAfter(time.Second, nil) != nil {
		t.Fatal("Permanent(nil) or RetryAfter(d, nil) is not nil")
	}
}

// attemptLog records, for a task, when each attempt started (queue time).
type attemptLog struct {
	mu     sync.Mutex
	starts []time.Duration
	t0     time.Time
}

func (l *attemptLog) start() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.starts = append(l.starts, time.Since(l.t0))
	return len(l.starts)
}

func (l *attemptLog) get() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.starts)
}

// TestRetryThroughQueue: a task that fails twice and then succeeds runs three
// attempts, each at exactly its backoff time; between attempts it waits in
// the scheduler (status Retrying, Stats.Scheduled) holding no worker.
func TestRetryThroughQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		log := attemptLog{t0: time.Now()}
		f := mustSubmit(t, q, func(context.Context) (string, error) {
			if n := log.start(); n < 3 {
				return "", fmt.Errorf("attempt %d: %w", n, errTransient)
			}
			return "done", nil
		}, WithRetry(RetryPolicy{MaxAttempts: 5, Backoff: Exponential{Initial: time.Second, Multiplier: 3}}))
		synctest.Wait()
		if st, n := f.Status(), f.Attempts(); st != Retrying || n != 1 {
			t.Fatalf("after the first attempt: %v, %d attempts; want retrying, 1", st, n)
		}
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Scheduled: 1, Submitted: 1, Retried: 1})
		if _, err := f.Result(); err != ErrNotDone {
			t.Fatalf("Result() while retrying = %v, want ErrNotDone", err)
		}
		v, err := f.Await(context.Background())
		if v != "done" || err != nil {
			t.Fatalf("Await = %q, %v; want done, nil", v, err)
		}
		if got, want := log.get(), []time.Duration{0, time.Second, 4 * time.Second}; !slices.Equal(got, want) {
			t.Fatalf("attempts started at %v, want %v", got, want)
		}
		if f.Attempts() != 3 || f.Status() != Succeeded {
			t.Fatalf("%d attempts, %v; want 3, succeeded", f.Attempts(), f.Status())
		}
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 1, Succeeded: 1, Retried: 2})
	})
}

// TestRetryBackoffHoldsNoWorker: with a single worker, while a task backs off
// another task runs; when the retry comes due with the worker busy, it waits
// in the queue like any task.
func TestRetryBackoffHoldsNoWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 1})
		attempts := 0
		retrier := mustSubmit(t, q, func(context.Context) (int, error) {
			if attempts++; attempts == 1 {
				return 0, errTransient
			}
			return 1, nil
		}, WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: Constant(10 * time.Second)}))
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Scheduled: 1, Submitted: 1, Retried: 1})

		release := make(chan struct{})
		t0 := time.Now()
		var otherStart time.Time
		other := mustSubmit(t, q, func(ctx context.Context) (int, error) {
			otherStart = time.Now()
			<-release
			return 2, nil
		})
		synctest.Wait()
		if other.Status() != Running || !otherStart.Equal(t0) {
			t.Fatalf("other task: %v at +%v; want running at once", other.Status(), otherStart.Sub(t0))
		}
		expectStats(t, q, Stats{Workers: 1, Running: 1, Scheduled: 1, Submitted: 2, Retried: 1})

		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st := retrier.Status(); st != Queued {
			t.Fatalf("retry due while the worker is busy: %v, want queued", st)
		}
		expectStats(t, q, Stats{Workers: 1, Running: 1, Queued: 1, Submitted: 2, Retried: 1})
		close(release)
		if v, err := retrier.Await(context.Background()); v != 1 || err != nil {
			t.Fatalf("retrier: %d, %v", v, err)
		}
		if v, err := other.Result(); v != 2 || err != nil {
			t.Fatalf("other: %d, %v", v, err)
		}
		synctest.Wait()
		expectStats(t, q, Stats{Workers: 1, Idle: 1, Submitted: 2, Succeeded: 2, Retried: 1})
	})
}

// TestRetryConfigDefaultAndOverride: Config.Retry applies to every task
// without WithRetry, Futures and Go tasks alike; WithRetry replaces it, and
// WithRetry(RetryPolicy{}) turns retries off.
func TestRetryConfigDefaultAndOverride(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t, Config{Workers: 4, Retry: RetryPolicy{MaxAttempts: 3, Backoff: Constant(time.Second)}})
		t0 := time.Now()
		failing := func(log *attemptLog) func(context.Context) (int, error) {
			return func(context.Context) (int, error) {
				n := log.start()
				return 0, fmt.Errorf("attempt %d", n)
			}
		}
		logs := make([]attemptLog, 5)
		for i := range logs {
			logs[i].t0 = t0
		}
		def := mustSubmit(t, q, failing(&logs[0]))
		over := mustSubmit(t, q, failing(&logs[1]), WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: Constant(5 * time.Second)}))
		off := mustSubmit(t, q, failing(&logs[2]), WithRetry(RetryPolicy{}))
		goFail := func(log *attemptLog) func(context.Context) error {
			return func(ctx context.Context) error { _, err := failing(log)(ctx); return err }
		}
		if err := q.Go(context.Background(), goFail(&logs[3])); err != nil {
			t.Fatal(err)
		}
		if err := q.Go(context.Background(), goFail(&logs[4]), WithRetry(RetryPolicy{MaxAttempts: 4, Backoff: Constant(2 * time.Second)})); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		s := time.Second
		for i, want := range [][]time.Duration{
			{0, s, 2 * s},
			{0, 5 * s},
			{0},
			{0, s, 2 * s},
			{0, 2 * s, 4 * s, 6 * s},
		} {
			if got := logs[i].get(); !slices.Equal(got, want) {
				t.Errorf("task %d: attempts at %v, want %v", i, got, want)
			}
		}
		for _, c := range []struct {
			f        *Future[int]
			attempts int
		}{{def, 3}, {over, 2}, {off, 1}} {
			_, err := c.f.Result()
			if want := fmt.Sprintf("attempt %d", c.attempts); err == nil || err.Error() != want || c.f.Attempts() != c.attempts || c.f.Status() != Failed {
				t.Errorf("Result() = %v after %d attempts (%v); want %q after %d (failed)", err, c.f.Attempts(), c.f.Status(), want, c.attempts)
			}
		}
		expectStats(t, q, Stats{Submitted: 5, Failed: 5, Retried: 2 + 1 + 0 + 2 + 3})
	})
}

// TestRetryErrorsThroughQueue: Permanent errors are never retried and the
// future reports the inner error; RetryAfter sets the next attempt's start
// exactly; RetryIf is consulted with the task's error; a task returning
// context.Canceled is not retried.
func TestRetryErrorsThroughQueue(t *testing.T) {
	inner := errors.New("inner")
	other := errors.New("other")
	policy := RetryPolicy{MaxAttempts: 4, Backoff: Constant(time.Second)}
	for _, tc := range []struct {
		name   string
		policy RetryPolicy
		errs   []error // the error of each attempt; nil succeeds
		starts []time.Duration
		final  error // compared with ==; nil: success
	}{
		{"Permanent", policy, []error{Permanent(inner)}, []time.Duration{0}, inner},
		{"wrapped Permanent", policy, []error{fmt.Errorf("ctx: %w", Permanent(inner))}, []time.Duration{0}, nil},
		{"Permanent after retries", policy, []error{other, Permanent(inner)}, []time.Duration{0, time.Second}, inner},
		{"RetryAfter", policy, []error{RetryAfter(7*time.Second, inner), RetryAfter(3*time.Second, inner), nil},
			[]time.Duration{0, 7 * time.Second, 10 * time.Second}, nil},
		{"RetryAfter zero", policy, []error{RetryAfter(0, inner), nil}, []time.Duration{0, 0}, nil},
		{"RetryAfter on the last attempt", RetryPolicy{MaxAttempts: 2}, []error{RetryAfter(time.Second, inner), RetryAfter(time.Second, inner)},
			[]time.Duration{0, time.Second}, inner},
		{"RetryIf yes then no", RetryPolicy{MaxAttempts: 4, Backoff: Constant(time.Second), RetryIf: func(err error) bool { return errors.Is(err, errTransient) }},
			[]error{errTransient, other}, []time.Duration{0, time.Second}, other},
		{"context.Canceled", policy, []error{context.Canceled}, []time.Duration{0}, context.Canceled},
		{"context.DeadlineExceeded is retried", policy, []error{context.DeadlineExceeded, nil}, []time.Duration{0, time.Second}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t, Config{Workers: 1})
				log := attemptLog{t0: time.Now()}
				f := mustSubmit(t, q, func(context.Context) (int, error) {
					n := log.start()
					if n > len(tc.errs) {
						return 0, errors.New("too many attempts")
					}
					return n, tc.errs[n-1]
				}, WithRetry(tc.policy))
				v, err := f.Await(context.Background())
				if got := log.get(); !slices.Equal(got, tc.starts) {
					t.Fatalf("attempts at %v, want %v", got, tc.starts)
				}
				if f.Attempts() != len(tc.starts) {
					t.Fatalf("Attempts() = %d, want %d", f.Attempts(), len(tc.starts))
				}
				last := tc.errs[len(tc.errs)-1]
				switch {
				case last == nil:
					if err != nil || v != len(tc.starts) || f.Status() != Succeeded {
						t.Fatalf("Await = %d, %v (%v); want %d, nil", v, err, f.Status(), len(tc.starts))
					}
				case tc.final != nil:
					if err != tc.final || f.Status() != Failed {
						t.Fatalf("Await error = %#v (%v), want exactly %v (failed)", err, f.Status(), tc.final)
					}
				default: // a wrapped control error: the task's own error, still recognizable
					var pe *PermanentError
					if !errors.Is(err, inner) || !errors.As(err, &pe) || f.Status() != Failed {
						t.Fatalf("Await error = %v (%v); want one that wraps inner", err, f.Status())
					}
				}
				synctest.Wait()
				st := q.Stats()
				if want := uint64(len(tc.starts) - 1); st.Retried != want {
					t.Fatalf("Stats.Retried = %d, want %d", st.Retried, want)
				}
			})
		})
	}
}
