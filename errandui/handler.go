package errandui

import (
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// The paths the Dashboard serves, relative to where it is mounted.
const (
	pathState  = "/api/state"
	pathEvents = "/events"
	pathCancel = "/api/cancel"
	pathStop   = "/api/stop"
	pathTask   = "/api/task"
)

// assets are the static files, by the path suffix they are served at.
var assets = map[string]struct{ file, contentType string }{
	"/app.js":      {"static/app.js", "text/javascript; charset=utf-8"},
	"/style.css":   {"static/style.css", "text/css; charset=utf-8"},
	"/favicon.svg": {"static/favicon.svg", "image/svg+xml"},
}

// TokenHeader is the request header that carries the Dashboard's CSRF token
// on an action. The page sends it; a script of your own that calls the
// actions must too.
const TokenHeader = "X-Errand-Token"

// contentSecurityPolicy allows the page its own script, style, icon and
// requests, and nothing else: no inline script or style element, no
// other origin, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// ServeHTTP serves the dashboard: the page at the mount path (which must end
// in a slash), its script and style, the state as JSON (GET api/state), the
// live updates as server-sent events (GET events), one task's record as
// JSON (GET api/task?id=, see Queue.Lookup), and, with
// Options.EnableActions, the actions (POST api/cancel and POST api/stop,
// with the form value id). The Dashboard finds these by the end of the
// request's path, so it needs no http.StripPrefix; it works with one too.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")

	p := r.URL.Path
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // under http.StripPrefix with the mount path's slash
	}
	switch {
	case strings.HasSuffix(p, "/"):
		d.servePage(w, r)
	case strings.HasSuffix(p, pathState):
		d.serveState(w, r)
	case strings.HasSuffix(p, pathEvents):
		d.serveEvents(w, r)
	case strings.HasSuffix(p, pathCancel):
		d.serveAction(w, r, d.cancelTask)
	case strings.HasSuffix(p, pathStop):
		d.serveAction(w, r, d.stopSchedule)
	case strings.HasSuffix(p, pathTask):
		d.serveTask(w, r)
	default:
		if a, ok := assets[p[strings.LastIndexByte(p, '/'):]]; ok {
			d.serveAsset(w, r, a.file, a.contentType)
			return
		}
		http.NotFound(w, r)
	}
}

// allowRead answers 405 to a method other than GET and HEAD.
func allowRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func (d *Dashboard) servePage(w http.ResponseWriter, r *http.Request) {
	if !allowRead(w, r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store") // the page holds the CSRF token
	if r.Method == http.MethodHead {
		return
	}
	w.Write(d.page)
}

func (d *Dashboard) serveAsset(w http.ResponseWriter, r *http.Request, file, contentType string) {
	if !allowRead(w, r) {
		return
	}
	b, err := fs.ReadFile(static, file)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}

func (d *Dashboard) serveState(w http.ResponseWriter, r *http.Request) {
	if !allowRead(w, r) {
		return
	}
	b, err := json.Marshal(d.snapshot(time.Now()))
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}

// Timing of the event stream.
const (
	streamPoll    = 250 * time.Millisecond // how often it looks for new events
	streamRefresh = time.Second            // it sends at least this often
	writeTimeout  = 10 * time.Second       // a write that takes longer ends the stream
)

// serveEvents streams the state as server-sent events: at once, then every
// streamRefresh, and within streamPoll of a change. It returns when the
// client goes, a write fails, or the Dashboard is closed; it runs on the
// request's goroutine and starts none.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	select {
	case <-d.closed:
		w.WriteHeader(http.StatusNoContent) // tells an EventSource not to reconnect
		return
	default:
	}
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // ask proxies not to buffer
	rc := http.NewResponseController(w)
	ctx := r.Context()

	send := func(prefix string) error {
		b, err := json.Marshal(d.snapshot(time.Now()))
		if err != nil {
			return err
		}
		if err := rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		buf := make([]byte, 0, len(prefix)+len(b)+8)
		buf = append(buf, prefix...)
		buf = append(buf, "data: "...)
		buf = append(buf, b...)
		buf = append(buf, "\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		return rc.Flush()
	}

	seen := d.version.Load()
	if send("retry: 2000\n") != nil {
		return
	}
	last := time.Now()
	tick := time.NewTicker(streamPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.closed:
			return
		case now := <-tick.C:
			v := d.version.Load()
			if v == seen && now.Sub(last) < streamRefresh {
				continue
			}
			seen, last = v, now
			if send("") != nil {
				return
			}
		}
	}
}

// actionError is an action's failure, with its HTTP status.
type actionError struct {
	status int
	msg    string
}

func (e *actionError) Error() string { return e.msg }

// serveAction checks an action request and runs act with its form value id.
// The checks, in order: actions enabled (403), POST (405), same origin
// (403), the CSRF token (403), an id (400).
func (d *Dashboard) serveAction(w http.ResponseWriter, r *http.Request, act func(id string) error) {
	w.Header().Set("Cache-Control", "no-store")
	if !d.opts.EnableActions {
		http.Error(w, "errandui: actions are disabled (Options.EnableActions)", http.StatusForbidden)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := d.cop.Check(r); err != nil {
		http.Error(w, "errandui: cross-origin request refused", http.StatusForbidden)
		return
	}
	tok := r.Header.Get(TokenHeader)
	if subtle.ConstantTimeCompare([]byte(tok), []byte(d.token)) != 1 {
		http.Error(w, "errandui: missing or invalid "+TokenHeader, http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "errandui: bad form", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("id")
	if id == "" {
		http.Error(w, "errandui: missing id", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if err := act(id); err != nil {
		status := http.StatusInternalServerError
		var ae *actionError
		if errors.As(err, &ae) {
			status = ae.status
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"ok": true})
}

// cancelTask cancels a task the Dashboard tracks (one it lists).
func (d *Dashboard) cancelTask(id string) error {
	d.mu.Lock()
	ti, ok := d.tr.lookup(id)
	d.mu.Unlock()
	if !ok {
		return &actionError{http.StatusNotFound, "no such task waiting or running"}
	}
	if !ti.Cancel() {
		return &actionError{http.StatusConflict, "the task has finished or is being canceled"}
	}
	return nil
}

// stopSchedule stops the attached queue's schedule with the id.
func (d *Dashboard) stopSchedule(id string) error {
	if q := d.q.Load(); q != nil {
		for _, r := range q.Recurring() {
			if r.ID() == id {
				r.Stop()
				return nil
			}
		}
	}
	return &actionError{http.StatusNotFound, "no such schedule"}
}
