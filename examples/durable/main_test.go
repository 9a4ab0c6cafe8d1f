package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRun runs the example against the test database (TEST_DATABASE_URL,
// else the local default) in a schema of its own. Without a database it
// is skipped, except under CI=true, where that fails.
func TestRun(t *testing.T) {
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgxpool.New(ctx, url)
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no PostgreSQL at %s: %v", url, err)
		}
		t.Skipf("no PostgreSQL at %s: %v", url, err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "errand_example_" + hex.EncodeToString(b[:])
	defer admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")

	var out bytes.Buffer
	if err := run(ctx, &out, url, schema, 5); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	want := []string{"img-000.png: 409 bytes (attempt 1)", "img-004.png: 462 bytes (attempt 1)", "stored: task "}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if !strings.Contains(out.String(), "is succeeded after 1 attempt(s)") {
		t.Errorf("the stored record is not a success:\n%s", out.String())
	}
}
