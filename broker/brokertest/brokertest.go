// Package brokertest starts a real kqbroker (cluster, storage, listener)
// on a free loopback port with a temporary data directory, for tests in
// any package, as net/http/httptest does for HTTP servers.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
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
	// controller is the pre-opened controller listener of a cluster
	// member's first start; later starts listen on Config.ControllerListen.
	controller net.Listener
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
	if err := b.startE(); err != nil {
		t.Fatal(err)
	}
}

func (b *Broker) startE() error {
	listen := b.Config.Listen
	if b.Addr != "" {
		listen = b.Addr // a restart keeps the port clients know
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	b.Addr = ln.Addr().String()
	cfg := b.Config
	cfg.Listen = b.Addr
	controller := b.controller
	b.controller = nil
	if controller == nil && cfg.ControllerListen != "" {
		if controller, err = net.Listen("tcp", cfg.ControllerListen); err != nil {
			_ = ln.Close()
			return err
		}
	}
	cl, err := cluster.OpenWithController(cfg, clock.System{}, Logger(), controller)
	if err != nil {
		_ = ln.Close()
		return err
	}
	b.Cluster, b.server, b.done = cl, server.New(cl, Logger()), make(chan error, 1)
	go func() { b.done <- b.server.Serve(ln) }()
	return nil
}

// Stop shuts the broker down cleanly; it can be started again with Restart.
func (b *Broker) Stop(t testing.TB) {
	t.Helper()
	if b.server == nil {
		return
	}
	b.Cluster.Leave()
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

// StartCluster starts n brokers (node ids 1 to n) that together are the
// metadata quorum, each with its own data directory and loopback ports,
// and stops them when the test ends. They start at once: each waits for a
// majority of the quorum.
func StartCluster(t testing.TB, n int, configure func(*config.Config)) []*Broker {
	t.Helper()
	brokers := make([]*Broker, n)
	var voters []string
	for i := range brokers {
		controller, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := config.Default()
		cfg.NodeID = int32(i + 1)
		cfg.DataDir = t.TempDir()
		cfg.Listen = "127.0.0.1:0"
		cfg.DefaultPartitions = 1
		cfg.GroupInitialRebalanceDelayMs = 0
		cfg.ControllerListen = controller.Addr().String()
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, cfg.ControllerListen))
		brokers[i] = &Broker{Config: cfg, controller: controller}
	}
	for _, b := range brokers {
		b.Config.ControllerQuorumVoters = strings.Join(voters, ",")
		if configure != nil {
			configure(&b.Config)
		}
	}
	errs := make(chan error, n)
	for _, b := range brokers {
		go func() { errs <- b.startE() }()
	}
	for range brokers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, b := range brokers {
			b.Stop(t)
		}
	})
	return brokers
}

// JoinCluster starts one more broker (the next node id) that is not among
// the voters of brokers: it joins the metadata quorum as a non-voting
// member. It is stopped when the test ends.
func JoinCluster(t testing.TB, brokers []*Broker, configure func(*config.Config)) *Broker {
	t.Helper()
	controller, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := brokers[0].Config
	cfg.NodeID = int32(len(brokers) + 1)
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.ControllerListen = controller.Addr().String()
	if configure != nil {
		configure(&cfg)
	}
	b := &Broker{Config: cfg, controller: controller}
	b.start(t)
	t.Cleanup(func() { b.Stop(t) })
	return b
}
