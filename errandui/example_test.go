package errandui_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/errandgo/errand"
	"github.com/errandgo/errand/errandui"
)

// The Dashboard observes the queue's events, so it is made first, then the
// queue, then the two are tied together. Mount it at any path that ends in
// a slash; behind your admin authentication.
func Example() {
	dash := errandui.New(errandui.Options{Title: "jobs", EnableActions: true})
	q, err := errand.New(errand.Config{
		Workers: 8,
		OnEvent: dash.Observe, // with other consumers: func(e errand.Event) { dash.Observe(e); metrics.Observe(e) }
	})
	if err != nil {
		log.Fatal(err)
	}
	dash.Attach(q)

	mux := http.NewServeMux()
	mux.Handle("/debug/errand/", requireAdmin(dash))
	// Or, the same: mux.Handle("/debug/errand/", http.StripPrefix("/debug/errand", dash))

	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(dash.Close) // open dashboards must not hold Shutdown up
	go srv.ListenAndServe()

	// ... on the way out:
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	q.Shutdown(ctx)
}

// requireAdmin stands for your authentication middleware.
func requireAdmin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pass, ok := r.BasicAuth(); !ok || pass != "secret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="admin"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
