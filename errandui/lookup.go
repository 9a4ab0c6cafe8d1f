package errandui

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/errandgo/errand"
)

// Bounds of the task lookup (GET api/task).
const (
	lookupTimeout = 5 * time.Second // a lookup slower than this answers 500
	maxIDLen      = 256             // a longer id answers 400
	maxPayload    = 64 << 10        // the most of args or result shown, in bytes of text
)

// taskRecord is what GET api/task answers: an errand.TaskRecord with JSON
// names. Times are RFC 3339, omitted when zero.
type taskRecord struct {
	ID          string   `json:"id"`
	Kind        string   `json:"kind"`
	Status      string   `json:"status"` // errand.Status's String: "queued", "succeeded" ...
	Priority    int      `json:"priority"`
	Attempts    int      `json:"attempts"`
	MaxAttempts int      `json:"max_attempts"`
	Error       string   `json:"error,omitempty"`
	Key         string   `json:"key,omitempty"`
	Schedule    string   `json:"schedule,omitempty"`
	Holder      string   `json:"holder,omitempty"`
	RunAt       string   `json:"run_at,omitempty"`
	Created     string   `json:"created,omitempty"`
	Started     string   `json:"started,omitempty"`
	Finished    string   `json:"finished,omitempty"`
	Args        *payload `json:"args,omitempty"`   // absent when the record has none
	Result      *payload `json:"result,omitempty"` // absent when the record has none
}

// payload is a task's encoded arguments or result. Data is the bytes as
// text, indented, when they are valid UTF-8 JSON (the default codec's), and
// base64 (Base64 set) otherwise. Data holds at most maxPayload bytes;
// Truncated says it was cut, and Size is the length of the stored bytes.
type payload struct {
	Data      string `json:"data"`
	Base64    bool   `json:"base64,omitempty"`
	Truncated bool   `json:"truncated,omitempty"`
	Size      int    `json:"size"`
}

// lookupError is a failed lookup's body. Its message is the Dashboard's
// own: a store's error is never passed on, as it may name hosts or carry
// data.
type lookupError struct {
	Error string `json:"error"`
}

// serveTask answers GET api/task?id=: the task's stored record, read with
// Queue.Lookup. It is read-only, so it is served whether or not actions are
// enabled. 400 for a missing or bad id, 503 with no queue attached, 404 for
// an unknown task, 500 if the lookup fails or takes longer than
// lookupTimeout.
func (d *Dashboard) serveTask(w http.ResponseWriter, r *http.Request) {
	if !allowRead(w, r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	id := r.URL.Query().Get("id")
	if msg := checkID(id); msg != "" {
		writeLookup(w, r, http.StatusBadRequest, lookupError{msg})
		return
	}
	q := d.q.Load()
	if q == nil {
		writeLookup(w, r, http.StatusServiceUnavailable, lookupError{"errandui: no queue is attached"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.lookupTimeout)
	defer cancel()
	rec, err := q.Lookup(ctx, id)
	switch {
	case errors.Is(err, errand.ErrNotFound):
		writeLookup(w, r, http.StatusNotFound, lookupError{"errandui: no such task (never stored here, finished and forgotten, or deleted by retention)"})
	case err != nil:
		writeLookup(w, r, http.StatusInternalServerError, lookupError{"errandui: the task lookup failed"})
	default:
		writeLookup(w, r, http.StatusOK, newTaskRecord(&rec))
	}
}

// checkID returns why id is not a task id to look up, or "".
func checkID(id string) string {
	switch {
	case id == "":
		return "errandui: missing id"
	case len(id) > maxIDLen:
		return "errandui: id too long"
	case !utf8.ValidString(id):
		return "errandui: id is not valid UTF-8"
	}
	for _, c := range id {
		if unicode.IsControl(c) {
			return "errandui: id has a control character"
		}
	}
	return ""
}

// writeLookup writes v as JSON with the status; no body for HEAD.
func writeLookup(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"errandui: internal error"}`)
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// newTaskRecord converts rec for the page, cutting long texts and payloads.
func newTaskRecord(rec *errand.TaskRecord) *taskRecord {
	return &taskRecord{
		ID: clip(rec.ID), Kind: clip(rec.Kind), Status: rec.Status.String(),
		Priority: rec.Priority, Attempts: rec.Attempts, MaxAttempts: rec.MaxAttempts,
		Error: clip(rec.Error), Key: clip(rec.Key), Schedule: clip(rec.Schedule), Holder: clip(rec.Holder),
		RunAt: rfc3339(rec.RunAt), Created: rfc3339(rec.Created), Started: rfc3339(rec.Started), Finished: rfc3339(rec.Finished),
		Args: newPayload(rec.Args), Result: newPayload(rec.Result),
	}
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339Nano)
}

// newPayload shows b: indented JSON text if it is valid UTF-8 JSON, else
// base64; at most maxPayload bytes of either. It is nil for no bytes. It
// costs a pass over b, and a copy of at most a few times maxPayload.
func newPayload(b []byte) *payload {
	if len(b) == 0 {
		return nil
	}
	p := &payload{Size: len(b)}
	if utf8.Valid(b) && json.Valid(b) {
		if len(b) <= maxPayload {
			var buf bytes.Buffer
			if json.Indent(&buf, b, "", "  ") == nil && buf.Len() <= maxPayload {
				b = buf.Bytes()
			}
		}
		if len(b) > maxPayload {
			cut := maxPayload
			for cut > 0 && !utf8.RuneStart(b[cut]) {
				cut--
			}
			b, p.Truncated = b[:cut], true
		}
		p.Data = string(b)
		return p
	}
	const raw = maxPayload / 4 * 3 // bytes whose base64 is maxPayload long
	if len(b) > raw {
		b, p.Truncated = b[:raw], true
	}
	p.Data, p.Base64 = base64.StdEncoding.EncodeToString(b), true
	return p
}
