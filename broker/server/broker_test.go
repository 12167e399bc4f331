package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

// testBroker is a real broker on a free loopback port (see brokertest).
type testBroker = brokertest.Broker

// startBroker starts one with the server tests' defaults: auto-creation on,
// the Kafka-default initial rebalance delay unless a test changes it.
func startBroker(t testing.TB, configure func(*config.Config)) *testBroker {
	return brokertest.Start(t, func(c *config.Config) {
		c.GroupInitialRebalanceDelayMs = config.Default().GroupInitialRebalanceDelayMs
		if configure != nil {
			configure(c)
		}
	})
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// leaderOf is the client's connection to the leader of a partition, for
// requests a client sends to the leader itself (Fetch, raw): with
// KQ_TEST_BROKERS above 1 that is not always the bootstrap broker.
func leaderOf(t testing.TB, b *testBroker, client *kgo.Client, topic string, partition int32) *kgo.Broker {
	t.Helper()
	b.Sync(t)
	tp, ok := b.Cluster.Topic(topic)
	if !ok || int(partition) >= len(tp.Partitions) {
		t.Fatalf("no partition %s-%d", topic, partition)
	}
	return client.Broker(int(tp.Partitions[partition].State().Leader))
}
