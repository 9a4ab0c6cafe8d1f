package errand

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"
)

// TestLoggingLevelsAndAttributes: at Debug every attempt is logged with its
// task id, name, attempt, duration and error; a retry is a Warn, a failed Go
// task an Error, Shutdown an Info; each line carries the structured fields.
func TestLoggingLevelsAndAttributes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf logBuffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		q, err := New(Config{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		err = q.Go(context.Background(), func(context.Context) error {
			time.Sleep(time.Second)
			return boom
		}, WithName("email"), WithRetry(RetryPolicy{MaxAttempts: 2, Backoff: Constant(time.Minute)}))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Minute)
		if err := q.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		type line struct{ level, msg string }
		var got []line
		var id string
		for _, r := range buf.records(t) {
			got = append(got, line{r["level"].(string), r["msg"].(string)})
			if r["msg"] == "errand: attempt returned" {
				if r["name"] != "email" || r["error"] != "boom" || r["duration"] == nil {
					t.Errorf("attempt record %v: want name, error and duration", r)
				}
				if id == "" {
					id = r["task"].(string)
				} else if r["task"] != id {
					t.Errorf("attempt record %v: task id changed from %s", r, id)
				}
			}
			if r["msg"] == "errand: task failed" && (r["task"] != id || r["attempts"] != float64(2) || r["error"] != "boom") {
				t.Errorf("failure record %v: want task %s, attempts 2, error boom", r, id)
			}
		}
		want := []line{
			{"DEBUG", "errand: attempt returned"},
			{"WARN", "errand: attempt failed, retrying"},
			{"DEBUG", "errand: attempt returned"},
			{"ERROR", "errand: task failed"},
			{"INFO", "errand: shutting down"},
			{"INFO", "errand: shut down"},
		}
		if len(got) != len(want) {
			t.Fatalf("log lines %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("log lines %v, want %v", got, want)
			}
		}
	})
}

// TestLoggingInfoLevelKeepsFastPath: a logger at Info does not log attempts,
// and plain Go tasks keep their allocation-free path.
func TestLoggingInfoLevelKeepsFastPath(t *testing.T) {
	var buf logBuffer
	q := newQueue(t, Config{Logger: slog.New(slog.NewJSONHandler(&buf, nil))})
	if q.debug || !q.plainFast {
		t.Fatalf("debug=%v plainFast=%v at Info, want false, true", q.debug, q.plainFast)
	}
	done := make(chan struct{})
	if err := q.Go(context.Background(), func(context.Context) error { close(done); return nil }); err != nil {
		t.Fatal(err)
	}
	<-done
	q.Close()
	for _, r := range buf.records(t) {
		if r["level"] == "DEBUG" {
			t.Fatalf("debug record at Info level: %v", r)
		}
	}
}
