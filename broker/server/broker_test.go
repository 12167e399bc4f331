package server_test

import (
	"context"
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

// testBroker is a real broker (cluster, storage, listener) on a free
// loopback port with a temporary data directory.
type testBroker struct {
	addr    string
	cfg     config.Config
	cluster *cluster.Cluster
	server  *server.Server
	done    chan error
}

func testLogger() *slog.Logger {
	if os.Getenv("KQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startBroker(t testing.TB, configure func(*config.Config)) *testBroker {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.DefaultPartitions = 1
	if configure != nil {
		configure(&cfg)
	}
	b := &testBroker{cfg: cfg}
	b.start(t)
	t.Cleanup(func() { b.stop(t) })
	return b
}

func (b *testBroker) start(t testing.TB) {
	t.Helper()
	listen := b.cfg.Listen
	if b.addr != "" {
		listen = b.addr // a restart keeps the port clients know
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	cfg := b.cfg
	cfg.Listen = b.addr
	cl, err := cluster.Open(cfg, clock.System{}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	b.cluster, b.server, b.done = cl, server.New(cl, testLogger()), make(chan error, 1)
	go func() { b.done <- b.server.Serve(ln) }()
}

func (b *testBroker) stop(t testing.TB) {
	t.Helper()
	if b.server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.server.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-b.done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if err := b.cluster.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	b.server = nil
}

// restart stops the broker cleanly and starts it again on the same port
// and data directory.
func (b *testBroker) restart(t testing.TB) {
	t.Helper()
	b.stop(t)
	b.start(t)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
