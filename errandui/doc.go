// Package errandui is a live dashboard for an errand Queue: an http.Handler
// to mount at a path of your server, as net/http/pprof is.
//
// The page shows the queue's counts, a throughput chart, the tasks waiting,
// running, delayed or backing off, and recently failed, and the recurring
// schedules. It updates itself over server-sent events. Optionally
// (Options.EnableActions) it has buttons to cancel a task and stop a
// schedule.
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
// # Security
//
// The dashboard shows task names, ids and error messages: mount it behind the
// same authentication as your other admin pages. By default it is read-only.
// With EnableActions, the actions are POST requests that carry a per-Dashboard
// random token (embedded in the page) in a header, are refused from other
// origins (http.CrossOriginProtection), and answer 405 to other methods.
// Every response sets a strict Content-Security-Policy (no inline script, no
// resource from elsewhere), X-Content-Type-Options: nosniff, a no-referrer
// policy and X-Frame-Options: DENY; the state is served with
// Cache-Control: no-store. The page renders data as text only, never as HTML.
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
