package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/errandgo/errand"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer collects log output written by tasks and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// newTestServer returns a server on a queue with cfg, logging without
// timestamps into the returned buffer. The queue is closed when the test ends
// (inside the bubble, for a synctest test).
func newTestServer(t *testing.T, cfg errand.Config) (*server, *errand.Queue, *syncBuffer) {
	t.Helper()
	logs := new(syncBuffer)
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	cfg.Logger = log
	q, err := errand.New(cfg)
	if err != nil {
		t.Fatalf("errand.New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return newServer(q, log), q, logs
}

// serve runs one request through the mux.
func serve(s *server, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	newMux(s).ServeHTTP(rec, req)
	return rec
}

func checkStats(t *testing.T, q *errand.Queue, want errand.Stats) {
	t.Helper()
	if got := q.Stats(); got != want {
		t.Fatalf("Stats:\n got  %+v\n want %+v", got, want)
	}
}

// TestSignup: 202 at once; the email task runs after the response, with the
// request id from the request's context, although that context was canceled.
func TestSignup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, q, logs := newTestServer(t, errand.Config{Workers: 8})
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequestWithContext(ctx, "POST", "/signup?email=ann@example.com", nil)
		req.Header.Set("X-Request-Id", "req-42")
		start := time.Now()
		rec := serve(s, req)
		cancel() // the request is over

		if rec.Code != http.StatusAccepted || rec.Header().Get("X-Request-Id") != "req-42" {
			t.Fatalf("got %d, X-Request-Id %q; want 202, req-42", rec.Code, rec.Header().Get("X-Request-Id"))
		}
		if d := time.Since(start); d != 0 {
			t.Fatalf("signup took %v of fake time; want an immediate answer", d)
		}
		synctest.Wait()
		checkStats(t, q, errand.Stats{Workers: 1, Running: 1, Submitted: 1})

		time.Sleep(s.emailDelay - time.Nanosecond) // fake time
		synctest.Wait()
		if strings.Contains(logs.String(), "welcome email") {
			t.Fatalf("email logged before its delay:\n%s", logs)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		want := "level=INFO msg=\"welcome email sent\" to=ann@example.com request_id=req-42\n"
		if got := logs.String(); got != want {
			t.Fatalf("logs:\n got  %q\n want %q", got, want)
		}
		checkStats(t, q, errand.Stats{Workers: 1, Idle: 1, Submitted: 1, Succeeded: 1})
	})
}

// TestSignupGeneratesRequestID: without X-Request-Id the handler makes one,
// answers with it, and the task logs the same.
func TestSignupGeneratesRequestID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _, logs := newTestServer(t, errand.Config{})
		rec := serve(s, httptest.NewRequest("POST", "/signup?email=bob@example.com", nil))
		id := rec.Header().Get("X-Request-Id")
		if rec.Code != http.StatusAccepted || len(id) != 8 {
			t.Fatalf("got %d, X-Request-Id %q; want 202 and an 8-character id", rec.Code, id)
		}
		time.Sleep(s.emailDelay)
		synctest.Wait()
		want := "level=INFO msg=\"welcome email sent\" to=bob@example.com request_id=" + id + "\n"
		if got := logs.String(); got != want {
			t.Fatalf("logs:\n got  %q\n want %q", got, want)
		}
	})
}

// TestSignupShutdownAborts: a queue closing cancels the email task's
// context; the task notices and logs it.
func TestSignupShutdownAborts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, q, logs := newTestServer(t, errand.Config{})
		req := httptest.NewRequest("POST", "/signup?email=ann@example.com", nil)
		req.Header.Set("X-Request-Id", "r1")
		if rec := serve(s, req); rec.Code != http.StatusAccepted {
			t.Fatalf("got %d, want 202", rec.Code)
		}
		synctest.Wait()
		q.Close()
		// Close logs as it cancels the task, and the task logs as it sees
		// the cancellation: two goroutines, in either order.
		want := []string{
			"level=INFO msg=\"errand: closing\" running=1 dropped=0",
			"level=WARN msg=\"welcome email aborted\" to=ann@example.com request_id=r1 error=\"context canceled\"",
		}
		got := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("logs:\n got  %q\n want %q (in any order)", got, want)
		}
		checkStats(t, q, errand.Stats{Submitted: 1, Canceled: 1})
		if rec := serve(s, req); rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("signup after Close: got %d, want 503", rec.Code)
		}
	})
}

func TestSignupBadRequest(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		code           int
	}{
		{"POST", "/signup", http.StatusBadRequest},
		{"POST", "/signup?email=", http.StatusBadRequest},
		{"POST", "/signup?email=not-an-address", http.StatusBadRequest},
		{"GET", "/signup?email=ann@example.com", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			s, q, _ := newTestServer(t, errand.Config{})
			if rec := serve(s, httptest.NewRequest(tc.method, tc.target, nil)); rec.Code != tc.code {
				t.Fatalf("got %d, want %d", rec.Code, tc.code)
			}
			checkStats(t, q, errand.Stats{})
		})
	}
}

func TestReport(t *testing.T) {
	for _, tc := range []struct {
		target string
		code   int
		body   string
	}{
		{"/report?n=100", 200, `{"n":100,"primes":25,"largest":97}` + "\n"},
		{"/report?n=2", 200, `{"n":2,"primes":1,"largest":2}` + "\n"},
		{"/report?n=1", 200, `{"n":1,"primes":0,"largest":0}` + "\n"},
		{"/report?n=10000", 200, `{"n":10000,"primes":1229,"largest":9973}` + "\n"},
		{"/report", 400, "n must be an integer in [0, 1e8]\n"},
		{"/report?n=x", 400, "n must be an integer in [0, 1e8]\n"},
		{"/report?n=-1", 400, "n must be an integer in [0, 1e8]\n"},
		{"/report?n=100000001", 400, "n must be an integer in [0, 1e8]\n"},
	} {
		t.Run(tc.target, func(t *testing.T) {
			s, _, _ := newTestServer(t, errand.Config{})
			rec := serve(s, httptest.NewRequest("GET", tc.target, nil))
			if rec.Code != tc.code || rec.Body.String() != tc.body {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Body, tc.code, tc.body)
			}
			if tc.code == 200 && rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("Content-Type %q, want application/json", rec.Header().Get("Content-Type"))
			}
		})
	}
}

// TestReportErrors maps the task's outcome to a status code.
func TestReportErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		compute func(ctx context.Context, n int) (report, error)
		code    int
		took    time.Duration // fake time until the answer
	}{
		{"timeout", func(ctx context.Context, n int) (report, error) { <-ctx.Done(); return report{}, ctx.Err() }, 504, 5 * time.Second},
		{"error", func(context.Context, int) (report, error) { return report{}, errors.New("boom") }, 500, 0},
		{"panic", func(context.Context, int) (report, error) { panic("boom") }, 500, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s, q, _ := newTestServer(t, errand.Config{})
				s.compute = tc.compute
				start := time.Now()
				rec := serve(s, httptest.NewRequest("GET", "/report?n=7", nil))
				if rec.Code != tc.code || time.Since(start) != tc.took {
					t.Fatalf("got %d after %v, want %d after %v", rec.Code, time.Since(start), tc.code, tc.took)
				}
				st := q.Stats()
				if st.Submitted != 1 || st.Failed != 1 {
					t.Fatalf("Stats %+v, want Submitted 1, Failed 1", st)
				}
			})
		})
	}
}

// TestReportClientGone: when the request's context ends, the handler stops
// waiting and writes nothing; the task goes on and succeeds.
func TestReportClientGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, q, logs := newTestServer(t, errand.Config{})
		release := make(chan struct{})
		s.compute = func(ctx context.Context, n int) (report, error) {
			<-release
			return report{N: n}, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		rec := httptest.NewRecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			newMux(s).ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/report?n=7", nil))
		}()
		synctest.Wait()
		cancel()
		<-done
		if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Fatalf("wrote %q %v to a gone client; want nothing", rec.Body, rec.Header())
		}
		if !strings.Contains(logs.String(), `msg="report: client went away" n=7`) {
			t.Fatalf("logs: %q", logs)
		}
		checkStats(t, q, errand.Stats{Workers: 1, Running: 1, Submitted: 1})
		close(release)
		synctest.Wait()
		checkStats(t, q, errand.Stats{Workers: 1, Idle: 1, Submitted: 1, Succeeded: 1})
	})
}

// TestReportShared: concurrent requests for the same n share one task.
func TestReportShared(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, q, _ := newTestServer(t, errand.Config{})
		release := make(chan struct{})
		calls := 0
		s.compute = func(ctx context.Context, n int) (report, error) {
			calls++
			<-release
			return countPrimes(ctx, n)
		}
		recs := []*httptest.ResponseRecorder{httptest.NewRecorder(), httptest.NewRecorder(), httptest.NewRecorder()}
		var wg sync.WaitGroup
		for _, rec := range recs {
			wg.Go(func() { newMux(s).ServeHTTP(rec, httptest.NewRequest("GET", "/report?n=10", nil)) })
		}
		synctest.Wait()
		checkStats(t, q, errand.Stats{Workers: 1, Running: 1, Submitted: 1})
		close(release)
		wg.Wait()
		for i, rec := range recs {
			if want := `{"n":10,"primes":4,"largest":7}` + "\n"; rec.Code != 200 || rec.Body.String() != want {
				t.Fatalf("request %d: got %d %q, want 200 %q", i, rec.Code, rec.Body, want)
			}
		}
		if calls != 1 {
			t.Fatalf("computed %d times, want 1", calls)
		}
	})
}

func TestStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, _, _ := newTestServer(t, errand.Config{})
		if rec := serve(s, httptest.NewRequest("GET", "/report?n=10", nil)); rec.Code != 200 {
			t.Fatalf("report: got %d, want 200", rec.Code)
		}
		rec := serve(s, httptest.NewRequest("GET", "/stats", nil))
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %q, want 200 application/json", rec.Code, rec.Header().Get("Content-Type"))
		}
		var got errand.Stats
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("decoding %q: %v", rec.Body, err)
		}
		if want := (errand.Stats{Workers: 1, Idle: 1, Submitted: 1, Succeeded: 1}); got != want {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

// TestQueueFull: with Capacity tasks waiting and OnFull Reject, both
// handlers answer 503 with Retry-After.
func TestQueueFull(t *testing.T) {
	s, q, _ := newTestServer(t, errand.Config{Workers: 1, Capacity: 1, OnFull: errand.Reject})
	gate := make(chan struct{})
	defer close(gate)
	block := func(ctx context.Context) error { <-gate; return nil }
	for range 2 { // one runs, one waits: the queue is full
		if err := q.Go(context.Background(), block); err != nil {
			t.Fatalf("Go: %v", err)
		}
	}
	for _, req := range []*http.Request{
		httptest.NewRequest("POST", "/signup?email=ann@example.com", nil),
		httptest.NewRequest("GET", "/report?n=10", nil),
	} {
		rec := serve(s, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
			t.Fatalf("%s %s: got %d, Retry-After %q; want 503, 1", req.Method, req.URL, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	checkStats(t, q, errand.Stats{Workers: 1, Running: 1, Queued: 1, Submitted: 2, Rejected: 2})
}

// lineWriter sends each write to a channel: run's stdout in TestRun.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// TestRun starts the real server on a free port, uses it, and stops it by
// canceling run's context: run returns nil, having stopped every goroutine
// (goleak checks after the tests).
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout, logs := make(lineWriter, 1), new(syncBuffer)
	ran := make(chan error, 1)
	go func() { ran <- run(ctx, "127.0.0.1:0", stdout, logs) }()
	var url string
	select {
	case line := <-stdout:
		url, _, _ = strings.Cut(strings.TrimPrefix(line, "listening on "), " ")
	case err := <-ran:
		t.Fatalf("run: %v", err)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("run printed %q", url)
	}

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(path string) string {
		resp, err := client.Get(url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return string(body)
	}
	if got, want := get("/report?n=100"), `{"n":100,"primes":25,"largest":97}`+"\n"; got != want {
		t.Fatalf("report: got %q, want %q", got, want)
	}
	var st errand.Stats
	if err := json.Unmarshal([]byte(get("/stats")), &st); err != nil {
		t.Fatalf("stats: %v", err)
	}
	st.Workers, st.Idle = 0, 0 // the worker may have exited idle by now: real time
	if want := (errand.Stats{Submitted: 1, Succeeded: 1}); st != want {
		t.Fatalf("stats: got %+v, want %+v", st, want)
	}
	// The dashboard and the metrics are mounted and fed by the queue's events.
	// Events reach the collector asynchronously, just after the task's future
	// resolves, so the metric is polled a bounded number of times.
	if page := get("/debug/errand/"); !strings.Contains(page, "errand example") {
		t.Fatalf("dashboard page does not carry its title:\n%.300s", page)
	}
	if state := get("/debug/errand/api/state"); !strings.Contains(state, `"stats"`) {
		t.Fatalf("dashboard state: %.300s", state)
	}
	want := `errand_tasks_total{name="report",outcome="succeeded"} 1`
	for i := 0; !strings.Contains(get("/metrics"), want); i++ {
		if i == 1000 {
			t.Fatalf("/metrics never showed %s", want)
		}
		runtime.Gosched()
	}

	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := client.Get(url + "/stats"); err == nil {
		t.Fatal("server still answering after run returned")
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		_, msg, _ := strings.Cut(sc.Text(), " level=")
		lines = append(lines, msg)
	}
	if len(lines) != 4 || lines[0] != `INFO msg="shutting down"` ||
		lines[1] != `INFO msg="errand: shutting down" queued=0 running=0 dropped=0` || lines[2] != `INFO msg="errand: shut down"` ||
		!strings.HasPrefix(lines[3], `INFO msg=stopped stats="{Workers:0 Idle:0 Queued:0 Running:0 Scheduled:0 Submitted:1 Succeeded:1 Failed:0 Canceled:0 `) {
		t.Fatalf("logs: want shutting down, then stopped with the final stats; got\n%s", strings.Join(lines, "\n"))
	}
}

func TestRunBadAddr(t *testing.T) {
	err := run(context.Background(), "127.0.0.1:-1", io.Discard, io.Discard)
	if err == nil {
		t.Fatal("run with a bad address returned nil")
	}
}
