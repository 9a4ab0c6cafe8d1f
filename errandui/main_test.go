package errandui

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/errandgo/errand"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// harness is a Dashboard observing a real queue. Every event the Dashboard
// observes pokes tick, so a test waits for the Dashboard to catch up with
// the queue without sleeping.
type harness struct {
	d    *Dashboard
	q    *errand.Queue
	tick chan struct{}
	// release unblocks the tasks made by blocker.
	release   chan struct{}
	closeOnce sync.Once
}

// newHarness makes a Dashboard with opts and a queue with cfg whose
// OnEvent calls the Dashboard's Observe and then cfg.OnEvent, if any, as
// a user composes consumers. The queue is closed at cleanup.
func newHarness(t testing.TB, opts Options, cfg errand.Config) *harness {
	t.Helper()
	return newFilteredHarness(t, opts, cfg, nil)
}

// newFilteredHarness is newHarness whose Dashboard observes only the events
// that keep, if not nil, accepts.
func newFilteredHarness(t testing.TB, opts Options, cfg errand.Config, keep func(errand.Event) bool) *harness {
	t.Helper()
	h := &harness{d: New(opts), tick: make(chan struct{}, 1), release: make(chan struct{})}
	next := cfg.OnEvent
	cfg.OnEvent = func(e errand.Event) {
		if keep == nil || keep(e) {
			h.d.Observe(e)
		}
		if next != nil {
			next(e)
		}
		select {
		case h.tick <- struct{}{}:
		default:
		}
	}
	q, err := errand.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.q = q
	h.d.Attach(q)
	t.Cleanup(func() {
		h.unblock()
		q.Close()
	})
	return h
}

// unblock lets every blocker task return.
func (h *harness) unblock() { h.closeOnce.Do(func() { close(h.release) }) }

// blocker is a task that runs until unblock or until its context ends.
func (h *harness) blocker(ctx context.Context) (int, error) {
	select {
	case <-h.release:
		return 1, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// waitState returns the Dashboard's state once cond holds for it, waiting
// for events as long as it does not; it fails the test after 20s.
func (h *harness) waitState(t testing.TB, what string, cond func(s *state) bool) *state {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		s := h.d.snapshot(time.Now())
		if cond(s) {
			return s
		}
		select {
		case <-h.tick:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; state: %+v", what, s)
		}
	}
}

func submit[T any](t testing.TB, q *errand.Queue, fn func(context.Context) (T, error), opts ...errand.Option) *errand.Future[T] {
	t.Helper()
	f, err := errand.Submit(context.Background(), q, fn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// await returns the future's error, failing the test if it does not resolve
// within 20s.
func await[T any](t testing.TB, f *errand.Future[T]) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := f.Await(ctx)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		t.Fatalf("future %s did not resolve", f.ID())
	}
	return err
}

func names(l taskList) []string {
	out := make([]string, len(l.Tasks))
	for i, tv := range l.Tasks {
		out[i] = tv.Name
	}
	return out
}
