package server_test

import (
	"context"
	"testing"
	"time"

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
