package errandui

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandtest"
)

// getTask looks up id through d's api/task and returns the status and the
// body, checking the headers every answer carries.
func getTask(t *testing.T, d *Dashboard, id string) (int, string) {
	t.Helper()
	resp, body := do(t, d, "GET", "/debug/errand/api/task?id="+url.QueryEscape(id), nil, nil)
	for k, v := range map[string]string{
		"Content-Type":            "application/json",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": contentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("lookup of %q: %s = %q, want %q", id, k, got, v)
		}
	}
	if !json.Valid([]byte(body)) {
		t.Errorf("lookup of %q: the body is not JSON: %s", id, body)
	}
	return resp.StatusCode, body
}

// lookupOK looks up id, expecting 200, and returns the record both decoded
// and as a map of its JSON fields (to see which are present).
func lookupOK(t *testing.T, d *Dashboard, id string) (taskRecord, map[string]any) {
	t.Helper()
	status, body := getTask(t, d, id)
	if status != http.StatusOK {
		t.Fatalf("lookup of %s: %d %s, want 200", id, status, body)
	}
	var rec taskRecord
	var fields map[string]any
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(body), &fields); err != nil {
		t.Fatal(err)
	}
	return rec, fields
}

// hasFields fails the test unless the JSON object has exactly the keys
// want.
func hasFields(t *testing.T, fields map[string]any, want ...string) {
	t.Helper()
	var got []string
	for k := range fields {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("fields = %v, want %v", got, want)
	}
}

// startedKind returns a function for a kind that closes ch when its first
// task starts, and runs each task until release or its context ends.
func startedKind(ch chan<- struct{}, release <-chan struct{}) func(context.Context, mail) (string, error) {
	var once sync.Once
	return func(ctx context.Context, m mail) (string, error) {
		once.Do(func() { close(ch) })
		select {
		case <-release:
			return "sent to " + m.To, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

type mail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestTaskLookupRefused(t *testing.T) {
	unattached := New(Options{})
	if status, body := getTask(t, unattached, "0f8fad5b-d9cb-469f-a165-70867728950e"); status != http.StatusServiceUnavailable || !strings.Contains(body, "no queue is attached") {
		t.Errorf("no queue: %d %s, want 503", status, body)
	}

	h := newHarness(t, Options{}, errand.Config{Workers: 1})
	for _, tt := range []struct {
		name, id string
		status   int
	}{
		{"missing id", "", 400},
		{"id too long", strings.Repeat("a", maxIDLen+1), 400},
		{"control character", "abc\x00def", 400},
		{"newline", "abc\ndef", 400},
		{"invalid UTF-8", "abc\xffdef", 400},
		{"unknown uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", 404},
		{"unknown, longest", strings.Repeat("a", maxIDLen), 404},
		{"unknown, HTML", `<img src=x onerror=alert(1)>`, 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := getTask(t, h.d, tt.id)
			if status != tt.status {
				t.Fatalf("%d %s, want %d", status, body, tt.status)
			}
			var e lookupError
			if err := json.Unmarshal([]byte(body), &e); err != nil || !strings.HasPrefix(e.Error, "errandui: ") {
				t.Fatalf("error body %s (%v)", body, err)
			}
			if strings.Contains(body, "<img") {
				t.Fatalf("the body echoes raw HTML: %s", body)
			}
		})
	}
	// No id parameter at all, and methods other than GET and HEAD.
	if resp, body := do(t, h.d, "GET", "/api/task", nil, nil); resp.StatusCode != 400 {
		t.Errorf("no query: %d %s, want 400", resp.StatusCode, body)
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if resp, body := do(t, h.d, m, "/api/task?id=x", nil, nil); resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: %d (Allow %q) %s, want 405", m, resp.StatusCode, resp.Header.Get("Allow"), body)
		}
	}
}

// TestTaskLookupMemory looks up live tasks of a named kind on a queue with
// no Store, through a read-only Dashboard (the lookup needs no actions).
func TestTaskLookupMemory(t *testing.T) {
	h := newHarness(t, Options{}, errand.Config{Workers: 1, Retry: errand.RetryPolicy{MaxAttempts: 3, Backoff: errand.Constant(time.Hour)}})
	started := make(chan struct{})
	send := errand.Define("mail.send", startedKind(started, h.release))
	run, err := send.Enqueue(context.Background(), h.q, mail{To: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	wait(t, started, "the first task to start")
	queued, err := send.Enqueue(context.Background(), h.q, mail{To: "b@example.com"}, errand.WithPriority(7), errand.WithKey("mail-b"))
	if err != nil {
		t.Fatal(err)
	}

	rec, fields := lookupOK(t, h.d, run.ID())
	want := taskRecord{ID: run.ID(), Kind: "mail.send", Status: "running", Attempts: 1, MaxAttempts: 3}
	if rec != want {
		t.Errorf("running task = %+v, want %+v", rec, want)
	}
	hasFields(t, fields, "id", "kind", "status", "priority", "attempts", "max_attempts")

	rec, fields = lookupOK(t, h.d, queued.ID())
	want = taskRecord{ID: queued.ID(), Kind: "mail.send", Status: "queued", Priority: 7, MaxAttempts: 3, Key: "mail-b"}
	if rec != want {
		t.Errorf("queued task = %+v, want %+v", rec, want)
	}
	hasFields(t, fields, "id", "kind", "status", "priority", "attempts", "max_attempts", "key")

	// HEAD: the same answer, no body.
	if resp, body := do(t, h.d, "HEAD", "/api/task?id="+run.ID(), nil, nil); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d, %d bytes", resp.StatusCode, len(body))
	}

	// A closure's task is not a named kind's: the queue does not index it.
	closure := submit(t, h.q, h.blocker, errand.WithName("closure"))
	if status, body := getTask(t, h.d, closure.ID()); status != 404 {
		t.Errorf("closure's task: %d %s, want 404", status, body)
	}

	h.unblock()
	if err := await(t, run); err != nil {
		t.Fatal(err)
	}
	if err := await(t, queued); err != nil {
		t.Fatal(err)
	}
	// Without a Store a finished task is forgotten.
	if status, body := getTask(t, h.d, run.ID()); status != 404 || !strings.Contains(body, "no such task") {
		t.Errorf("finished task: %d %s, want 404", status, body)
	}
}

// rawCodec passes []byte through, so that a test can store bytes that are
// not JSON.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, errors.New("rawCodec: not []byte")
	}
	return b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return errors.New("rawCodec: not *[]byte")
	}
	*p = bytes.Clone(data)
	return nil
}

// TestTaskLookupStored looks up tasks kept in a Store: finished ones too,
// with their arguments, results, errors and times.
func TestTaskLookupStored(t *testing.T) {
	store := errandtest.NewMemStore()
	h := newHarness(t, Options{Title: "stored"}, errand.Config{Workers: 1, Store: store})
	ctx := context.Background()
	before := time.Now()

	started := make(chan struct{})
	send := errand.Define("mail.send", startedKind(started, h.release))
	m := mail{To: `<b>x</b>@example.com`, Subject: "héllo \"world\""}
	f, err := send.Enqueue(ctx, h.q, m, errand.WithKey("k-1"))
	if err != nil {
		t.Fatal(err)
	}
	wait(t, started, "the stored task to start")
	rec, fields := lookupOK(t, h.d, f.ID())
	if rec.Status != "running" || rec.Holder == "" || rec.Attempts != 1 || rec.Started == "" || rec.Finished != "" || rec.Result != nil {
		t.Errorf("running stored task = %+v", rec)
	}
	hasFields(t, fields, "id", "kind", "status", "priority", "attempts", "max_attempts", "key", "holder",
		"run_at", "created", "started", "args")

	h.unblock()
	if err := await(t, f); err != nil {
		t.Fatal(err)
	}
	rec, fields = lookupOK(t, h.d, f.ID())
	hasFields(t, fields, "id", "kind", "status", "priority", "attempts", "max_attempts", "key",
		"run_at", "created", "started", "finished", "args", "result")
	if rec.ID != f.ID() || rec.Kind != "mail.send" || rec.Status != "succeeded" || rec.Attempts != 1 ||
		rec.MaxAttempts != 1 || rec.Key != "k-1" || rec.Holder != "" || rec.Error != "" {
		t.Errorf("succeeded stored task = %+v", rec)
	}
	var times []time.Time
	for _, s := range []string{rec.Created, rec.RunAt, rec.Started, rec.Finished} {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("time %q: %v", s, err)
		}
		times = append(times, tm)
	}
	if times[0].Before(before.Add(-time.Second)) || times[3].Before(times[2]) || times[2].Before(times[0]) || times[3].After(time.Now()) {
		t.Errorf("created, run at, started, finished = %v", times)
	}
	wantArgs, _ := json.MarshalIndent(m, "", "  ")
	if *rec.Args != (payload{Data: string(wantArgs), Size: len(mustJSON(t, m))}) {
		t.Errorf("args = %+v, want the indented JSON %s", rec.Args, wantArgs)
	}
	if *rec.Result != (payload{Data: `"sent to \u003cb\u003ex\u003c/b\u003e@example.com"`, Size: len(mustJSON(t, "sent to "+m.To))}) {
		t.Errorf("result = %+v", rec.Result)
	}

	// A failure keeps its error.
	fail := errand.Define("mail.bounce", func(context.Context, mail) (int, error) {
		return 0, errors.New(`550 <script>alert(1)</script> no such user`)
	})
	ff, err := fail.Enqueue(ctx, h.q, mail{To: "c@example.com"}, errand.WithPriority(-2))
	if err != nil {
		t.Fatal(err)
	}
	if err := await(t, ff); err == nil {
		t.Fatal("the failing task succeeded")
	}
	status, body := getTask(t, h.d, ff.ID())
	if status != 200 || strings.Contains(body, "<script>") {
		t.Fatalf("failed stored task: %d %s", status, body)
	}
	rec, fields = lookupOK(t, h.d, ff.ID())
	if rec.Status != "failed" || rec.Priority != -2 || rec.Result != nil || !strings.Contains(rec.Error, "550 <script>alert(1)</script> no such user") {
		t.Errorf("failed stored task = %+v", rec)
	}
	if _, ok := fields["result"]; ok {
		t.Error("a failed task has a result field")
	}

	// Bytes that are not JSON are shown as base64.
	raw := errand.Define("blob.echo", func(_ context.Context, b []byte) ([]byte, error) {
		return append([]byte{0xff, 0xfe}, b...), nil
	}).WithCodec(rawCodec{})
	rf, err := raw.Enqueue(ctx, h.q, []byte{0, 1, 2, 'x'})
	if err != nil {
		t.Fatal(err)
	}
	if err := await(t, rf); err != nil {
		t.Fatal(err)
	}
	rec, _ = lookupOK(t, h.d, rf.ID())
	if *rec.Args != (payload{Data: base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 'x'}), Base64: true, Size: 4}) {
		t.Errorf("binary args = %+v", rec.Args)
	}
	if *rec.Result != (payload{Data: base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe, 0, 1, 2, 'x'}), Base64: true, Size: 6}) {
		t.Errorf("binary result = %+v", rec.Result)
	}

	// A huge result is cut to maxPayload.
	huge := strings.Repeat("é", 300<<10) // 600 KiB of JSON text
	big := errand.Define("report.build", func(context.Context, int) (string, error) { return huge, nil })
	bf, err := big.Enqueue(ctx, h.q, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := await(t, bf); err != nil {
		t.Fatal(err)
	}
	status, body = getTask(t, h.d, bf.ID())
	if status != 200 || len(body) > maxPayload+4<<10 {
		t.Fatalf("huge result: %d, %d bytes", status, len(body))
	}
	rec, _ = lookupOK(t, h.d, bf.ID())
	if r := rec.Result; !r.Truncated || r.Base64 || r.Size != len(huge)+2 || len(r.Data) > maxPayload ||
		len(r.Data) < maxPayload-4 || !utf8.ValidString(r.Data) || !strings.HasPrefix(r.Data, `"éé`) {
		t.Errorf("huge result: truncated %v base64 %v size %d, %d bytes shown", r.Truncated, r.Base64, r.Size, len(r.Data))
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// failingStore is a MemStore whose Lookup of the id "broken" fails with an
// error naming a secret, and of the id "slow" waits for its context to end,
// recording whether it had a deadline.
type failingStore struct {
	*errandtest.MemStore
	deadline chan time.Duration // how long the slow lookup was given; -1 for no deadline
}

func (s *failingStore) Lookup(ctx context.Context, ids []string) ([]errand.TaskRecord, error) {
	switch {
	case slices.Contains(ids, "broken"):
		return nil, errors.New("dial tcp db.internal:5432: password=hunter2 refused")
	case slices.Contains(ids, "slow"):
		d := time.Duration(-1)
		if dl, ok := ctx.Deadline(); ok {
			d = time.Until(dl)
		}
		s.deadline <- d
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.MemStore.Lookup(ctx, ids)
}

func TestTaskLookupStoreFailure(t *testing.T) {
	store := &failingStore{MemStore: errandtest.NewMemStore(), deadline: make(chan time.Duration, 1)}
	h := newHarness(t, Options{}, errand.Config{Workers: 1, Store: store})

	status, body := getTask(t, h.d, "broken")
	if status != http.StatusInternalServerError || strings.Contains(body, "hunter2") || strings.Contains(body, "db.internal") {
		t.Fatalf("failing store: %d %s, want 500 with a generic message", status, body)
	}

	// The lookup is bounded by lookupTimeout.
	if got := h.d.lookupTimeout; got != 5*time.Second {
		t.Fatalf("lookupTimeout = %v, want 5s", got)
	}
	h.d.lookupTimeout = 50 * time.Millisecond
	status, body = getTask(t, h.d, "slow")
	if status != http.StatusInternalServerError {
		t.Fatalf("slow store: %d %s, want 500", status, body)
	}
	if d := <-store.deadline; d < 0 || d > 50*time.Millisecond {
		t.Fatalf("the lookup was given %v, want at most 50ms", d)
	}

	// ... and by the request: a client that goes ends the lookup.
	h.d.lookupTimeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, "GET", "/api/task?id=slow", nil)
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.d.ServeHTTP(w, r)
	}()
	if d := <-store.deadline; d < 0 || d > time.Hour {
		t.Fatalf("the lookup was given %v, want at most an hour", d)
	}
	cancel()
	wait(t, done, "the lookup to end with its request")
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("canceled request: %d", w.Code)
	}
}

func TestNewPayload(t *testing.T) {
	if p := newPayload(nil); p != nil {
		t.Errorf("no bytes: %+v, want nil", p)
	}
	for _, tt := range []struct {
		name string
		in   []byte
		want payload
	}{
		{"number", []byte("42"), payload{Data: "42", Size: 2}},
		{"null", []byte("null"), payload{Data: "null", Size: 4}},
		{"object indented", []byte(`{"a":[1,2]}`), payload{Data: "{\n  \"a\": [\n    1,\n    2\n  ]\n}", Size: 11}},
		{"big number kept", []byte(`12345678901234567890123`), payload{Data: "12345678901234567890123", Size: 23}},
		{"not JSON", []byte("hello"), payload{Data: "aGVsbG8=", Base64: true, Size: 5}},
		{"JSON with invalid UTF-8", []byte("\"a\xffb\""), payload{Data: "ImH/YiI=", Base64: true, Size: 5}},
		{"gob-like", []byte{0x03, 0x04, 0x00, 0xff}, payload{Data: "AwQA/w==", Base64: true, Size: 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := newPayload(tt.in); *got != tt.want {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}

	// A long JSON text is cut at a character boundary.
	s := `"` + strings.Repeat("€", maxPayload) + `"`
	p := newPayload([]byte(s))
	if !p.Truncated || p.Base64 || p.Size != len(s) || len(p.Data) > maxPayload || len(p.Data) < maxPayload-3 || !utf8.ValidString(p.Data) {
		t.Errorf("long text: truncated %v size %d, %d bytes shown, valid %v", p.Truncated, p.Size, len(p.Data), utf8.ValidString(p.Data))
	}
	// JSON that indenting would push past the cap is shown as it is, whole.
	compact := []byte("[" + strings.Repeat("1,", maxPayload/2-2) + "1]")
	if p := newPayload(compact); p.Truncated || p.Data != string(compact) {
		t.Errorf("compact JSON near the cap: truncated %v, %d bytes shown of %d", p.Truncated, len(p.Data), len(compact))
	}
	// Long binary is cut to maxPayload of base64.
	bin := bytes.Repeat([]byte{0xff}, 1<<20)
	p = newPayload(bin)
	if !p.Truncated || !p.Base64 || p.Size != 1<<20 || len(p.Data) != maxPayload {
		t.Errorf("long binary: truncated %v size %d, %d bytes shown", p.Truncated, p.Size, len(p.Data))
	}
	if b, err := base64.StdEncoding.DecodeString(p.Data); err != nil || !bytes.Equal(b, bin[:len(b)]) {
		t.Errorf("long binary's base64 does not decode to its start: %v", err)
	}
}
