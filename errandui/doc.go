// Package errandui is a live dashboard for an errand Queue: an http.Handler
// to mount at a path of your server, as net/http/pprof is.
//
// The page shows the queue's counts, a throughput chart, the tasks waiting,
// running, delayed or backing off, and recently failed, and the recurring
// schedules. It updates itself over server-sent events. It has a box to find
// a task by id (see Task lookup). Optionally (Options.EnableActions) it has
// buttons to cancel a task and stop a schedule.
//
// # Wiring
//
// A Dashboard learns about tasks from the queue's events, so it is made
// before the queue, observes through Config.OnEvent, and is attached to the
// queue once the queue exists:
//
//	dash := errandui.New(errandui.Options{Title: "jobs"})
//	q, err := errand.New(errand.Config{
//		Workers: 8,
//		OnEvent: dash.Observe, // or func(e errand.Event) { dash.Observe(e); other.Observe(e) }
//	})
//	if err != nil {
//		return err
//	}
//	dash.Attach(q)
//
//	mux.Handle("/debug/errand/", dash)
//
// The page uses relative URLs only, so the Dashboard works mounted at any path
// ending in a slash, with or without http.StripPrefix.
//
// # Task lookup
//
// GET api/task?id=<id> answers one task's record as JSON, read with
// Queue.Lookup: with a Config.Store any stored task, finished or not, until
// the store's retention deletes it; without one a waiting or running task
// of a named kind (errand.Define). It is read-only and served whether or
// not actions are enabled. The fields: id, kind, status ("queued",
// "running", "succeeded" ...), priority, attempts, max_attempts, and when
// set error, key, schedule, holder (the process running it), and run_at,
// created, started and finished in RFC 3339. args and result, when the
// record has them, are objects: data is the codec's bytes as text
// (indented) if they are valid UTF-8 JSON, as the default codec's are, and
// base64 (base64: true) otherwise; at most 64 KiB of it is shown
// (truncated: true), size is the stored length. The answer is 400 for a
// missing id or one longer than 256 bytes or with control characters, 404
// for an unknown task, 503 while no queue is attached, and 500 with a
// generic message if the lookup fails or takes over 5 seconds (the store's
// error is not shown: it may name hosts). Each lookup is one Store read.
//
// # Security
//
// The dashboard shows task names, ids and error messages: mount it behind the
// same authentication as your other admin pages. By default it is read-only.
// With EnableActions, the actions are POST requests that carry a per-Dashboard
// random token (embedded in the page) in a header, are refused from other
// origins (http.CrossOriginProtection), and answer 405 to other methods.
// Every response sets a strict Content-Security-Policy (no inline script, no
// resource from elsewhere), X-Content-Type-Options: nosniff, a no-referrer
// policy and X-Frame-Options: DENY; the state and task lookups are served
// with Cache-Control: no-store. The page renders data as text only, never
// as HTML. A task lookup shows the task's arguments and result: mind what
// your tasks carry.
//
// # Cost
//
// Observe is O(1) per event and allocation-free in steady state. The
// Dashboard keeps at most Options.MaxTasks tasks per list: the counts come
// from Queue.Stats, and a list shows the tasks that were in it when they
// arrived and it had room (the oldest first), with "N of M" when it is
// truncated. A million waiting tasks cost the Dashboard no more memory than a
// hundred, and a refresh copies the bounded lists only.
package errandui
