package errandui

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/errandgo/errand"
)

// Options configures a Dashboard. The zero value is valid: a read-only page
// titled "errand", 100 tasks per list, five minutes of throughput.
type Options struct {
	// Title is the page's heading and window title. Defaults to "errand".
	Title string

	// EnableActions shows the buttons that cancel a task and stop a
	// schedule, and accepts their requests. Defaults to false: read-only.
	EnableActions bool

	// MaxTasks bounds each list the page shows: queued, running, scheduled,
	// recently failed, and the schedules. Defaults to 100; at most 10,000.
	MaxTasks int

	// History is how far back the throughput chart reaches, at one-second
	// resolution. Defaults to 5 minutes; at least 10 seconds, at most an
	// hour.
	History time.Duration
}

const (
	defaultTitle    = "errand"
	defaultMaxTasks = 100
	maxMaxTasks     = 10000
	defaultHistory  = 5 * time.Minute
	minHistory      = 10 * time.Second
	maxHistory      = time.Hour
)

// Dashboard is a live view of one errand Queue, served as an http.Handler.
// Make it with New, pass its Observe method to Config.OnEvent, and Attach
// the queue. Its methods are safe for concurrent use.
type Dashboard struct {
	opts   Options
	token  string // the CSRF token of the actions; empty when they are off
	page   []byte // index.html, rendered once
	cop    *http.CrossOriginProtection
	q      atomic.Pointer[errand.Queue]
	closed chan struct{}
	close  sync.Once

	// lookupTimeout bounds a task lookup (GET api/task): lookupTimeout,
	// shorter in tests.
	lookupTimeout time.Duration

	// version counts the events observed; the event stream sends a new
	// state when it has moved.
	version atomic.Uint64

	mu sync.Mutex
	tr tracker
}

// New returns a Dashboard configured by opts. It starts no goroutine.
// Attach a queue to it before, or after, mounting it: until then the page
// shows a queue with no activity.
func New(opts Options) *Dashboard {
	if opts.Title == "" {
		opts.Title = defaultTitle
	}
	if opts.MaxTasks <= 0 {
		opts.MaxTasks = defaultMaxTasks
	}
	opts.MaxTasks = min(opts.MaxTasks, maxMaxTasks)
	if opts.History <= 0 {
		opts.History = defaultHistory
	}
	opts.History = min(max(opts.History, minHistory), maxHistory)

	d := &Dashboard{
		opts:          opts,
		cop:           http.NewCrossOriginProtection(),
		closed:        make(chan struct{}),
		lookupTimeout: lookupTimeout,
	}
	if opts.EnableActions {
		d.token = newToken()
	}
	d.tr.init(opts.MaxTasks, int(opts.History/time.Second))
	d.page = renderPage(opts.Title, d.token, opts.EnableActions)
	return d
}

// Attach makes q the queue the Dashboard shows: its Stats, its schedules,
// and the target of the actions. Call it once, after errand.New; the
// Dashboard's Observe must be (part of) q's Config.OnEvent.
func (d *Dashboard) Attach(q *errand.Queue) { d.q.Store(q) }

// Observe records one event of the queue. Call it from Config.OnEvent, on
// its own or among other consumers. It is O(1), takes a short lock, and
// allocates nothing once the lists have filled.
func (d *Dashboard) Observe(e errand.Event) {
	d.mu.Lock()
	d.tr.observe(&e)
	d.mu.Unlock()
	d.version.Add(1)
}

// Close ends the event streams the Dashboard is serving and makes new ones
// end at once (telling browsers not to reconnect), so that an
// http.Server's Shutdown need not wait for open pages:
// srv.RegisterOnShutdown(dash.Close). The page and the state stay
// available. Close is idempotent.
func (d *Dashboard) Close() { d.close.Do(func() { close(d.closed) }) }

// newToken returns 32 random bytes, base64url-encoded.
func newToken() string {
	var b [32]byte
	rand.Read(b[:]) // never returns an error; it crashes the program if the system's randomness fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var pageTemplate = template.Must(template.ParseFS(static, "static/index.html"))

func renderPage(title, token string, actions bool) []byte {
	var buf bytes.Buffer
	err := pageTemplate.Execute(&buf, struct {
		Title, Token string
		Actions      bool
	}{title, token, actions})
	if err != nil {
		panic("errandui: index.html: " + err.Error()) // the template is embedded: a test catches this
	}
	return buf.Bytes()
}
