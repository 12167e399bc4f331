package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	// The broker that answered applied the elections; this one may be a
	// moment behind.
	for preferred := false; !preferred; {
		preferred = true
		topic, _ := brokers[0].Cluster.Topic("orders")
		for _, p := range topic.Partitions {
			if s := p.State(); s.Leader != s.Replicas[0] {
				preferred = false
				if time.Now().After(deadline.Add(30 * time.Second)) {
					t.Fatalf("partition %d after elect-leaders: leader %d, preferred %d", p.Index, s.Leader, s.Replicas[0])
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, out, _ = kqctl("", "partition", "elect-leaders", "--topic", "orders", "-p", "0")
	if code != 0 || !strings.Contains(out, "elected 0 of 1") || !strings.Contains(out, "leads already") {
		t.Fatalf("elect-leaders when the preferred replica leads: %d %q", code, out)
	}
}

// TestScaleOutProcedure is the documented way to add a broker: start it
// with the voters' list (it joins as a non-voting member), check it is in
// service, move partitions onto it with a plan, watch the reassignments
// finish, and elect the preferred leaders.
func TestScaleOutProcedure(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, func(c *config.Config) {
		c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 100, 1000
	})
	kqctl := kqctlAt(brokers[0].Addr)
	if code, out, errOut := kqctl("", "topic", "create", "orders", "-p", "3", "-r", "2"); code != 0 {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	if code, out, errOut := kqctl("a\nb\nc\nd\ne\nf\n", "produce", "orders"); code != 0 {
		t.Fatalf("produce: %d %q %q", code, out, errOut)
	}
	brokertest.JoinCluster(t, brokers, nil)
	deadline := time.Now().Add(10 * time.Second)
	for code, out, _ := kqctl("", "cluster", "describe"); code != 0 || !regexp.MustCompile(`(?m)^4\s.*in service`).MatchString(out); code, out, _ = kqctl("", "cluster", "describe") {
		if time.Now().After(deadline) {
			t.Fatalf("broker 4 not in service: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[4,1]},{"topic":"orders","partition":1,"replicas":[4,2]},{"topic":"orders","partition":2,"replicas":[4,3]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := kqctl("", "partition", "reassign", "--file", plan); code != 0 || strings.Count(out, "reassignment started") != 3 {
		t.Fatalf("reassign: %d %q %q", code, out, errOut)
	}
	for code, out, _ := kqctl("", "partition", "reassignments"); code != 0 || !strings.Contains(out, "no reassignment in progress"); code, out, _ = kqctl("", "partition", "reassignments") {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("reassignments did not finish: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	kqctl("", "partition", "elect-leaders", "--topic", "orders")
	// Every broker applies the last changes a moment after the one asked.
	for {
		code, out, errOut := kqctl("", "topic", "describe", "orders", "-o", "json")
		var described struct {
			Partitions []struct {
				Leader   int32   `json:"leader"`
				Replicas []int32 `json:"replicas"`
			} `json:"partition_details"`
			Records int `json:"records"`
		}
		if err := json.Unmarshal([]byte(out), &described); code != 0 || err != nil {
			t.Fatalf("describe: %d %v %q %q", code, err, out, errOut)
		}
		moved := described.Records == 6
		for i, p := range described.Partitions {
			moved = moved && p.Leader == 4 && slices.Equal(p.Replicas, []int32{4, int32(i + 1)})
		}
		if moved {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("after the moves and elect-leaders: %q; want broker 4 leading [4 N] for partition N-1", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, out, _ := kqctl("", "partition", "reassign", "orders", "-p", "0", "--cancel"); code != 0 || !strings.Contains(out, "NO_REASSIGNMENT_IN_PROGRESS") {
		t.Fatalf("cancel with nothing in progress: %d %q", code, out)
	}
}

// TestVerbsWithABrokerDown: an operator lists every broker of a cluster
// in --bootstrap-server, and one of them is down: every verb still answers
// (requests that may go to any broker find a live one), each time.
func TestVerbsWithABrokerDown(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, func(c *config.Config) {
		c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 100, 1000
	})
	all := brokers[0].Addr + "," + brokers[1].Addr + "," + brokers[2].Addr
	kqctl := kqctlAt(all)
	if code, _, errOut := kqctl("", "topic", "create", "orders", "-p", "3", "-r", "3"); code != 0 {
		t.Fatalf("create: %d %q", code, errOut)
	}
	if code, _, errOut := kqctl("a\nb\nc\n", "produce", "orders"); code != 0 {
		t.Fatalf("produce: %d %q", code, errOut)
	}
	if code, _, errOut := kqctl("", "consume", "orders", "-g", "billing", "--from", "earliest", "-n", "3"); code != 0 {
		t.Fatalf("consume: %d %q", code, errOut)
	}
	// Broker 3, not 1: until groups live in a replicated topic, broker 1
	// coordinates them all.
	brokers[2].Stop(t)
	for i := range 8 {
		for _, args := range [][]string{{"group", "describe", "billing"}, {"group", "list"}, {"topic", "describe", "orders"}, {"cluster", "describe"}} {
			if code, out, errOut := kqctl("", args...); code != 0 {
				t.Fatalf("try %d, %v with broker 3 down: %d %q %q", i, args, code, out, errOut)
			}
		}
	}
}
