package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

// TestClusterAndReplicasAsKafkaToolsShowThem: on three brokers, topic
// describe shows each partition's leader, epoch, replicas, ISR and offline
// replicas as kafka-topics.sh --describe does, and cluster describe shows
// the controller, a stopped broker as fenced and the partitions it leaves
// under-replicated.
func TestClusterAndReplicasAsKafkaToolsShowThem(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, func(c *config.Config) {
		c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 100, 1000
		c.AutoLeaderRebalanceEnable = false // the test elects them back itself
	})
	kqctl := kqctlAt(brokers[0].Addr + "," + brokers[1].Addr)
	if code, out, errOut := kqctl("", "topic", "create", "orders", "-p", "2", "-r", "3"); code != 0 || !strings.Contains(out, "created topic orders") {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	// Every broker applies the new topic a moment after the one that
	// created it: wait for all, as a script after kafka-topics.sh --create
	// might.
	for _, b := range brokers {
		for _, ok := b.Cluster.Topic("orders"); !ok; _, ok = b.Cluster.Topic("orders") {
			time.Sleep(10 * time.Millisecond)
		}
	}
	code, out, errOut := kqctl("", "topic", "describe", "orders")
	if code != 0 || !strings.Contains(out, "ReplicationFactor: 3") || !strings.Contains(out, "min.insync.replicas=2") || !regexp.MustCompile(`(?m)^0\s+\d\s+0\s+[123],[123],[123]\s+[123],[123],[123]\s+-\s`).MatchString(out) {
		t.Fatalf("describe: %d %q %q", code, out, errOut)
	}
	brokers[2].Stop(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, errOut = kqctl("", "cluster", "describe")
		if code == 0 && regexp.MustCompile(`(?m)^3\s.*fenced`).MatchString(out) && strings.Contains(out, "(2 under-replicated, 0 offline)") && strings.Contains(out, "controller") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster describe with broker 3 stopped: %d %q %q", code, out, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, out, errOut = kqctl("", "topic", "describe", "orders")
	if code != 0 || !regexp.MustCompile(`(?m)^0\s+[12]\s+\d+\s+[123],[123],[123]\s+[12],[12]\s+3\s`).MatchString(out) {
		t.Fatalf("describe with broker 3 stopped: %d %q %q", code, out, errOut)
	}

	// Broker 3 comes back and catches up; the partitions it preferred to
	// lead are led by others until their leaders are elected again.
	brokers[2].StartAgain(t)
	for {
		code, out, _ = kqctl("", "cluster", "describe")
		if code == 0 && strings.Contains(out, "(0 under-replicated, 0 offline)") {
			break
		}
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("the ISRs did not heal: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, out, errOut = kqctl("", "partition", "elect-leaders", "--topic", "orders")
	if code != 0 || !strings.Contains(out, "of 2 partitions' leaders") {
		t.Fatalf("elect-leaders: %d %q %q", code, out, errOut)
	}
	topic, _ := brokers[0].Cluster.Topic("orders")
	for _, p := range topic.Partitions {
		if s := p.State(); s.Leader != s.Replicas[0] {
			t.Fatalf("partition %d after elect-leaders: leader %d, preferred %d", p.Index, s.Leader, s.Replicas[0])
		}
	}
	code, out, _ = kqctl("", "partition", "elect-leaders", "--topic", "orders", "-p", "0")
	if code != 0 || !strings.Contains(out, "elected 0 of 1") || !strings.Contains(out, "leads already") {
		t.Fatalf("elect-leaders when the preferred replica leads: %d %q", code, out)
	}
}
