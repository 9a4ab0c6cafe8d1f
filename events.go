package errand

import (
	"fmt"
	"log/slog"
	"sync"
)

// eventLoop delivers events to Config.OnEvent on one goroutine, in the order
// they were recorded. Events are recorded under Queue.mu, so their order is
// the order of the transitions; OnEvent runs without any lock of the queue's,
// so it may call Stats. The goroutine starts with the first event and exits
// once the queue has closed and every event has been delivered.
type eventLoop struct {
	q       *Queue
	mu      sync.Mutex
	buf     []Event
	spare   []Event
	started bool
	stopped bool
	wake    chan struct{}
	done    chan struct{}
}

// emitLocked completes e with t's description and the time, and records it.
// The caller holds Queue.mu.
func (q *Queue) emitLocked(e Event, t *task) {
	if q.cfg.OnEvent == nil {
		return
	}
	e.Task = t.infoLocked()
	e.Time = q.now()
	q.events.push(e)
}

func (l *eventLoop) push(e Event) {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.buf = append(l.buf, e)
	if !l.started {
		l.started = true
		l.wake = make(chan struct{}, 1)
		l.done = make(chan struct{})
		go l.run()
	}
	l.mu.Unlock()
	l.signal()
}

func (l *eventLoop) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *eventLoop) run() {
	defer close(l.done)
	for {
		l.mu.Lock()
		if len(l.buf) == 0 {
			stopped := l.stopped
			l.mu.Unlock()
			if stopped {
				return
			}
			<-l.wake
			continue
		}
		batch := l.buf
		l.buf, l.spare = l.spare, nil
		l.mu.Unlock()
		for i := range batch {
			l.deliver(batch[i])
			batch[i] = Event{}
		}
		l.mu.Lock()
		if l.spare == nil {
			l.spare = batch[:0]
		}
		l.mu.Unlock()
	}
}

func (l *eventLoop) deliver(e Event) {
	defer func() {
		if v := recover(); v != nil && l.q.cfg.Logger != nil {
			l.q.cfg.Logger.Error("errand: OnEvent panicked", slog.String("event", e.Kind.String()), slog.String("panic", fmt.Sprint(v)))
		}
	}()
	l.q.cfg.OnEvent(e)
}

// stop makes the goroutine exit once it has delivered what is recorded, and
// returns a channel closed when it has (nil if it never started).
func (l *eventLoop) stop() <-chan struct{} {
	l.mu.Lock()
	l.stopped = true
	started, done := l.started, l.done
	l.mu.Unlock()
	if !started {
		return nil
	}
	l.signal()
	return done
}
