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
	"strconv"
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
	// Peers are the other brokers of the cluster Start started when
	// KQ_TEST_BROKERS is above 1.
	Peers  []*Broker
	server *server.Server
	done   chan error
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
//
// With KQ_TEST_BROKERS=n (n > 1) it starts a cluster of n brokers instead
// (StartCluster, so topics get min(3, n) replicas) and returns the first:
// a test written for one broker then runs against a cluster through the
// same bootstrap address. Peers are the others.
func Start(t testing.TB, configure func(*config.Config)) *Broker {
	t.Helper()
	if n := ClusterSize(); n > 1 {
		brokers := StartCluster(t, n, configure)
		brokers[0].Peers = brokers[1:]
		return brokers[0]
	}
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

// StartForExample starts one broker with Start's defaults in a temporary
// data directory, for a runnable Example (which has no testing.TB); stop
// shuts it down and removes the directory.
func StartForExample() (addr string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "kqbroker-example-")
	if err != nil {
		return "", nil, err
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.DefaultPartitions, cfg.GroupInitialRebalanceDelayMs = dir, "127.0.0.1:0", 1, 0
	b := &Broker{Config: cfg}
	if err := b.startE(); err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return b.Addr, func() {
		b.Cluster.Leave()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.server.Shutdown(ctx)
		<-b.done
		_ = b.Cluster.Close()
		_ = os.RemoveAll(dir)
	}, nil
}

// ClusterSize is KQ_TEST_BROKERS: how many brokers Start starts (1 when
// unset).
func ClusterSize() int {
	n, err := strconv.Atoi(os.Getenv("KQ_TEST_BROKERS"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// SingleBroker skips a test that is about one broker by nature (its data
// directory, its process) when Start runs clusters; why says what the
// test checks that a cluster cannot. The same test runs in the
// single-broker suite.
func SingleBroker(t testing.TB, why string) {
	t.Helper()
	if ClusterSize() > 1 {
		t.Skipf("KQ_TEST_BROKERS=%d: %s; the single-broker run covers it", ClusterSize(), why)
	}
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

// Server is the broker's Kafka server (nil while it is stopped).
func (b *Broker) Server() *server.Server { return b.server }

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
	// Each is in service once the controller saw its heartbeat: wait for
	// every broker to know them all, so a topic of n replicas can be
	// created at once.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ready := true
		for _, b := range brokers {
			ready = ready && len(b.Cluster.Brokers()) == n
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d brokers were not all in service within 10 s", n)
		}
	}
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

// Sync waits until every running broker of b's cluster has applied the
// metadata the quorum committed, as a Kafka test waits for a new topic to reach every
// broker: a change answered by one broker reaches the others a moment
// later. With one broker it returns at once.
func (b *Broker) Sync(t testing.TB) {
	t.Helper()
	all := append([]*Broker{b}, b.Peers...)
	var index uint64 // the quorum leader's is the highest
	for _, peer := range all {
		if peer.server != nil {
			index = max(index, peer.Cluster.QuorumStats().CommitIndex)
		}
	}
	for _, peer := range all {
		deadline := time.Now().Add(10 * time.Second)
		for peer.server != nil && peer.Cluster.QuorumStats().AppliedIndex < index {
			if time.Now().After(deadline) {
				t.Fatalf("broker %d did not apply metadata index %d within 10 s", peer.Config.NodeID, index)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// StopAll stops b and its peers: the whole cluster goes away, as one
// broker does without KQ_TEST_BROKERS.
func (b *Broker) StopAll(t testing.TB) {
	t.Helper()
	for _, peer := range append([]*Broker{b}, b.Peers...) {
		peer.Stop(t)
	}
}

// StartAllAgain starts b and its peers again on their ports and data
// directories, together: each waits for a majority of the quorum.
func (b *Broker) StartAllAgain(t testing.TB) {
	t.Helper()
	all := append([]*Broker{b}, b.Peers...)
	errs := make(chan error, len(all))
	for _, peer := range all {
		go func() { errs <- peer.startE() }()
	}
	for range all {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
