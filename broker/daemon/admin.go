package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// admin is the admin HTTP server. It starts before the logs are recovered,
// so /healthz answers at once and /readyz says 503 until the broker serves
// clients; /metrics and the console are mounted when the cluster is open.
type admin struct {
	server  *http.Server
	ready   atomic.Bool
	handler atomic.Pointer[http.Handler] // /metrics and the console, once open
}

func startAdmin(addr string, logger *slog.Logger) (*admin, net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	a := &admin{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready.Load() {
			http.Error(w, "not ready: recovering the logs", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := a.handler.Load()
		if h == nil {
			http.Error(w, "starting: the logs are being recovered", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	})
	a.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := a.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin server failed", "err", err)
		}
	}()
	return a, ln, nil
}

// open mounts the handlers that need the cluster and marks the broker ready.
func (a *admin) open(h http.Handler) {
	if a == nil {
		return
	}
	a.handler.Store(&h)
	a.ready.Store(true)
}

func (a *admin) shutdown(ctx context.Context) {
	if a == nil {
		return
	}
	a.ready.Store(false)
	_ = a.server.Shutdown(ctx)
}
