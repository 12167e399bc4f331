// Package brokertest starts a real kqbroker (cluster, storage, listener)
// on a free loopback port with a temporary data directory, for tests in
// any package, as net/http/httptest does for HTTP servers.
package brokertest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/server"
)

// Broker is a running broker. Addr is its bootstrap address.
type Broker struct {
	Addr    string
	Config  config.Config
	Cluster *cluster.Cluster
	server  *server.Server
	done    chan error
}

// Logger discards broker logs unless KQ_TEST_LOG is set.
func Logger() *slog.Logger {
	if os.Getenv("KQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start starts a broker with the defaults for tests (1 partition per new
// topic, no initial rebalance delay), changed by configure, and stops it
// when the test ends.
func Start(t testing.TB, configure func(*config.Config)) *Broker {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.DefaultPartitions = 1
	cfg.GroupInitialRebalanceDelayMs = 0
	if configure != nil {
		configure(&cfg)
	}
	b := &Broker{Config: cfg}
	b.start(t)
	t.Cleanup(func() { b.Stop(t) })
	return b
}

func (b *Broker) start(t testing.TB) {
	t.Helper()
	listen := b.Config.Listen
	if b.Addr != "" {
		listen = b.Addr // a restart keeps the port clients know
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	b.Addr = ln.Addr().String()
	cfg := b.Config
	cfg.Listen = b.Addr
	cl, err := cluster.Open(cfg, clock.System{}, Logger())
	if err != nil {
		t.Fatal(err)
	}
	b.Cluster, b.server, b.done = cl, server.New(cl, Logger()), make(chan error, 1)
	go func() { b.done <- b.server.Serve(ln) }()
}

// Stop shuts the broker down cleanly; it can be started again with Restart.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	if b.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.server.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	// Serve reports net.ErrClosed when the stop came before it began.
	if err := <-b.done; err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("serve: %v", err)
	}
	if err := b.Cluster.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	b.server = nil
}

// Restart stops the broker cleanly and starts it again on the same port
// and data directory.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	b.Stop(t)
	b.start(t)
}

// StartAgain starts a stopped broker again on the same port and data directory.
func (b *Broker) StartAgain(t testing.TB) { b.start(t) }
