package errandui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandtest"
)

var screenshotPath = flag.String("screenshot", "", "write the dashboard's screenshot (TestBrowser/screenshot) to this PNG file, e.g. ../docs/dashboard.png")

// chromiumPath finds a Chromium or Chrome to drive. Without one the browser
// test fails under CI=true and is skipped elsewhere; scripts/test installs
// Debian's chromium.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found (install Debian's chromium: apt-get install -y chromium)")
	}
	t.Skip("no Chromium found; install it (apt-get install -y chromium) to run the browser test")
	return ""
}

// newBrowser starts a headless Chromium for the test and stops it, and
// waits for it to exit, at cleanup.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("lang", "en-US"),
		chromedp.Env("TZ=UTC", "LANG=en_US.UTF-8"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		bcancel()
		acancel() // waits for the browser to exit
	})
	if err := chromedp.Do(bctx); err != nil { // start the browser now, with no deadline
		t.Fatalf("starting %s: %v", chromiumPath(t), err)
	}
	return bctx
}

// page is one browser tab on a dashboard served by its own server.
type page struct {
	t   *testing.T
	ctx context.Context
	h   *harness
	url string

	mu       sync.Mutex
	problems []string // console errors and warnings, exceptions, log errors
}

// openPage serves h's Dashboard at /debug/errand/ and opens it in a new tab
// of browser. At cleanup the tab closes, then the Dashboard's streams end
// and the server stops.
func openPage(t *testing.T, browser context.Context, h *harness) *page {
	t.Helper()
	srv := httptest.NewServer(mountAt("/debug/errand/", h.d))
	t.Cleanup(srv.Close)
	t.Cleanup(h.d.Close) // ends the page's event stream, so that srv.Close need not wait
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	p := &page{t: t, ctx: ctx, h: h, url: srv.URL + "/debug/errand/"}
	if err := chromedp.Listen(ctx, p.record); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(p.bounded(), chromedp.EmulateViewport(1440, 900), chromedp.Navigate(p.url)); err != nil {
		t.Fatal(err)
	}
	p.poll(`document.querySelector("#status").dataset.state === "live"`)
	return p
}

// record keeps what the page reports as a problem. It runs in the tab's
// event loop: it only appends.
func (p *page) record(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeWarning || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		msg = "exception: " + ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			msg = fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	}
	if msg != "" {
		p.mu.Lock()
		p.problems = append(p.problems, msg)
		p.mu.Unlock()
	}
}

// checkConsole fails the test if the page has reported a problem.
func (p *page) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.problems {
		p.t.Errorf("the page reported: %s", m)
	}
}

// expectProblem removes the problems the page reported that contain
// substr, failing the test if there is none: for a failure the test causes
// on purpose, such as a 404 the browser logs.
func (p *page) expectProblem(substr string) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.problems)
	p.problems = slices.DeleteFunc(p.problems, func(m string) bool { return strings.Contains(m, substr) })
	if len(p.problems) == n {
		p.t.Errorf("the page reported no problem with %q", substr)
	}
}

// bounded returns the tab's context with a deadline for one step.
func (p *page) bounded() context.Context {
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	p.t.Cleanup(cancel)
	return ctx
}

// poll waits until the JavaScript expression is truthy in the page.
func (p *page) poll(expr string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.bounded(), chromedp.Poll[bool](expr,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		p.t.Fatalf("waiting for %s: %v", expr, err)
	}
}

func (p *page) eval(expr string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.bounded(), chromedp.Evaluate[string](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// stat is the JavaScript expression of a count's text on the page.
func stat(name string) string {
	return `document.querySelector('[data-stat="` + name + `"]').textContent`
}

// listText is the JavaScript expression of a list's text on the page.
func listText(kind string) string {
	return `document.querySelector('[data-list="` + kind + `"] tbody').textContent`
}

func TestBrowser(t *testing.T) {
	browser := newBrowser(t)

	t.Run("counts", func(t *testing.T) {
		h := newHarness(t, Options{Title: "counts"}, errand.Config{Workers: 2})
		p := openPage(t, browser, h)
		p.poll(stat("submitted") + ` === "0" && ` + stat("succeeded") + ` === "0"`)
		if title := p.eval(`document.title`); title != "counts" {
			t.Errorf("title = %q", title)
		}

		slow := submit(t, h.q, h.blocker, errand.WithName("slow.job"))
		p.poll(listText("running") + `.includes("slow.job") && ` + stat("running") + ` === "1"`)
		var fs []*errand.Future[int]
		for i := range 5 {
			fs = append(fs, submit(t, h.q, func(context.Context) (int, error) { return i, nil }, errand.WithName("quick")))
		}
		for _, f := range fs {
			if err := await(t, f); err != nil {
				t.Fatal(err)
			}
		}
		p.poll(stat("succeeded") + ` === "5" && ` + stat("submitted") + ` === "6"`)
		h.unblock()
		await(t, slow)
		p.poll(stat("succeeded") + ` === "6" && ` + stat("running") + ` === "0" && !` + listText("running") + `.includes("slow.job")`)
		p.poll(`document.querySelector('[data-list="running"] .empty').hidden === false`)
		if rate := p.eval(`document.querySelector("#rate").textContent`); rate == "–" || rate == "" {
			t.Errorf("throughput rate = %q", rate)
		}
		p.checkConsole()
	})

	t.Run("escaping", func(t *testing.T) {
		h := newHarness(t, Options{EnableActions: true}, errand.Config{Workers: 1})
		p := openPage(t, browser, h)
		script := `<script>window.__xss=2</script>`
		failed := submit(t, h.q, func(context.Context) (int, error) { return 0, errors.New(script) }, errand.WithName("<u>u</u>"))
		await(t, failed)
		submit(t, h.q, h.blocker, errand.WithName("blocker"))
		img := `<img src=x onerror=window.__xss=1>`
		bold := `<b>bold</b>`
		submit(t, h.q, h.blocker, errand.WithName(img))
		submit(t, h.q, h.blocker, errand.WithName(bold))
		if _, err := h.q.Schedule(errand.Every(time.Hour), func(context.Context) error { return nil }, errand.WithName(`<i>sched</i>`)); err != nil {
			t.Fatal(err)
		}

		p.poll(listText("queued") + `.includes(` + strconv.Quote(img) + `) && ` + listText("queued") + `.includes(` + strconv.Quote(bold) + `)`)
		p.poll(listText("failed") + `.includes(` + strconv.Quote(script) + `) && ` + listText("failed") + `.includes("<u>u</u>")`)
		p.poll(listText("schedules") + `.includes("<i>sched</i>")`)
		checks := map[string]string{
			`String(window.__xss)`:                            "undefined",
			`String(document.querySelectorAll("b").length)`:   "0",
			`String(document.querySelectorAll("i").length)`:   "0",
			`String(document.querySelectorAll("u").length)`:   "0",
			`String(document.querySelectorAll("img").length)`: "1", // the logo
			`String(document.scripts.length)`:                 "1", // app.js
		}
		for expr, want := range checks {
			if got := p.eval(expr); got != want {
				t.Errorf("%s = %s, want %s", expr, got, want)
			}
		}
		p.checkConsole()
	})

	t.Run("cancel and stop", func(t *testing.T) {
		h := newHarness(t, Options{EnableActions: true}, errand.Config{Workers: 1})
		p := openPage(t, browser, h)
		submit(t, h.q, h.blocker, errand.WithName("blocker"))
		victim := submit(t, h.q, h.blocker, errand.WithName("victim"))
		other := submit(t, h.q, h.blocker, errand.WithName("bystander"))
		r, err := h.q.Schedule(errand.Every(time.Hour), func(context.Context) error { return nil }, errand.WithName("hourly"))
		if err != nil {
			t.Fatal(err)
		}

		cancelSel := `button[data-action="cancel"][data-id="` + victim.ID() + `"]`
		p.poll(`document.querySelector('` + cancelSel + `') !== null`)
		if err := chromedp.Do(p.bounded(), chromedp.Click(chromedp.CSS(cancelSel), chromedp.NodeVisible)); err != nil {
			t.Fatal(err)
		}
		if err := await(t, victim); !errors.Is(err, errand.ErrCanceled) {
			t.Fatalf("victim's error = %v, want ErrCanceled", err)
		}
		p.poll(`document.querySelector("#toast").textContent.startsWith("Canceled task ` + victim.ID()[:8] + `")`)
		p.poll(`document.querySelector('` + cancelSel + `') === null && ` + stat("canceled") + ` === "1"`)
		if st := other.Status(); st != errand.Queued {
			t.Fatalf("bystander is %v, want queued", st)
		}

		stopSel := `button[data-action="stop"][data-id="` + r.ID() + `"]`
		p.poll(`document.querySelector('` + stopSel + `') !== null`)
		if err := chromedp.Do(p.bounded(), chromedp.Click(chromedp.CSS(stopSel), chromedp.NodeVisible)); err != nil {
			t.Fatal(err)
		}
		p.poll(`document.querySelector('` + stopSel + `') === null`)
		if !r.Next().IsZero() || len(h.q.Recurring()) != 0 {
			t.Fatalf("the schedule is still live: next %v", r.Next())
		}
		p.checkConsole()
	})

	t.Run("read-only", func(t *testing.T) {
		h := newHarness(t, Options{}, errand.Config{Workers: 1})
		p := openPage(t, browser, h)
		submit(t, h.q, h.blocker, errand.WithName("blocker"))
		p.poll(listText("running") + `.includes("blocker")`)
		if n := p.eval(`String(document.querySelectorAll("button[data-action]").length)`); n != "0" {
			t.Errorf("a read-only page has %s action buttons", n)
		}
		if mode := p.eval(`document.querySelector("#mode").textContent`); mode != "Read-only" {
			t.Errorf("mode = %q", mode)
		}
		p.checkConsole()
	})

	t.Run("task lookup", func(t *testing.T) {
		// A read-only page on a queue with a Store: finished tasks can be
		// looked up, with their arguments and result, shown as text.
		h := newHarness(t, Options{}, errand.Config{Workers: 1, Store: errandtest.NewMemStore()})
		p := openPage(t, browser, h)
		img := `<img src=x onerror=window.__xss=1>`
		send := errand.Define("mail.send", func(_ context.Context, m mail) (string, error) { return "queued for " + m.To, nil })
		f, err := send.Enqueue(context.Background(), h.q, mail{To: img, Subject: "<b>hi</b>"})
		if err != nil {
			t.Fatal(err)
		}
		if err := await(t, f); err != nil {
			t.Fatal(err)
		}

		if err := chromedp.Do(p.bounded(),
			chromedp.SendKeys(chromedp.CSS("#lookup-id"), f.ID()),
			chromedp.Click(chromedp.CSS("#lookup-go"), chromedp.NodeVisible),
		); err != nil {
			t.Fatal(err)
		}
		p.poll(`!document.querySelector("#lookup-result").hidden`)
		fields := p.eval(`document.querySelector("#lookup-fields").textContent`)
		for _, want := range []string{"Statussucceeded", "Kindmail.send", "ID" + f.ID(), "Attempts1 of 1", "Created", "Finished"} {
			if !strings.Contains(fields, want) {
				t.Errorf("the lookup shows %q, without %q", fields, want)
			}
		}
		if tone := p.eval(`document.querySelector("#lookup-fields .status-badge").dataset.tone`); tone != "ok" {
			t.Errorf("the status badge's tone is %q", tone)
		}
		args := p.eval(`document.querySelector('[data-payload="args"] pre').textContent`)
		result := p.eval(`document.querySelector('[data-payload="result"] pre').textContent`)
		if want := "{\n  \"to\": \"\\u003cimg src=x onerror=window.__xss=1\\u003e\",\n  \"subject\": \"\\u003cb\\u003ehi\\u003c/b\\u003e\"\n}"; args != want {
			t.Errorf("args shown:\n%s\nwant:\n%s", args, want)
		}
		if want := `"queued for \u003cimg src=x onerror=window.__xss=1\u003e"`; result != want {
			t.Errorf("result shown %s, want %s", result, want)
		}

		// A failed task whose arguments (not HTML-escaped by its codec) and
		// error are HTML, submitted with the Enter key: shown as text.
		bounce := errand.Define("mail.bounce", func(context.Context, mail) (int, error) { return 0, errors.New(img) }).WithCodec(plainJSON{})
		bf, err := bounce.Enqueue(context.Background(), h.q, mail{To: img})
		if err != nil {
			t.Fatal(err)
		}
		if err := await(t, bf); err == nil {
			t.Fatal("the bounce succeeded")
		}
		p.eval(`document.querySelector("#lookup-id").value = ""`)
		if err := chromedp.Do(p.bounded(), chromedp.SendKeys(chromedp.CSS("#lookup-id"), bf.ID()+kb.Enter)); err != nil {
			t.Fatal(err)
		}
		p.poll(`document.querySelector("#lookup-fields").textContent.includes("Statusfailed")`)
		if got := p.eval(`document.querySelector("#lookup-fields .error-text").textContent`); !strings.Contains(got, img) {
			t.Errorf("error shown %q, want it to contain %q", got, img)
		}
		if got, want := p.eval(`document.querySelector('[data-payload="args"] pre').textContent`), "{\n  \"to\": \""+img+"\",\n  \"subject\": \"\"\n}"; got != want {
			t.Errorf("args shown %q, want %q", got, want)
		}
		if p.eval(`String(document.querySelector('[data-payload="result"]').hidden)`) != "true" {
			t.Error("a failed task shows a result")
		}

		// An unknown id.
		p.eval(`document.querySelector("#lookup-id").value = ""`)
		if err := chromedp.Do(p.bounded(),
			chromedp.SendKeys(chromedp.CSS("#lookup-id"), "0f8fad5b-d9cb-469f-a165-70867728950e"),
			chromedp.Click(chromedp.CSS("#lookup-go"), chromedp.NodeVisible),
		); err != nil {
			t.Fatal(err)
		}
		p.poll(`document.querySelector("#lookup-msg").textContent.startsWith("No task 0f8fad5b-d9cb-469f-a165-70867728950e") && ` +
			`document.querySelector("#lookup-result").hidden`)
		for expr, want := range map[string]string{
			`String(window.__xss)`:                            "undefined",
			`String(document.querySelectorAll("b").length)`:   "0",
			`String(document.querySelectorAll("img").length)`: "1", // the logo
			`document.location.search`:                        "",  // the form did not navigate
		} {
			if got := p.eval(expr); got != want {
				t.Errorf("%s = %s, want %s", expr, got, want)
			}
		}
		p.expectProblem("404 (Not Found) " + p.url + "api/task?id=0f8fad5b-d9cb-469f-a165-70867728950e")
		p.checkConsole()
	})

	t.Run("screenshot", func(t *testing.T) {
		// The Dashboard does not see unnamed tasks: screenshotScene runs
		// them to make the counts agree with the chart's history.
		h := newFilteredHarness(t, Options{Title: "acme-api · production", EnableActions: true}, errand.Config{Workers: 4},
			func(e errand.Event) bool { return e.Task.Name != "" })
		screenshotScene(t, h)
		p := openPage(t, browser, h)
		p.poll(listText("running") + `.includes("report.generate") && ` + listText("failed") + `.includes("smtp") && ` +
			listText("scheduled") + `.includes("webhook") && ` + listText("schedules") + `.includes("@every") && ` +
			stat("succeeded") + ` !== "0"`)
		shot, err := chromedp.Run(p.bounded(), chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() < 1000 || b.Dy() < 800 {
			t.Fatalf("screenshot is %v", b)
		}
		p.checkConsole()
		if *screenshotPath != "" {
			if err := os.WriteFile(*screenshotPath, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", *screenshotPath)
		}
	})
}

// plainJSON is encoding/json without HTML escaping, so that stored
// arguments can hold raw HTML.
type plainJSON struct{}

func (plainJSON) Marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func (plainJSON) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// mountAt serves d under prefix, as a user's mux would.
func mountAt(prefix string, d *Dashboard) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle(prefix, d)
	return mux
}

// screenshotScene gives the queue a realistic look: five minutes of
// throughput with an incident, tasks running, waiting, backing off and
// failed, and a few schedules.
func screenshotScene(t *testing.T, h *harness) {
	t.Helper()
	now := time.Now()
	var okTotal, failTotal int
	for ago := 299; ago >= 1; ago-- {
		x := float64(300 - ago)
		ok := int(26 + 9*math.Sin(x/31) + 5*math.Sin(x/7.3) + 3*math.Sin(x*1.7))
		fail := 0
		if int(x)%23 == 0 {
			fail = 1 + int(x)%3
		}
		if x > 180 && x < 200 { // an incident: a webhook endpoint is down
			fail += 6 + int(x)%4
			ok -= 8
		}
		at := now.Add(-time.Duration(ago) * time.Second)
		for range ok {
			h.d.Observe(errand.Event{Kind: errand.EventSucceeded, Time: at})
		}
		for range fail {
			h.d.Observe(errand.Event{Kind: errand.EventFailed, Time: at, Err: errors.New("history")})
		}
		okTotal += ok
		failTotal += fail
	}
	// The same numbers of real (unnamed, unobserved) tasks, for the counts.
	var fs []*errand.Future[int]
	for i := range okTotal + failTotal {
		fs = append(fs, submit(t, h.q, func(context.Context) (int, error) {
			if i < failTotal {
				return 0, errors.New("history")
			}
			return 0, nil
		}))
	}
	for _, f := range fs {
		await(t, f)
	}
	// The history lost its failures from the failure list: keep it for the
	// named ones below.
	h.d.mu.Lock()
	h.d.tr.fcount, h.d.tr.fnext = 0, 0
	h.d.mu.Unlock()

	fail := func(name, msg string, opts ...errand.Option) {
		f := submit(t, h.q, func(context.Context) (int, error) { return 0, errors.New(msg) }, append(opts, errand.WithName(name))...)
		await(t, f)
	}
	fast := errand.WithRetry(errand.RetryPolicy{MaxAttempts: 3, Backoff: errand.Constant(time.Millisecond)})
	fail("email.send", "smtp: 451 4.7.1 greylisted, try again later", fast)
	fail("invoice.render", `template: invoice.tmpl:42:17: executing "total" at <.VAT>: map has no entry for key "vat_id"`)
	boom := submit(t, h.q, func(context.Context) (int, error) { panic("image: unknown format") }, errand.WithName("image.resize"))
	await(t, boom)
	fail("search.reindex", "elastic: Error 429 (Too Many Requests): circuit_breaking_exception", fast)
	fail("email.send", "dial tcp 10.0.4.17:587: connect: connection refused")

	for i, d := range []time.Duration{90 * time.Second, 4 * time.Minute, 45 * time.Second} {
		submit(t, h.q, func(context.Context) (int, error) {
			return 0, errors.New("POST https://hooks.partner.example/v2/orders: 503 Service Unavailable")
		}, errand.WithName("webhook.deliver"), errand.WithPriority(i%2*5), errand.WithRetry(errand.RetryPolicy{MaxAttempts: 8, Backoff: errand.Constant(d)}))
	}
	h.waitState(t, "three retries", func(s *state) bool { return len(s.Scheduled.Tasks) == 3 })
	for range 37 {
		submit(t, h.q, func(context.Context) (int, error) { return 1, nil }, errand.WithName("email.send"))
	}

	noop := func(context.Context) error { return nil }
	nightly, _ := errand.ParseCron("0 3 * * *")
	rollup, _ := errand.ParseCron("*/15 * * * *")
	for _, s := range []struct {
		tr   errand.Trigger
		name string
	}{{errand.Every(5 * time.Minute), "cache.warm"}, {nightly, "report.nightly"}, {rollup, "metrics.rollup"}, {errand.Every(time.Hour), "sessions.purge"}} {
		if _, err := h.q.Schedule(s.tr, noop, errand.WithName(s.name)); err != nil {
			t.Fatal(err)
		}
	}

	for _, name := range []string{"report.generate", "image.resize", "email.send", "pdf.export"} {
		submit(t, h.q, h.blocker, errand.WithName(name))
	}
	waiting := []string{"email.send", "email.send", "image.resize", "invoice.render", "email.send", "image.resize",
		"search.reindex", "email.send", "pdf.export", "image.resize", "email.send", "invoice.render"}
	for _, name := range waiting {
		var opts []errand.Option
		if name == "invoice.render" {
			opts = append(opts, errand.WithPriority(10))
		}
		submit(t, h.q, h.blocker, append(opts, errand.WithName(name))...)
	}
	h.waitState(t, "the scene", func(s *state) bool {
		return len(s.Running.Tasks) == 4 && len(s.Queued.Tasks) == len(waiting) && len(s.Failed.Tasks) == 5
	})
}
