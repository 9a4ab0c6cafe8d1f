package errandui

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/errandgo/errand"
)

// do serves one request to h and returns the response and its body.
func do(t *testing.T, h http.Handler, method, target string, body io.Reader, header http.Header) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(method, target, body)
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	resp := w.Result()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestPageAndAssets(t *testing.T) {
	d := New(Options{Title: `Jobs <script>alert(1)</script> & co`, EnableActions: true})
	tests := []struct {
		path, contentType, cache, contains string
	}{
		{"/debug/errand/", "text/html; charset=utf-8", "no-store", `<script src="app.js" defer></script>`},
		{"/debug/errand/app.js", "text/javascript; charset=utf-8", "no-cache", `new EventSource("events")`},
		{"/debug/errand/style.css", "text/css; charset=utf-8", "no-cache", "--accent"},
		{"/debug/errand/favicon.svg", "image/svg+xml", "no-cache", "<svg"},
		{"/debug/errand/api/state", "application/json", "no-store", `"title":"Jobs \u003cscript\u003ealert(1)\u003c/script\u003e \u0026 co"`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := do(t, d, "GET", tt.path, nil, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			want := map[string]string{
				"Content-Type":            tt.contentType,
				"Cache-Control":           tt.cache,
				"Content-Security-Policy": contentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
			// HEAD: the same headers, no body.
			resp, body = do(t, d, "HEAD", tt.path, nil, nil)
			if resp.StatusCode != 200 || body != "" || resp.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("HEAD: status %d, %d bytes, type %q", resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
			}
		})
	}

	_, page := do(t, d, "GET", "/debug/errand/", nil, nil)
	for _, want := range []string{
		`<title>Jobs &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</title>`,
		`<meta name="errand-token" content="` + d.token + `">`,
		`<body data-actions="true">`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page does not contain %q", want)
		}
	}
	if strings.Contains(page, "<script>") || strings.Count(page, "<script") != 1 {
		t.Error("the page has an inline script")
	}

	ro := New(Options{})
	_, page = do(t, ro, "GET", "/", nil, nil)
	if !strings.Contains(page, `<meta name="errand-token" content="">`) || !strings.Contains(page, `<body data-actions="false">`) {
		t.Error("a read-only page carries a token or enables actions")
	}
}

func TestMethodsAndUnknownPaths(t *testing.T) {
	d := New(Options{})
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"POST", "/", 405, "GET, HEAD"},
		{"PUT", "/api/state", 405, "GET, HEAD"},
		{"DELETE", "/app.js", 405, "GET, HEAD"},
		{"POST", "/events", 405, "GET"},
		{"GET", "/nope", 404, ""},
		{"GET", "/api/nope", 404, ""},
		{"GET", "/index.html", 404, ""},
		{"GET", "/static/app.js/x", 404, ""},
	}
	for _, tt := range tests {
		resp, body := do(t, d, tt.method, tt.path, nil, nil)
		if resp.StatusCode != tt.status || resp.Header.Get("Allow") != tt.allow {
			t.Errorf("%s %s: %d, Allow %q (%s); want %d, Allow %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Allow"), body, tt.status, tt.allow)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s %s: no Content-Security-Policy", tt.method, tt.path)
		}
	}
}

// TestMounting serves the Dashboard under prefixes, with and without
// http.StripPrefix, through a real server: the page's relative URLs resolve
// to the Dashboard in each case.
func TestMounting(t *testing.T) {
	d := New(Options{})
	mux := http.NewServeMux()
	mux.Handle("/debug/errand/", d)
	mux.Handle("/admin/queue/", http.StripPrefix("/admin/queue", d))
	mux.Handle("/ops/", http.StripPrefix("/ops/", d))
	mux.Handle("/", d)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := srv.Client()

	for _, mount := range []string{"/debug/errand/", "/admin/queue/", "/ops/", "/"} {
		base, err := url.Parse(srv.URL + mount)
		if err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"", "app.js", "style.css", "favicon.svg", "api/state"} {
			u := base.ResolveReference(&url.URL{Path: ref})
			resp, err := client.Get(u.String())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: %d", u.Path, resp.StatusCode)
			}
		}
	}
	// The mux redirects the mount path without its slash, so relative URLs
	// work from where the browser lands.
	noRedirect := *client
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Get(srv.URL + "/debug/errand")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/debug/errand/" {
		t.Errorf("GET /debug/errand: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func getState(t *testing.T, h http.Handler) (*state, string) {
	t.Helper()
	resp, body := do(t, h, "GET", "/x/api/state", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("api/state: %d %s", resp.StatusCode, body)
	}
	var s state
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	return &s, body
}

func TestStateJSON(t *testing.T) {
	h := newHarness(t, Options{Title: "jobs"}, errand.Config{Workers: 1})
	run := submit(t, h.q, h.blocker, errand.WithName("report.build"))
	evil := `<img src=x onerror=alert(1)>`
	wait := submit(t, h.q, h.blocker, errand.WithName(evil))
	bad := submit(t, h.q, func(context.Context) (int, error) { return 0, errors.New(`<b>500</b> "quoted"`) }, errand.WithName("email.send"))
	h.waitState(t, "one running, two queued", func(s *state) bool { return len(s.Running.Tasks) == 1 && len(s.Queued.Tasks) == 2 })

	s, body := getState(t, h.d)
	if strings.Contains(body, "<img") || strings.Contains(body, "<b>") {
		t.Fatalf("the JSON carries raw HTML: %s", body)
	}
	if !strings.Contains(body, `\u003cimg src=x onerror=alert(1)\u003e`) {
		t.Fatalf("the JSON does not carry the escaped name: %s", body)
	}
	if s.Title != "jobs" || !s.Attached || s.Actions {
		t.Errorf("title %q attached %v actions %v", s.Title, s.Attached, s.Actions)
	}
	if s.Stats.Submitted != 3 || s.Stats.Running != 1 || s.Stats.Queued != 2 || s.Stats.Workers != 1 {
		t.Errorf("stats = %+v", s.Stats)
	}
	if len(s.Running.Tasks) != 1 || s.Running.Tasks[0].ID != run.ID() || s.Running.Tasks[0].Attempt != 1 {
		t.Errorf("running = %+v", s.Running)
	}
	if got := names(s.Queued); len(got) != 2 || got[0] != evil || got[1] != "email.send" || s.Queued.Tasks[0].ID != wait.ID() {
		t.Errorf("queued = %+v", s.Queued)
	}
	if n := len(s.Throughput.Succeeded); n != 300 || len(s.Throughput.Failed) != 300 {
		t.Errorf("throughput has %d seconds, want 300", n)
	}
	if now := time.Now().UnixMilli(); s.Now > now || s.Now < now-10_000 {
		t.Errorf("now = %d, want about %d", s.Now, now)
	}

	h.unblock()
	await(t, run)
	await(t, wait)
	await(t, bad)
	h.waitState(t, "all done", func(s *state) bool {
		return len(s.Failed.Tasks) == 1 && len(s.Queued.Tasks) == 0 && len(s.Running.Tasks) == 0
	})
	s, _ = getState(t, h.d)
	if len(s.Failed.Tasks) != 1 || s.Failed.Tasks[0].Error != `<b>500</b> "quoted"` || s.Failed.Tasks[0].ID != bad.ID() {
		t.Errorf("failed = %+v", s.Failed)
	}
	if s.Stats.Succeeded != 2 || s.Stats.Failed != 1 {
		t.Errorf("stats = %+v", s.Stats)
	}
}

// action posts an action with the form value id and the given headers.
func action(t *testing.T, d *Dashboard, method, path, id string, header http.Header) (int, string) {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(url.Values{"id": {id}}.Encode())
	}
	hdr := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for k, v := range header {
		hdr[k] = v
	}
	resp, b := do(t, d, method, "https://dash.example"+path, body, hdr)
	return resp.StatusCode, b
}

func TestActionsRefused(t *testing.T) {
	h := newHarness(t, Options{EnableActions: true}, errand.Config{Workers: 1})
	run := submit(t, h.q, h.blocker, errand.WithName("run"))
	h.waitState(t, "the running task", func(s *state) bool { return len(s.Running.Tasks) == 1 })
	tok := http.Header{TokenHeader: {h.d.token}}
	with := func(kv ...string) http.Header {
		hd := http.Header{TokenHeader: {h.d.token}}
		for i := 0; i < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	ro := New(Options{})
	ro.Attach(h.q)

	tests := []struct {
		name         string
		d            *Dashboard
		method, path string
		id           string
		header       http.Header
		status       int
	}{
		{"read-only cancel", ro, "POST", "/api/cancel", run.ID(), tok, 403},
		{"read-only stop", ro, "POST", "/api/stop", "x", tok, 403},
		{"read-only GET", ro, "GET", "/api/cancel", run.ID(), nil, 403},
		{"GET", h.d, "GET", "/api/cancel", run.ID(), tok, 405},
		{"GET stop", h.d, "GET", "/api/stop", "x", tok, 405},
		{"PUT", h.d, "PUT", "/api/cancel", run.ID(), tok, 405},
		{"no token", h.d, "POST", "/api/cancel", run.ID(), nil, 403},
		{"wrong token", h.d, "POST", "/api/cancel", run.ID(), http.Header{TokenHeader: {h.d.token[:42] + "x"}}, 403},
		{"token of another dashboard", h.d, "POST", "/api/cancel", run.ID(), http.Header{TokenHeader: {New(Options{EnableActions: true}).token}}, 403},
		{"empty token", h.d, "POST", "/api/stop", "x", http.Header{TokenHeader: {""}}, 403},
		{"cross-site fetch", h.d, "POST", "/api/cancel", run.ID(), with("Sec-Fetch-Site", "cross-site"), 403},
		{"same-site fetch", h.d, "POST", "/api/cancel", run.ID(), with("Sec-Fetch-Site", "same-site"), 403},
		{"other origin", h.d, "POST", "/api/cancel", run.ID(), with("Origin", "https://evil.example"), 403},
		{"null origin", h.d, "POST", "/api/cancel", run.ID(), with("Origin", "null"), 403},
		{"no id", h.d, "POST", "/api/cancel", "", tok, 400},
		{"unknown task", h.d, "POST", "/api/cancel", "00000000-0000-0000-0000-000000000000", tok, 404},
		{"unknown schedule", h.d, "POST", "/api/stop", "00000000-0000-0000-0000-000000000000", tok, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := action(t, tt.d, tt.method, tt.path, tt.id, tt.header)
			if status != tt.status {
				t.Fatalf("status %d (%s), want %d", status, body, tt.status)
			}
		})
	}
	if st := run.Status(); st != errand.Running {
		t.Fatalf("after refused actions the task is %v, want running", st)
	}
	// Same origin, by both headers, is accepted.
	status, body := action(t, h.d, "POST", "/api/cancel", run.ID(), with("Sec-Fetch-Site", "same-origin", "Origin", "https://dash.example"))
	if status != 200 || strings.TrimSpace(body) != `{"ok":true}` {
		t.Fatalf("same-origin cancel: %d %s", status, body)
	}
	if err := await(t, run); !errors.Is(err, errand.ErrCanceled) {
		t.Fatalf("canceled task's error = %v, want ErrCanceled", err)
	}
}

func TestCancelAction(t *testing.T) {
	h := newHarness(t, Options{EnableActions: true}, errand.Config{Workers: 1, Retry: errand.RetryPolicy{MaxAttempts: 2, Backoff: errand.Constant(time.Hour)}})
	tok := http.Header{TokenHeader: {h.d.token}}
	retrying := submit(t, h.q, func(context.Context) (int, error) { return 0, errors.New("flaky") }, errand.WithName("retrying"))
	h.waitState(t, "the retry", func(s *state) bool { return len(s.Scheduled.Tasks) == 1 })
	running := submit(t, h.q, h.blocker, errand.WithName("running"))
	waiting := submit(t, h.q, h.blocker, errand.WithName("waiting"))
	h.waitState(t, "running and waiting", func(s *state) bool { return len(s.Running.Tasks) == 1 && len(s.Queued.Tasks) == 1 })

	for _, f := range []*errand.Future[int]{waiting, running, retrying} {
		status, body := action(t, h.d, "POST", "/debug/errand/api/cancel", f.ID(), tok)
		if status != 200 {
			t.Fatalf("cancel %s: %d %s", f.ID(), status, body)
		}
		if err := await(t, f); !errors.Is(err, errand.ErrCanceled) {
			t.Fatalf("error = %v, want ErrCanceled", err)
		}
	}
	s := h.waitState(t, "empty lists", func(s *state) bool {
		return len(s.Running.Tasks)+len(s.Queued.Tasks)+len(s.Scheduled.Tasks) == 0
	})
	if s.Stats.Canceled != 3 {
		t.Fatalf("stats.canceled = %d, want 3", s.Stats.Canceled)
	}
	// Canceled tasks are gone from the lists: a second cancel finds nothing.
	if status, _ := action(t, h.d, "POST", "/api/cancel", waiting.ID(), tok); status != 404 {
		t.Fatalf("second cancel: %d, want 404", status)
	}
}

// TestCancelRaceConflict covers a task the Dashboard still lists that has
// finished in the meantime, its last events not yet observed: 409.
func TestCancelRaceConflict(t *testing.T) {
	d := New(Options{EnableActions: true})
	var submitted errand.Event
	q, err := errand.New(errand.Config{Workers: 1, OnEvent: func(e errand.Event) {
		if e.Kind == errand.EventSubmitted {
			submitted = e
		}
		d.Observe(e)
	}})
	if err != nil {
		t.Fatal(err)
	}
	d.Attach(q)
	f := submit(t, q, func(context.Context) (int, error) { return 1, nil })
	await(t, f)
	q.Close()            // every event delivered: the task has come and gone
	d.Observe(submitted) // as if the later events were still on their way
	status, body := action(t, d, "POST", "/api/cancel", f.ID(), http.Header{TokenHeader: {d.token}})
	if status != http.StatusConflict || !strings.Contains(body, `"ok":false`) {
		t.Fatalf("cancel of a finished task: %d %s, want 409", status, body)
	}
}

func TestStopScheduleAction(t *testing.T) {
	h := newHarness(t, Options{EnableActions: true}, errand.Config{Workers: 1})
	r, err := h.q.Schedule(errand.Every(time.Hour), func(context.Context) error { return nil }, errand.WithName("cache.warm"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := getState(t, h.d)
	if s.Schedules.Total != 1 || len(s.Schedules.Items) != 1 {
		t.Fatalf("schedules = %+v", s.Schedules)
	}
	if got, want := s.Schedules.Items[0], (schedView{ID: r.ID(), Name: "cache.warm", Trigger: "@every 1h0m0s", Next: r.Next().UnixMilli()}); got != want {
		t.Fatalf("schedule = %+v, want %+v", got, want)
	}
	status, body := action(t, h.d, "POST", "/api/stop", r.ID(), http.Header{TokenHeader: {h.d.token}})
	if status != 200 {
		t.Fatalf("stop: %d %s", status, body)
	}
	if !r.Next().IsZero() || len(h.q.Recurring()) != 0 {
		t.Fatalf("after stop: next %v, %d schedules", r.Next(), len(h.q.Recurring()))
	}
	s, _ = getState(t, h.d)
	if s.Schedules.Total != 0 || len(s.Schedules.Items) != 0 {
		t.Fatalf("schedules after stop = %+v", s.Schedules)
	}
	if status, _ := action(t, h.d, "POST", "/api/stop", r.ID(), http.Header{TokenHeader: {h.d.token}}); status != 404 {
		t.Fatalf("second stop: %d, want 404", status)
	}
}

func TestActionBodyLimit(t *testing.T) {
	d := New(Options{EnableActions: true})
	big := strings.NewReader("id=" + strings.Repeat("a", 8<<10))
	resp, body := do(t, d, "POST", "/api/cancel", big, http.Header{
		TokenHeader: {d.token}, "Content-Type": {"application/x-www-form-urlencoded"},
	})
	if resp.StatusCode != 400 {
		t.Fatalf("oversized form: %d %s, want 400", resp.StatusCode, body)
	}
}
