// Command httpserver is a small HTTP server that uses an errand queue the way
// most programs do: one handler spawns work and forgets it, another submits
// work and awaits its typed result, and shutdown drains the queue.
//
//	go run ./examples/httpserver            # or -addr 127.0.0.1:9090, or ADDR=...
//	curl -i -X POST 'http://127.0.0.1:8080/signup?email=ann@example.com'
//	curl 'http://127.0.0.1:8080/report?n=100000'
//	curl http://127.0.0.1:8080/stats
//	open http://127.0.0.1:8080/debug/errand/   # the live dashboard (errandui)
//	curl http://127.0.0.1:8080/metrics         # Prometheus metrics (errandprom)
//
// Press Ctrl-C: the server stops taking requests, the queue runs the tasks it
// has accepted (the welcome emails) for up to 10s, and the program exits.
package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandprom"
	"github.com/errandgo/errand/errandui"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("addr", cmp.Or(os.Getenv("ADDR"), "127.0.0.1:8080"), "address to listen on (env ADDR)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // a second Ctrl-C kills the process at once
	if err := run(ctx, *addr, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "httpserver:", err)
		os.Exit(1)
	}
}

// run serves on addr until ctx ends, then shuts down in order: HTTP first, so
// that no new task arrives, then the queue, so that accepted tasks finish.
func run(ctx context.Context, addr string, stdout, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	// The dashboard and the Prometheus collector both feed on the queue's
	// events; OnEvent hands each event to both.
	dash := errandui.New(errandui.Options{Title: "errand example", EnableActions: true})
	metrics := errandprom.New(errandprom.Options{})
	q, err := errand.New(errand.Config{
		Workers:  8,
		Capacity: 1000,          // at most 1000 tasks wait for a worker;
		OnFull:   errand.Reject, // beyond that Go and Submit fail at once with ErrQueueFull (503).
		Logger:   log,           // failed tasks (their error or panic) and retries are logged here.
		OnEvent:  func(e errand.Event) { dash.Observe(e); metrics.Observe(e) },
	})
	if err != nil {
		return err
	}
	defer q.Close() // on an early return: cancel and wait for the tasks
	dash.Attach(q)
	metrics.Watch(q)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := newServer(q, log)
	s.dashboard, s.metrics = dash, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv := &http.Server{Handler: newMux(s), ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(dash.Close) // ends the dashboard's open event streams
	fmt.Fprintf(stdout, "listening on http://%s (dashboard: /debug/errand/, metrics: /metrics)\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}

	log.Info("shutting down")
	hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	httpErr := srv.Shutdown(hctx) // waits for in-flight requests, e.g. a /report awaiting its task
	// Shutdown stops intake, runs the queued tasks and waits for the running
	// ones. An in-memory queue keeps nothing: a task waiting to retry is
	// dropped (ErrClosed). After 10s it cancels the running tasks' contexts,
	// drops the rest and returns ctx.Err(); Close then waits for them to return.
	qctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	queueErr := q.Shutdown(qctx)
	q.Close()
	log.Info("stopped", "stats", q.Stats())
	return errors.Join(httpErr, queueErr)
}

// server holds what the handlers share.
type server struct {
	q             *errand.Queue
	log           *slog.Logger
	emailDelay    time.Duration                                    // how long sending an email takes
	reportTimeout time.Duration                                    // per-attempt timeout of a report
	compute       func(ctx context.Context, n int) (report, error) // the work behind GET /report
	dashboard     http.Handler                                     // errandui, at /debug/errand/ (nil: not mounted)
	metrics       http.Handler                                     // Prometheus, at /metrics (nil: not mounted)
}

func newServer(q *errand.Queue, log *slog.Logger) *server {
	return &server{q: q, log: log, emailDelay: 2 * time.Second, reportTimeout: 5 * time.Second, compute: countPrimes}
}

// newMux mounts every route; it is the one place to add more.
func newMux(s *server) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /signup", s.signup)
	mux.HandleFunc("GET /report", s.report)
	mux.HandleFunc("GET /stats", s.stats)
	if s.dashboard != nil {
		// A real server would put this behind its admin authentication.
		mux.Handle("/debug/errand/", s.dashboard)
	}
	if s.metrics != nil {
		mux.Handle("GET /metrics", s.metrics)
	}
	return mux
}

type requestIDKey struct{}

// signup spawns the welcome email and answers 202 at once.
func (s *server) signup(w http.ResponseWriter, r *http.Request) {
	email := r.FormValue("email")
	if _, err := mail.ParseAddress(email); err != nil {
		http.Error(w, "invalid email", http.StatusBadRequest)
		return
	}
	id := cmp.Or(r.Header.Get("X-Request-Id"), rand.Text()[:8])
	// The task's context carries this context's values (the request id) but
	// not its cancellation: the email goes out after the response is written
	// and the request's context is canceled.
	ctx := context.WithValue(r.Context(), requestIDKey{}, id)
	err := s.q.Go(ctx, func(ctx context.Context) error { return s.sendWelcome(ctx, email) },
		errand.WithName("email.welcome"), // names the task in errand's logs and events
		// A failed send is retried after ~0.5s, 1s, 2s, 4s; the wait holds no worker.
		errand.WithRetry(errand.RetryPolicy{MaxAttempts: 5, Backoff: errand.Exponential{Initial: 500 * time.Millisecond, Jitter: 0.2}}))
	if err != nil {
		s.queueError(w, err)
		return
	}
	w.Header().Set("X-Request-Id", id)
	w.WriteHeader(http.StatusAccepted)
}

// sendWelcome stands in for a slow SMTP call.
func (s *server) sendWelcome(ctx context.Context, email string) error {
	id, _ := ctx.Value(requestIDKey{}).(string)
	select {
	case <-time.After(s.emailDelay):
		s.log.Info("welcome email sent", "to", email, "request_id", id)
		return nil
	case <-ctx.Done(): // the queue is closing; the request's end never gets here
		s.log.Warn("welcome email aborted", "to", email, "request_id", id, "error", ctx.Err())
		return ctx.Err()
	}
}

// report is the typed result of GET /report.
type report struct {
	N       int `json:"n"`
	Primes  int `json:"primes"`  // how many primes are <= N
	Largest int `json:"largest"` // the largest of them, 0 if none
}

// report runs a computation on the queue and waits for its result.
func (s *server) report(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n < 0 || n > 100_000_000 {
		http.Error(w, "n must be an integer in [0, 1e8]", http.StatusBadRequest)
		return
	}
	// WithTimeout bounds each attempt of the task; WithKey makes concurrent
	// requests for the same n share one computation (singleflight).
	f, err := errand.Submit(r.Context(), s.q, func(ctx context.Context) (report, error) { return s.compute(ctx, n) },
		errand.WithName("report"), errand.WithKey("report:"+strconv.Itoa(n)), errand.WithTimeout(s.reportTimeout))
	if err != nil {
		s.queueError(w, err)
		return
	}
	// The request's context bounds only the wait: if the client goes away,
	// Await returns and the task goes on (its result is shared by the key).
	rep, err := f.Await(r.Context())
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(rep)
	case r.Context().Err() != nil:
		s.log.Info("report: client went away", "n", n, "task", f.ID())
	case errors.Is(err, context.DeadlineExceeded): // the task's WithTimeout expired
		http.Error(w, "report timed out", http.StatusGatewayTimeout)
	default: // the task failed or panicked (*errand.PanicError), or the queue closed
		s.queueError(w, err)
	}
}

// queueError answers for an error from Go, Submit or Await.
func (s *server) queueError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, errand.ErrQueueFull): // Capacity tasks are waiting (OnFull: Reject)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy, try again later", http.StatusServiceUnavailable)
	case errors.Is(err, errand.ErrClosed): // shutting down
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	default:
		s.log.Error("task failed", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// stats reports the queue's counters.
func (s *server) stats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(s.q.Stats())
}

// countPrimes counts the primes <= n by trial division: slow on purpose. It
// checks ctx now and then, so that the task's timeout stops it.
func countPrimes(ctx context.Context, n int) (report, error) {
	rep := report{N: n}
	for i := 2; i <= n; i++ {
		if i%4096 == 0 && ctx.Err() != nil {
			return report{}, ctx.Err()
		}
		if isPrime(i) {
			rep.Primes, rep.Largest = rep.Primes+1, i
		}
	}
	return rep, nil
}

func isPrime(n int) bool {
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return n >= 2
}
