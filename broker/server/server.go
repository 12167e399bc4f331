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

	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/metrics"
)

// Server accepts Kafka connections and answers them from a cluster.
type Server struct {
	cluster *cluster.Cluster
	logger  *slog.Logger
	metrics *metrics.Metrics // nil: not measured

	mu       sync.Mutex
	listener net.Listener
	conns    map[*conn]struct{}
	closing  bool
	// stopping is closed when shutdown begins: long polls answer at once.
	stopping chan struct{}
	wg       sync.WaitGroup
}

// SetMetrics makes the server record into m; call it before Serve.
func (s *Server) SetMetrics(m *metrics.Metrics) { s.metrics = m }

// New returns a server for c.
func New(c *cluster.Cluster, logger *slog.Logger) *Server {
	return &Server{cluster: c, logger: logger, conns: make(map[*conn]struct{}), stopping: make(chan struct{})}
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listener = ln
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
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			_ = nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.metrics.ConnectionOpened()
		go func() {
			defer s.wg.Done()
			defer s.metrics.ConnectionClosed()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting, lets every connection finish the request it is
// handling and send its response, then closes them. It returns when all are
// closed or ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		close(s.stopping)
		if s.listener != nil {
			_ = s.listener.Close()
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
