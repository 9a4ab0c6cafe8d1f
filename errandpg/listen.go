package errandpg

// The listener: one goroutine holding a dedicated connection that LISTENs on
// the schema's channels (see migrations/0002_notify.up.sql), so a worker
// wakes within milliseconds of an insert and a future resolves as soon as
// its task finishes, in every process.
//
// Notifications are a wake-up, never the source of truth: whatever is
// announced is re-read from errand_tasks, and a listener that is not
// listening (not connected yet, reconnecting, or refused LISTEN for good)
// says so through Polling, so the caller polls instead.
//
// Cost: one connection per listener, held for its lifetime outside the pool
// (it must be a session connection: LISTEN does not work through a
// transaction pooler), one goroutine, and on the database one notification
// per due insert and one per statement that finished tasks (up to 200 ids
// each; see the migrations).

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Channel name prefixes; the full name adds the schema (see notifyChannel).
const (
	workChannelPrefix = "errand_work_"
	doneChannelPrefix = "errand_done_"
)

// maxChannelLen is the longest identifier PostgreSQL keeps (NAMEDATALEN-1).
const maxChannelLen = 63

// notifyChannel is the channel the triggers of schema notify on: prefix and
// schema, or prefix and the md5 of schema in hex if that would exceed 63
// bytes. It must match the triggers' expression in 0002_notify.up.sql and
// 0003_notify_done_batch.up.sql.
func notifyChannel(prefix, schema string) string {
	if len(prefix)+len(schema) <= maxChannelLen {
		return prefix + schema
	}
	sum := md5.Sum([]byte(schema))
	return prefix + hex.EncodeToString(sum[:])
}

// notifyChannels returns the work and done channels of the errand tables db
// uses: those of its current schema.
func notifyChannels(ctx context.Context, db DB) (work, done string, err error) {
	var schema *string
	if err := db.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return "", "", fmt.Errorf("errandpg: reading the current schema: %w", err)
	}
	if schema == nil {
		return "", "", errNoSchema
	}
	return notifyChannel(workChannelPrefix, *schema), notifyChannel(doneChannelPrefix, *schema), nil
}

var errNoSchema = errors.New("errandpg: no schema of the search_path exists")

// Reconnection back-off: doubling from listenMinBackoff up to
// listenMaxBackoff, with jitter, reset by every successful LISTEN.
const (
	listenMinBackoff = 50 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
)

// listener LISTENs on a work and a done channel on a connection of its own,
// reconnecting with back-off when the connection drops.
//
// A notification on the work channel is a non-blocking send on Work (buffer
// 1: any number of notifications before the caller looks coalesce into one
// wake-up). A notification on the done channel calls onDone with its
// payload, the finished task's id, on the listener's goroutine: onDone must
// not block. A payload of several comma-separated ids (the tasks one
// statement finished, see migrations/0003_notify_done_batch.up.sql) calls
// onDone once per id. After a reconnection (a LISTEN following an earlier one), since
// notifications sent in the gap are lost, the listener wakes Work and calls
// onDone("") before it reports listening again: the caller re-checks its
// due work and its pending futures.
type listener struct {
	connect    func(context.Context) (*pgx.Conn, error)
	work, done string
	onDone     func(id string)
	wake       chan struct{}

	cancel context.CancelFunc
	exited chan struct{}

	mu      sync.Mutex
	refused error         // why the database refused LISTEN for good, if it did
	polling bool          // not listening right now
	pid     uint32        // the listening connection's backend pid, 0 if none
	changed chan struct{} // closed and replaced when polling or pid change
}

// newListener starts a listener on the work and done channels (as given by
// notifyChannels) over connections made by connect, which must reach the
// database directly or through a session pooler. It runs until ctx ends or
// Close is called; it starts out polling, until its first LISTEN succeeds.
func newListener(ctx context.Context, connect func(context.Context) (*pgx.Conn, error), work, done string, onDone func(id string)) *listener {
	ctx, cancel := context.WithCancel(ctx)
	l := &listener{
		connect: connect,
		work:    work,
		done:    done,
		onDone:  onDone,
		wake:    make(chan struct{}, 1),
		cancel:  cancel,
		exited:  make(chan struct{}),
		polling: true,
		changed: make(chan struct{}),
	}
	go l.run(ctx)
	return l
}

// Work is signaled (coalescing) when new work is announced, and after a
// reconnection.
func (l *listener) Work() <-chan struct{} { return l.wake }

// Polling reports whether the caller must poll for work and futures because
// the listener is not listening: before its first LISTEN, while it
// reconnects, and for good once the database refused LISTEN (see
// notificationsUnavailable).
func (l *listener) Polling() bool {
	polling, _, _ := l.state()
	return polling
}

// state returns whether the listener polls, the backend pid of its listening
// connection (0 if none), and a channel closed at the next change of either.
func (l *listener) state() (polling bool, pid uint32, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.polling, l.pid, l.changed
}

func (l *listener) setState(polling bool, pid uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.polling == polling && l.pid == pid {
		return
	}
	l.polling, l.pid = polling, pid
	close(l.changed)
	l.changed = make(chan struct{})
}

// Close stops the listener, closes its connection and waits for its
// goroutine to exit. It is safe to call more than once.
func (l *listener) Close() {
	l.cancel()
	<-l.exited
}

func (l *listener) run(ctx context.Context) {
	defer close(l.exited)
	backoff := listenMinBackoff
	for listenedBefore := false; ; {
		listened, refused := l.listen(ctx, listenedBefore)
		listenedBefore = listenedBefore || listened
		if refused != nil {
			l.mu.Lock()
			l.refused = refused
			l.mu.Unlock()
		}
		l.setState(true, 0)
		if ctx.Err() != nil || refused != nil {
			return // refused: polling for good
		}
		if listened {
			backoff = listenMinBackoff
		}
		// Jitter of up to a quarter, so processes cut off together do not
		// reconnect together.
		d := backoff + rand.N(backoff/4+1)
		backoff = min(2*backoff, listenMaxBackoff)
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// Refused returns the error with which the database refused LISTEN for
// good (see notificationsUnavailable), or nil. Once it is not nil the
// listener has exited and polls for good.
func (l *listener) Refused() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

// Exited is closed when the listener's goroutine has exited: after Close,
// when its context ends, or when the database refused LISTEN for good.
func (l *listener) Exited() <-chan struct{} { return l.exited }

// listen connects, LISTENs and delivers notifications until the connection
// fails or ctx ends; resync says a previous connection listened, so
// notifications may have been lost in between. listened reports whether
// LISTEN succeeded; refused is LISTEN's error if the database refused it for
// good (notificationsUnavailable).
func (l *listener) listen(ctx context.Context, resync bool) (listened bool, refused error) {
	conn, err := l.connect(ctx)
	if err != nil {
		return false, nil
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(closeCtx)
	}()
	for _, ch := range []string{l.work, l.done} {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			if notificationsUnavailable(err) {
				return false, fmt.Errorf("errandpg: LISTEN %s: %w", ch, err)
			}
			return false, nil
		}
	}
	if resync {
		l.signal()
		l.onDone("")
	}
	l.setState(false, conn.PgConn().PID())
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true, nil
		}
		switch n.Channel {
		case l.work:
			l.signal()
		case l.done:
			// One id, or several comma-separated (one statement's worth,
			// migration 3).
			for id := range strings.SplitSeq(n.Payload, ",") {
				l.onDone(id)
			}
		}
	}
}

func (l *listener) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// notificationsUnavailable reports whether err, from LISTEN, shows that this
// database connection cannot listen at all, so reconnecting is pointless:
// feature_not_supported (a pooler or a PostgreSQL-compatible database
// refusing LISTEN) or read_only_sql_transaction (a hot standby: "cannot
// execute LISTEN during recovery").
//
// A transaction pooler (PgBouncer in transaction mode) accepts LISTEN and
// then loses the notifications: it is not detected; configure such
// deployments to poll.
func notificationsUnavailable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "0A000", "25006":
		return true
	}
	return false
}

// Listen calls work when due work may be waiting and done with the id of
// each task that finished, until ctx ends; then it returns nil. See
// errand.Store: the queue runs it on a goroutine of its own.
//
// It holds one dedicated connection, made with the pool's connection
// settings but outside the pool, LISTENing on the schema's channels (see
// Migrate's notifications); a dropped connection is remade with back-off,
// and work is called after each reconnection since notifications may have
// been lost in between; work is also called once the first LISTEN
// succeeded, for the work that was waiting already. work and done are
// called on Listen's goroutine and the listener's; both must not block. Neither is called after Listen
// returns.
//
// It returns an error at once if notifications are off
// (WithNotifications(false)), and as soon as the database refuses LISTEN
// for good (a hot standby, or a pooler that does not support it): the queue
// then polls alone.
func (s *Store) Listen(ctx context.Context, work func(), done func(id string)) error {
	if err := s.Err(); err != nil {
		return err
	}
	if !s.notify {
		return errors.New("errandpg: notifications are off (WithNotifications(false)): polling only")
	}
	if work == nil || done == nil {
		return errors.New("errandpg: Listen: nil work or done")
	}
	workCh, doneCh, err := s.channels(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cfg := s.pool.Config().ConnConfig
	connect := func(ctx context.Context) (*pgx.Conn, error) { return pgx.ConnectConfig(ctx, cfg) }
	l := newListener(ctx, connect, workCh, doneCh, func(id string) {
		if id != "" { // "" after a reconnection: the queue polls its futures anyway
			done(id)
		}
	})
	defer l.Close()
	if s.onListen != nil {
		s.onListen(l)
	}
	_, _, changed := l.state()
	for {
		select {
		case <-changed:
			var polling bool
			polling, _, changed = l.state()
			if !polling {
				// Listening (again): what was announced before is lost, and
				// work may be waiting already (a backlog at start-up).
				work()
			}
		case <-l.Work():
			work()
		case <-l.Exited():
			if err := l.Refused(); err != nil {
				return err
			}
			return nil // ctx ended
		}
	}
}

// channels returns the notification channels of the pool's schema, trying
// again with back-off while the database cannot be reached, until ctx ends.
func (s *Store) channels(ctx context.Context) (work, done string, err error) {
	backoff := listenMinBackoff
	for {
		work, done, err = notifyChannels(ctx, s.pool)
		if err == nil || errors.Is(err, errNoSchema) || ctx.Err() != nil {
			return work, done, err
		}
		timer := time.NewTimer(backoff + rand.N(backoff/4+1))
		select {
		case <-ctx.Done():
			timer.Stop()
			return "", "", ctx.Err()
		case <-timer.C:
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}
