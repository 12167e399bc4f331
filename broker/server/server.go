// Package server is kqbroker's Kafka listener: connections, request
// framing, and one handler per API, each in a file named after its key
// (00_produce.go, 01_fetch.go, ...). Requests and responses are encoded by
// kmsg; partition-level failures are kerr codes in the responses.
package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/metrics"
)

// Server accepts Kafka connections and answers them from a cluster.
type Server struct {
	cluster *cluster.Cluster
	groups  groupCoordinator
	logger  *slog.Logger
	metrics *metrics.Metrics // nil: not measured

	// memory bounds the bytes of requests being read and handled.
	memory *requestMemory
	// fetchSessions are the incremental fetch sessions (KIP-227).
	fetchSessions *fetchSessions

	mu        sync.Mutex
	listeners []net.Listener // clients', and the other brokers' if apart
	conns     map[*conn]struct{}
	perIP     map[string]int // open connections by client address
	refusals  refusalLog
	closing   bool
	// stopping is closed when shutdown begins: long polls answer at once.
	stopping chan struct{}
	wg       sync.WaitGroup
}

// SetMetrics makes the server record into m; call it before Serve.
func (s *Server) SetMetrics(m *metrics.Metrics) {
	s.metrics = m
	s.memory.inUse = m.RequestMemoryInUse
	m.ReadFetchSessions(s.FetchSessions)
}

// New returns a server for c.
func New(c *cluster.Cluster, logger *slog.Logger) *Server {
	return &Server{cluster: c, groups: c.Groups(), logger: logger, conns: make(map[*conn]struct{}), perIP: make(map[string]int),
		memory: newRequestMemory(c.Config().QueuedMaxRequestBytes, nil), fetchSessions: newFetchSessions(), stopping: make(chan struct{})}
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var netErr net.Error
			if errors.As(err, &netErr) && netErr.Timeout() {
				continue
			}
			return err
		}
		c := newConn(s, nc)
		ip := clientIP(nc)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			_ = nc.Close()
			return nil
		}
		if refused := s.refuseLocked(ip); refused != "" {
			s.mu.Unlock()
			_ = nc.Close()
			s.metrics.ConnectionRefused(refused)
			continue
		}
		s.conns[c] = struct{}{}
		s.perIP[ip]++
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.ConnectionOpened()
		go func() {
			defer s.wg.Done()
			defer s.metrics.ConnectionClosed()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] == 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
		}()
	}
}

// refuseLocked says why a new connection from ip is refused ("" if it is
// not): max_connections or max_connections_per_ip. Refusals are logged at
// most once a second, with the count since the last line, so a flood of
// connections cannot flood the log.
func (s *Server) refuseLocked(ip string) string {
	cfg := s.cluster.Config()
	var reason string
	var limit int32
	switch {
	case len(s.conns) >= int(cfg.MaxConnections):
		reason, limit = "max_connections", cfg.MaxConnections
	case s.perIP[ip] >= int(cfg.MaxConnectionsPerIP):
		reason, limit = "max_connections_per_ip", cfg.MaxConnectionsPerIP
	default:
		return ""
	}
	if refused, ok := s.refusals.note(time.Now()); ok {
		s.logger.Warn("refusing connections: limit reached; raise it in the config if these clients are expected",
			"limit", reason, "value", limit, "client", ip, "open_from_client", s.perIP[ip], "open", len(s.conns), "refused_since_last_line", refused)
	}
	return reason
}

// refusalLog counts refused connections between log lines.
type refusalLog struct {
	last    time.Time
	pending int
}

// note counts a refusal; it reports whether to log now and how many
// refusals the line covers.
func (r *refusalLog) note(now time.Time) (int, bool) {
	r.pending++
	if now.Sub(r.last) < time.Second {
		return 0, false
	}
	refused := r.pending
	r.last, r.pending = now, 0
	return refused, true
}

func clientIP(nc net.Conn) string {
	host, _, err := net.SplitHostPort(nc.RemoteAddr().String())
	if err != nil {
		return nc.RemoteAddr().String()
	}
	return host
}

// Shutdown stops accepting, lets every connection finish the request it is
// handling and send its response, then closes them. It returns when all are
// closed or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.stopping)
		for _, ln := range s.listeners {
			_ = ln.Close()
		}
		for c := range s.conns {
			c.stopReading()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			_ = c.netConn.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}
