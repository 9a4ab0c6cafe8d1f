package errandpg

// The test harness: finds a PostgreSQL and gives each test a schema of its
// own.
//
// Where the database comes from, in order:
//  1. TEST_DATABASE_URL, if set (it must work);
//  2. the local default postgres://postgres@127.0.0.1:5432/test?sslmode=disable;
//  3. a throwaway cluster made with initdb and pg_ctl in a temporary
//     directory, if the binaries are on PATH (as root, run as the postgres
//     user through runuser), stopped and removed when the tests end.
//
// If none is reachable, the tests fail under CI=true and are skipped
// otherwise, saying why.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"
)

const defaultTestURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		stopCluster()
		os.Exit(code)
	}))
}

var (
	dbOnce    sync.Once
	dbURL     string  // the database the tests use, once found
	dbMissing string  // why there is none, if none was found
	cluster   *tempPG // the throwaway cluster, if one was started
	clusterMu sync.Mutex
)

// testURL returns the URL of the test database, failing (CI=true) or
// skipping the test if there is none.
func testURL(t testing.TB) string {
	t.Helper()
	dbOnce.Do(findDatabase)
	if dbURL != "" {
		return dbURL
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("errandpg tests need PostgreSQL and CI=true: %s", dbMissing)
	}
	t.Skipf("no PostgreSQL for errandpg's tests (under CI=true this fails): %s", dbMissing)
	return ""
}

func findDatabase() {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		if err := ping(u); err != nil {
			dbMissing = fmt.Sprintf("TEST_DATABASE_URL is set but does not answer: %v", err)
			return
		}
		dbURL = u
		return
	}
	errDefault := ping(defaultTestURL)
	if errDefault == nil {
		dbURL = defaultTestURL
		return
	}
	u, errCluster := startCluster()
	if errCluster == nil {
		dbURL = u
		return
	}
	dbMissing = fmt.Sprintf("TEST_DATABASE_URL is unset; %s: %v; throwaway cluster: %v",
		defaultTestURL, errDefault, errCluster)
}

func ping(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.Ping(ctx)
}

// tempPG is a throwaway cluster.
type tempPG struct {
	dir   string
	pgCtl []string // command running pg_ctl as the cluster's owner
}

// startCluster makes a cluster with initdb in a temporary directory, starts
// it on a free port with fsync off and creates the database test.
func startCluster() (string, error) {
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		return "", errors.New("initdb is not on PATH")
	}
	pgCtl, err := exec.LookPath("pg_ctl")
	if err != nil {
		return "", errors.New("pg_ctl is not on PATH")
	}
	dir, err := os.MkdirTemp("", "errandpg-test-cluster-")
	if err != nil {
		return "", err
	}
	var as []string // prefix running a command as the cluster's owner
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return "", errors.New("running as root and there is no postgres user to run initdb as")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			os.RemoveAll(dir)
			return "", errors.New("running as root and runuser is not on PATH")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
		as = []string{runuser, "-u", "postgres", "--"}
	}
	run := func(args ...string) error {
		full := append(append([]string(nil), as...), args...)
		out, err := exec.Command(full[0], full[1:]...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-N", "-E", "UTF8"); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", port, dir)
	if err := run(pgCtl, "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	clusterMu.Lock()
	cluster = &tempPG{dir: dir, pgCtl: append(append([]string(nil), as...), pgCtl)}
	clusterMu.Unlock()
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE test"); err != nil {
		return "", err
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable", port), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// stopCluster stops and removes the throwaway cluster, if one was started.
func stopCluster() {
	clusterMu.Lock()
	c := cluster
	cluster = nil
	clusterMu.Unlock()
	if c == nil {
		return
	}
	args := append(append([]string(nil), c.pgCtl[1:]...), "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	if out, err := exec.Command(c.pgCtl[0], args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "errandpg tests: stopping the throwaway cluster: %v\n%s", err, out)
	}
	os.RemoveAll(c.dir)
}

// newSchemaPool creates a schema of the test's own and returns a pool whose
// connections have search_path set to it; at cleanup the schema is dropped
// and the pool closed. It does not migrate (see migratedPool).
func newSchemaPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return newNamedSchemaPool(t, "errand_test_"+hex.EncodeToString(b[:]))
}

// newNamedSchemaPool is newSchemaPool with the schema's name given.
func newNamedSchemaPool(t testing.TB, schema string) *pgxpool.Pool {
	t.Helper()
	url := testURL(t)
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 16
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		pool.Close()
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
		pool.Close()
	})
	return pool
}

// migratedPool is newSchemaPool with the schema migrated.
func migratedPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := newSchemaPool(t)
	if err := Migrate(testCtx(t), pool); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return pool
}

// testCtx is a context ending with the test, bounded so a hang fails rather
// than stalls.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
