package errandui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/errandgo/errand"
)

// streamServer serves d; returned receives once per event-stream request
// when its handler has returned.
func streamServer(t *testing.T, d *Dashboard) (srv *httptest.Server, returned chan struct{}) {
	t.Helper()
	returned = make(chan struct{}, 10)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.ServeHTTP(w, r)
		if strings.HasSuffix(r.URL.Path, "/events") {
			returned <- struct{}{}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, returned
}

// openStream starts a GET of the event stream that ends with ctx.
func openStream(t *testing.T, ctx context.Context, srv *httptest.Server, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// message is one server-sent event.
type message struct {
	retry string
	data  string
}

// readMessage reads one event from the stream.
func readMessage(t *testing.T, r *bufio.Reader) message {
	t.Helper()
	var m message
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the stream: %v (after %q)", err, line)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if m.data == "" {
				t.Fatalf("an event with no data: %+v", m)
			}
			return m
		case strings.HasPrefix(line, "retry: "):
			m.retry = strings.TrimPrefix(line, "retry: ")
		case strings.HasPrefix(line, "data: "):
			if m.data != "" {
				t.Fatal("an event with two data lines")
			}
			m.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
}

func decode(t *testing.T, m message) *state {
	t.Helper()
	var s state
	if err := json.Unmarshal([]byte(m.data), &s); err != nil {
		t.Fatalf("%v in %q", err, m.data)
	}
	return &s
}

func waitReturned(t *testing.T, returned chan struct{}) {
	t.Helper()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("the event-stream handler did not return")
	}
}

// TestEventStream reads the stream: a first state at once, a new one soon
// after a change, and the handler returns when the client goes.
func TestEventStream(t *testing.T) {
	h := newHarness(t, Options{Title: "live"}, errand.Config{Workers: 1})
	srv, returned := streamServer(t, h.d)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := openStream(t, ctx, srv, "/debug/errand/events")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, v := range map[string]string{
		"Content-Type":            "text/event-stream",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": contentSecurityPolicy,
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	r := bufio.NewReader(resp.Body)
	first := readMessage(t, r)
	if first.retry != "2000" {
		t.Errorf("first event's retry = %q, want 2000", first.retry)
	}
	if s := decode(t, first); s.Title != "live" || s.Stats.Submitted != 0 || !s.Attached {
		t.Fatalf("first state = %+v", s)
	}

	f := submit(t, h.q, func(context.Context) (int, error) { return 7, nil }, errand.WithName("quick"))
	if err := await(t, f); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	msgs := 1
	for {
		s := decode(t, readMessage(t, r))
		msgs++
		if s.Stats.Succeeded == 1 {
			break
		}
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("the change took %v to reach the stream", waited)
	}
	if msgs < 2 {
		t.Fatalf("%d messages", msgs)
	}

	cancel()
	waitReturned(t, returned)
}

// TestEventStreamRefreshes checks that an idle stream still sends the
// state every second (counts like Idle change without events).
func TestEventStreamRefreshes(t *testing.T) {
	d := New(Options{})
	srv, returned := streamServer(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := bufio.NewReader(openStream(t, ctx, srv, "/events").Body)
	a := decode(t, readMessage(t, r))
	b := decode(t, readMessage(t, r))
	if gap := b.Now - a.Now; gap < 900 || gap > 5000 {
		t.Errorf("an idle stream sent two states %d ms apart, want about 1000", gap)
	}
	cancel()
	waitReturned(t, returned)
}

// TestEventStreamClose checks Dashboard.Close: open streams end, new ones
// get 204 No Content (which tells an EventSource not to reconnect), and the
// rest of the dashboard still serves.
func TestEventStreamClose(t *testing.T) {
	d := New(Options{})
	srv, returned := streamServer(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp := openStream(t, ctx, srv, "/events")
	r := bufio.NewReader(resp.Body)
	readMessage(t, r)
	d.Close()
	waitReturned(t, returned)
	if rest, err := io.ReadAll(r); err != nil || len(rest) > 0 && !strings.HasPrefix(string(rest), "data: ") {
		t.Fatalf("after Close the stream gave %q, %v", rest, err)
	}
	d.Close() // idempotent

	resp2 := openStream(t, ctx, srv, "/events")
	body, err := io.ReadAll(resp2.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp2.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("stream after Close: %d %q, want 204", resp2.StatusCode, body)
	}
	waitReturned(t, returned)
	resp3, err := srv.Client().Get(srv.URL + "/api/state")
	if err != nil {
		t.Fatal(err)
	}
	resp3.Body.Close()
	if resp3.StatusCode != 200 {
		t.Fatalf("api/state after Close: %d", resp3.StatusCode)
	}
}

// TestEventStreamClientGoneMidWrite ends the client while the server keeps
// sending: the handler returns (no goroutine stays, as TestMain checks).
func TestEventStreamClientGoneMidWrite(t *testing.T) {
	h := newHarness(t, Options{}, errand.Config{Workers: 4})
	srv, returned := streamServer(t, h.d)
	ctx, cancel := context.WithCancel(context.Background())
	resp := openStream(t, ctx, srv, "/events")
	readMessage(t, bufio.NewReader(resp.Body))
	resp.Body.Close()
	cancel()
	// Activity after the client has gone makes the handler write.
	for range 50 {
		if err := h.q.Go(context.Background(), func(context.Context) error { return nil }, errand.WithName("x")); err != nil {
			t.Fatal(err)
		}
	}
	waitReturned(t, returned)
	if err := ctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
