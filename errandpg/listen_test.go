package errandpg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"
)

// notifyWait bounds every wait for a notification or a state change.
const notifyWait = 5 * time.Second

// testListener is a listener with its onDone payloads on a channel.
type testListener struct {
	*listener
	doneIDs chan string
	pool    *pgxpool.Pool // the schema's pool, for sentinels
}

// connectLike returns a connect func making connections like the pool's
// (same database, same search_path).
func connectLike(pool *pgxpool.Pool) func(context.Context) (*pgx.Conn, error) {
	return func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.ConnectConfig(ctx, pool.Config().ConnConfig)
	}
}

// startListener starts a listener on pool's schema over connect (nil: like
// the pool's), closed at cleanup. It does not wait for it to listen.
func startListener(t *testing.T, pool *pgxpool.Pool, connect func(context.Context) (*pgx.Conn, error)) *testListener {
	t.Helper()
	work, done, err := notifyChannels(testCtx(t), pool)
	if err != nil {
		t.Fatal(err)
	}
	if connect == nil {
		connect = connectLike(pool)
	}
	tl := &testListener{doneIDs: make(chan string, 1000), pool: pool}
	tl.listener = newListener(context.Background(), connect, work, done, func(id string) {
		select {
		case tl.doneIDs <- id:
		default:
			panic("test onDone buffer full")
		}
	})
	t.Cleanup(tl.Close)
	return tl
}

// listeningListener is startListener, returning once it listens.
func listeningListener(t *testing.T, pool *pgxpool.Pool) *testListener {
	t.Helper()
	tl := startListener(t, pool, nil)
	tl.waitState(t, "listening", func(polling bool, _ uint32) bool { return !polling })
	return tl
}

// waitState waits until cond holds for the listener's state and returns
// the pid then.
func (tl *testListener) waitState(t *testing.T, what string, cond func(polling bool, pid uint32) bool) uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), notifyWait)
	defer cancel()
	for {
		polling, pid, changed := tl.state()
		if cond(polling, pid) {
			return pid
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("listener not %s within %v (polling %v, pid %d)", what, notifyWait, polling, pid)
		}
	}
}

// waitWake fails unless Work is signaled within notifyWait, and returns how
// long that took.
func (tl *testListener) waitWake(t testing.TB) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), notifyWait)
	defer cancel()
	select {
	case <-tl.Work():
		return time.Since(start)
	case <-ctx.Done():
		t.Fatalf("no work notification within %v", notifyWait)
		return 0
	}
}

// woken reports whether Work holds a wake-up now, taking it.
func (tl *testListener) woken() bool {
	select {
	case <-tl.Work():
		return true
	default:
		return false
	}
}

var sentinels atomic.Int64

// sync sends a sentinel on the listener's done channel from a new
// transaction and waits for it: every notification committed before has been
// delivered by then (notifications arrive in commit order). It returns the
// done payloads received before the sentinel.
func (tl *testListener) sync(t *testing.T) []string {
	t.Helper()
	s := fmt.Sprintf("sentinel-%d", sentinels.Add(1))
	mustExec(t, tl.pool, `SELECT pg_notify($1, $2)`, tl.done, s)
	ctx, cancel := context.WithTimeout(t.Context(), notifyWait)
	defer cancel()
	var before []string
	for {
		select {
		case id := <-tl.doneIDs:
			if id == s {
				return before
			}
			before = append(before, id)
		case <-ctx.Done():
			t.Fatalf("sentinel %s not delivered within %v", s, notifyWait)
		}
	}
}

func uuidText(id [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

func TestListenerWakesOnDueInsert(t *testing.T) {
	pool := migratedPool(t)
	tl := listeningListener(t, pool)
	if got := tl.sync(t); len(got) != 0 || tl.woken() {
		t.Fatalf("before any insert: done %q, woken %v", got, tl.woken())
	}
	mustInsert(t, pool, newTask{})
	d := tl.waitWake(t)
	t.Logf("woken %v after the insert returned", d)

	// Five inserts before the worker looks coalesce into one wake-up.
	for range 5 {
		mustInsert(t, pool, newTask{})
	}
	if got := tl.sync(t); len(got) != 0 {
		t.Fatalf("done notifications %q for inserts", got)
	}
	if !tl.woken() {
		t.Fatal("no wake-up after five inserts")
	}
	if tl.woken() {
		t.Fatal("five inserts gave more than one wake-up")
	}
}

func TestListenerDelayedTaskNotifiedOnlyWhenDue(t *testing.T) {
	pool := migratedPool(t)
	tl := listeningListener(t, pool)
	id := mustInsert(t, pool, newTask{delay: time.Hour})
	if got := tl.sync(t); len(got) != 0 || tl.woken() {
		t.Fatalf("delayed insert notified: done %q, woken %v", got, tl.woken())
	}
	makeDue(t, pool, id)
	tl.waitWake(t)
	// Moving an already due task earlier again announces nothing new.
	makeDue(t, pool, id)
	if got := tl.sync(t); len(got) != 0 || tl.woken() {
		t.Fatalf("already due task re-announced: done %q, woken %v", got, tl.woken())
	}
}

// TestWorkNotifiedWhenTaskBecomesDue walks a task through the SQL layer's
// transitions and checks which announce work (exactly once) and which
// announce nothing.
func TestWorkNotifiedWhenTaskBecomesDue(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	tl := listeningListener(t, pool)
	id := mustInsert(t, pool, newTask{maxAttempts: 5})
	tl.waitWake(t)
	var c claimedTask
	steps := []struct {
		name string
		do   func() bool
		wake bool
	}{
		{"fetch", func() bool { c = fetchOne(t, pool); return c.id == id }, false},
		{"heartbeat", func() bool {
			m, err := heartbeat(ctx, pool, []lease{leaseOf(c)}, time.Minute)
			return err == nil && m[id]
		}, false},
		{"hand back", func() bool { ok, err := handBack(ctx, pool, leaseOf(c)); return err == nil && ok }, true},
		{"fetch again", func() bool { c = fetchOne(t, pool); return c.id == id }, false},
		{"retry later", func() bool { ok, err := retry(ctx, pool, leaseOf(c), "boom", time.Hour); return err == nil && ok }, false},
		{"retry due", func() bool { makeDue(t, pool, id); return true }, true},
		{"fetch third", func() bool { c = fetchOne(t, pool); return c.id == id }, false},
		{"retry at once", func() bool { ok, err := retry(ctx, pool, leaseOf(c), "boom", 0); return err == nil && ok }, true},
		{"fetch fourth", func() bool { c = fetchOne(t, pool); return c.id == id }, false},
		{"lease expires", func() bool {
			mustExec(t, pool, `UPDATE errand_tasks SET lease_until = now() - interval '1 second' WHERE id = $1`, id)
			return true
		}, false},
		{"recover", func() bool {
			got, err := recoverExpired(ctx, pool, 10)
			return err == nil && slices.Equal(got, [][16]byte{id})
		}, true},
	}
	for _, s := range steps {
		if !s.do() {
			t.Fatalf("%s: did not apply", s.name)
		}
		got := tl.sync(t)
		if len(got) != 0 {
			t.Fatalf("%s: done notifications %q", s.name, got)
		}
		if woken := tl.woken(); woken != s.wake {
			t.Fatalf("%s: woken %v, want %v", s.name, woken, s.wake)
		}
	}
}

func TestListenerDoneNotifiesID(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	tl := listeningListener(t, pool)
	var want []string
	for _, state := range []string{stateSucceeded, stateFailed, stateCanceled} {
		id := mustInsert(t, pool, newTask{maxAttempts: 2})
		c := fetchOne(t, pool)
		if ok, err := finish(ctx, pool, leaseOf(c), state, []byte("r"), ""); err != nil || !ok {
			t.Fatal(ok, err)
		}
		want = append(want, uuidText(id))
	}
	// Retrying is not done; a waiting task canceled is.
	retried := mustInsert(t, pool, newTask{maxAttempts: 2})
	c := fetchOne(t, pool)
	if ok, err := retry(ctx, pool, leaseOf(c), "boom", time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	canceled := mustInsert(t, pool, newTask{delay: time.Hour})
	if ok, err := cancelWaiting(ctx, pool, canceled); err != nil || !ok {
		t.Fatal(ok, err)
	}
	want = append(want, uuidText(canceled))
	// Deleting finished tasks announces nothing more.
	mustExec(t, pool, `UPDATE errand_tasks SET finished_at = now() - interval '2 hours' WHERE finished_at IS NOT NULL`)
	if n, err := deleteFinished(ctx, pool, time.Hour, 100); err != nil || n != 4 {
		t.Fatalf("deleteFinished = %d, %v", n, err)
	}
	if got := tl.sync(t); !slices.Equal(got, want) {
		t.Fatalf("done ids %q, want %q (retried %s)", got, want, uuidText(retried))
	}
}

// TestListenerSplitsDonePayloads: a done payload of several comma-separated
// ids (migration 3) calls onDone once per id, in order.
func TestListenerSplitsDonePayloads(t *testing.T) {
	pool := migratedPool(t)
	tl := listeningListener(t, pool)
	a, b, c := uuidText(newID(t)), uuidText(newID(t)), uuidText(newID(t))
	mustExec(t, pool, `SELECT pg_notify($1, $2)`, tl.done, a+","+b+","+c)
	mustExec(t, pool, `SELECT pg_notify($1, $2)`, tl.done, a)
	if got, want := tl.sync(t), []string{a, b, c, a}; !slices.Equal(got, want) {
		t.Fatalf("done ids %q, want %q", got, want)
	}
}

// TestDoneNotifiedOncePerStatement: one UPDATE finishing several tasks
// announces each of them once (in one notification: see
// TestStoreCompleteManyNotifiesOncePerStatement); updates that finish nothing
// (claims, heartbeats, retries, hand-backs, recoveries) send none.
func TestDoneNotifiedOncePerStatement(t *testing.T) {
	pool := migratedPool(t)
	ctx := testCtx(t)
	tl := listeningListener(t, pool)
	var want []string
	for range 5 {
		want = append(want, uuidText(mustInsert(t, pool, newTask{maxAttempts: 3})))
	}
	cs := mustFetch(t, pool, 5)
	var ls []lease
	for _, c := range cs {
		ls = append(ls, leaseOf(c))
	}
	if _, err := heartbeat(ctx, pool, ls, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := retry(ctx, pool, ls[0], "x", 0); err != nil || !ok {
		t.Fatal(ok, err)
	}
	c := fetchOne(t, pool)
	if ok, err := handBack(ctx, pool, leaseOf(c)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	ls[0] = leaseOf(fetchOne(t, pool))
	mustExec(t, pool, `UPDATE errand_tasks SET lease_until = now() - interval '1 millisecond' WHERE id = $1`, ls[1].id)
	if got, err := recoverExpired(ctx, pool, 10); err != nil || len(got) != 1 {
		t.Fatal(got, err)
	}
	ls[1] = leaseOf(fetchOne(t, pool))
	if got := tl.sync(t); len(got) != 0 {
		t.Fatalf("done notifications %q before anything finished", got)
	}
	mustExec(t, pool, `UPDATE errand_tasks SET state = 'succeeded', finished_at = now(),
		lease_token = NULL, lease_until = NULL WHERE state = 'running'`)
	got := tl.sync(t)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("done ids %q, want %q", got, want)
	}
}

func TestListenerSchemasDoNotCrossTalk(t *testing.T) {
	poolA, poolB := migratedPool(t), migratedPool(t)
	ctx := testCtx(t)
	a, b := listeningListener(t, poolA), listeningListener(t, poolB)
	if a.work == b.work || a.done == b.done {
		t.Fatalf("schemas share channels: %s %s / %s %s", a.work, a.done, b.work, b.done)
	}
	id := mustInsert(t, poolB, newTask{})
	c := fetchOne(t, poolB)
	if ok, err := finish(ctx, poolB, leaseOf(c), stateSucceeded, nil, ""); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := b.sync(t); !slices.Equal(got, []string{uuidText(id)}) || !b.woken() {
		t.Fatalf("schema B's own listener: done %q", got)
	}
	if got := a.sync(t); len(got) != 0 || a.woken() {
		t.Fatalf("schema A's listener heard schema B: done %q, woken %v", got, a.woken())
	}
	mustInsert(t, poolA, newTask{})
	a.waitWake(t)
	if b.sync(t); b.woken() {
		t.Fatal("schema B's listener heard schema A")
	}
}

// TestListenerLongSchemaNames checks the channel names against the
// triggers' at the 63-byte limit: up to 51 bytes of schema name the channel
// holds it, beyond it holds its md5.
func TestListenerLongSchemaNames(t *testing.T) {
	for _, n := range []int{51, 52, 63} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			schema := fmt.Sprintf("errand_test_%x_", newID(t))
			schema += strings.Repeat("x", n-len(schema))
			pool := newNamedSchemaPool(t, schema)
			if err := Migrate(testCtx(t), pool); err != nil {
				t.Fatal(err)
			}
			tl := listeningListener(t, pool)
			if len(tl.work) > maxChannelLen || len(tl.done) > maxChannelLen {
				t.Fatalf("channels %q, %q longer than %d bytes", tl.work, tl.done, maxChannelLen)
			}
			if hashed := !strings.HasSuffix(tl.work, schema); hashed != (n > 51) {
				t.Fatalf("schema of %d bytes: channel %q", n, tl.work)
			}
			id := mustInsert(t, pool, newTask{})
			tl.waitWake(t)
			if ok, err := cancelWaiting(testCtx(t), pool, id); err != nil || !ok {
				t.Fatal(ok, err)
			}
			if got := tl.sync(t); !slices.Equal(got, []string{uuidText(id)}) {
				t.Fatalf("done ids %q", got)
			}
		})
	}
}

func TestListenerReconnectsAfterTerminate(t *testing.T) {
	pool := migratedPool(t)
	tl := listeningListener(t, pool)
	_, pid, _ := tl.state()
	var listening bool
	if err := pool.QueryRow(testCtx(t), `SELECT query LIKE 'LISTEN%' FROM pg_stat_activity WHERE pid = $1`, int32(pid)).Scan(&listening); err != nil || !listening {
		t.Fatalf("backend %d is not the listener's: %v, %v", pid, listening, err)
	}
	var terminated bool
	if err := pool.QueryRow(testCtx(t), `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("pg_terminate_backend(%d): %v, %v", pid, terminated, err)
	}
	newPID := tl.waitState(t, "listening again", func(polling bool, p uint32) bool { return !polling && p != pid && p != 0 })
	t.Logf("backend %d terminated; listening again on %d", pid, newPID)
	// What was sent in the gap is lost: the listener says so before it
	// reports listening again.
	if !tl.woken() {
		t.Fatal("no wake-up after the reconnection")
	}
	if got := tl.sync(t); !slices.Equal(got, []string{""}) {
		t.Fatalf("done payloads after the reconnection %q, want one resync (\"\")", got)
	}
	id := mustInsert(t, pool, newTask{})
	tl.waitWake(t)
	if ok, err := cancelWaiting(testCtx(t), pool, id); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if got := tl.sync(t); !slices.Equal(got, []string{uuidText(id)}) {
		t.Fatalf("done ids %q after the reconnection", got)
	}
}

// TestListenerPollsUntilItCanListen: while connections fail (a refused
// connection, then one that is closed before LISTEN) the listener polls and
// retries; once one works it listens.
func TestListenerPollsUntilItCanListen(t *testing.T) {
	pool := migratedPool(t)
	errNoConn := errors.New("test: no connection")
	attempts := make(chan int, 10)
	var n int
	connect := func(ctx context.Context) (*pgx.Conn, error) {
		n++ // only the listener's goroutine calls it
		attempts <- n
		switch n {
		case 1:
			return nil, errNoConn
		case 2:
			conn, err := connectLike(pool)(ctx)
			if err != nil {
				return nil, err
			}
			conn.Close(ctx) // LISTEN will fail on it
			return conn, nil
		}
		return connectLike(pool)(ctx)
	}
	tl := startListener(t, pool, connect)
	for want := 1; want <= 3; want++ {
		if got := <-attempts; got != want {
			t.Fatalf("attempt %d, want %d", got, want)
		}
		if want < 3 && !tl.Polling() {
			t.Fatalf("listening before attempt %d", want)
		}
	}
	tl.waitState(t, "listening", func(polling bool, _ uint32) bool { return !polling })
	// Its first LISTEN is no reconnection: no resync.
	if got := tl.sync(t); len(got) != 0 || tl.woken() {
		t.Fatalf("first LISTEN after failed attempts: done %q, woken %v", got, tl.woken())
	}
	mustInsert(t, pool, newTask{})
	tl.waitWake(t)
	if len(attempts) != 0 {
		t.Fatalf("%d more connection attempts once listening", len(attempts))
	}
}

func TestNotificationsUnavailable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("connection refused"), false},
		{&pgconn.PgError{Code: "0A000", Message: "LISTEN is not supported"}, true},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "25006", Message: "cannot execute LISTEN during recovery"}), true},
		{&pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}, false},
		{&pgconn.PgError{Code: "08006"}, false},
		{context.Canceled, false},
	} {
		if got := notificationsUnavailable(tt.err); got != tt.want {
			t.Errorf("notificationsUnavailable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestListenerCloseJoins: Close stops the listener's goroutine and closes
// its connection whether it listens or waits in connect, and may be called
// twice.
func TestListenerCloseJoins(t *testing.T) {
	pool := migratedPool(t)
	work, done, err := notifyChannels(testCtx(t), pool)
	if err != nil {
		t.Fatal(err)
	}
	ignore := goleak.IgnoreCurrent()

	l := newListener(context.Background(), connectLike(pool), work, done, func(string) {})
	tl := &testListener{listener: l}
	pid := tl.waitState(t, "listening", func(polling bool, _ uint32) bool { return !polling })
	l.Close()
	l.Close()
	if !l.Polling() {
		t.Fatal("closed listener still listening")
	}
	goleak.VerifyNone(t, ignore)
	var alive bool
	for { // the backend goes once the server has read the Terminate
		if err := pool.QueryRow(testCtx(t), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)`, int32(pid)).Scan(&alive); err != nil {
			t.Fatal(err)
		}
		if !alive {
			break
		}
	}

	inConnect := make(chan struct{})
	l = newListener(context.Background(), func(ctx context.Context) (*pgx.Conn, error) {
		close(inConnect)
		<-ctx.Done()
		return nil, ctx.Err()
	}, work, done, func(string) {})
	<-inConnect
	l.Close()
	goleak.VerifyNone(t, ignore)

	// Ending the context given to newListener stops it too.
	ctx, cancel := context.WithCancel(context.Background())
	l = newListener(ctx, connectLike(pool), work, done, func(string) {})
	cancel()
	<-l.exited
	l.Close()
	goleak.VerifyNone(t, ignore)
}

// TestNotifyLatency measures the time from an insert to the listener's
// wake-up, over 500 inserts one after another.
func TestNotifyLatency(t *testing.T) {
	pool := migratedPool(t)
	tl := listeningListener(t, pool)
	const n = 500
	fromStart := make([]time.Duration, n)
	fromCommit := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		mustInsert(t, pool, newTask{})
		committed := time.Now()
		tl.waitWake(t)
		fromStart[i], fromCommit[i] = time.Since(start), time.Since(committed)
	}
	pct := func(ds []time.Duration, p int) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[(len(s)-1)*p/100]
	}
	t.Logf("insert-to-wake over %d inserts: from the insert's start p50 %v p99 %v max %v; from its commit p50 %v p99 %v max %v",
		n, pct(fromStart, 50), pct(fromStart, 99), pct(fromStart, 100),
		pct(fromCommit, 50), pct(fromCommit, 99), pct(fromCommit, 100))
}
