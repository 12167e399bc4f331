package server_test

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

// TestMovePartitionsOntoANewBroker is the scale-out procedure: a fourth
// broker joins (a non-voting member of the metadata quorum), partitions
// are reassigned onto it with AlterPartitionReassignments, it copies them
// from their leaders, and once in sync the replicas they left delete their
// copies. Then a partition of one replica grows to three, and a
// reassignment is cancelled.
func TestMovePartitionsOntoANewBroker(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, fastCluster)
	ctx := testContext(t)
	client := newClient(t, brokers[0].Addr, kgo.SeedBrokers(addrs(brokers)...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 2, 2, nil, "moving"); err != nil {
		t.Fatal(err)
	}
	produce(t, client, "moving", 0, 0, 50)
	fourth := brokertest.JoinCluster(t, brokers, fastCluster)
	all := append(slices.Clone(brokers), fourth)
	waitFor(t, "the fourth broker in service", 10*time.Second, func() bool { return len(brokers[0].Cluster.Brokers()) == 4 })

	before := partitionOf(brokers[0], "moving", 0).State()
	leaving := before.Replicas[1]
	target := []int32{before.Replicas[0], 4}
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("moving", 0, target)
	resp, err := admin.AlterPartitionAssignments(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("reassign: %v", err)
	}
	waitFor(t, "the reassignment to finish", 20*time.Second, func() bool {
		listed, err := admin.ListPartitionReassignments(ctx, nil)
		return err == nil && len(listed) == 0 && slices.Equal(partitionOf(brokers[0], "moving", 0).State().Replicas, target)
	})
	waitFor(t, "the new replica in the ISR", 10*time.Second, func() bool {
		return slices.Contains(partitionOf(brokers[0], "moving", 0).State().ISR, 4)
	})
	var holders []*brokertest.Broker
	for _, b := range all {
		if slices.Contains(target, b.Config.NodeID) {
			holders = append(holders, b)
		}
	}
	waitIdentical(t, holders, "moving", 0)
	old := brokerByID(all, leaving)
	waitFor(t, "the replica that left to delete its copy", 10*time.Second, func() bool {
		_, err := os.Stat(old.Config.DataDir + "/moving-0")
		return partitionOf(old, "moving", 0).Log == nil && os.IsNotExist(err)
	})
	produce(t, client, "moving", 0, 50, 10)
	consumeExactly(t, []string{fourth.Addr}, "moving", 0, 60)

	// A partition of one replica grows to three: acks=all then waits for
	// all three, and they end up the same.
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "growing"); err != nil {
		t.Fatal(err)
	}
	produce(t, client, "growing", 0, 0, 20)
	first := partitionOf(brokers[0], "growing", 0).State().Replicas[0]
	grown := []int32{first}
	var growers []*brokertest.Broker
	for _, b := range all {
		if b.Config.NodeID == first {
			growers = append(growers, b)
		} else if len(grown) < 3 {
			grown = append(grown, b.Config.NodeID)
			growers = append(growers, b)
		}
	}
	req = nil
	req.Assign("growing", 0, grown)
	if resp, err := admin.AlterPartitionAssignments(ctx, req); err != nil || resp.Error() != nil {
		t.Fatalf("grow: %v %v", err, resp.Error())
	}
	waitFor(t, "three replicas in sync", 20*time.Second, func() bool {
		s := partitionOf(brokers[0], "growing", 0).State()
		return len(s.Replicas) == 3 && len(s.ISR) == 3 && len(s.Adding) == 0
	})
	produce(t, client, "growing", 0, 20, 20)
	waitIdentical(t, growers, "growing", 0)
	consumeExactly(t, addrs(all), "growing", 0, 40)

	// Bad targets and cancelling.
	req = nil
	req.Assign("growing", 0, []int32{1, 1})
	if resp, _ := admin.AlterPartitionAssignments(ctx, req); !errors.Is(resp.Error(), kerr.InvalidReplicaAssignment) {
		t.Fatalf("a broker twice: %v", resp.Error())
	}
	req = nil
	req.Assign("growing", 0, []int32{1, 9})
	if resp, _ := admin.AlterPartitionAssignments(ctx, req); !errors.Is(resp.Error(), kerr.InvalidReplicaAssignment) {
		t.Fatalf("an unknown broker: %v", resp.Error())
	}
	req = nil
	req.Assign("growing", 0, nil)
	if resp, _ := admin.AlterPartitionAssignments(ctx, req); !errors.Is(resp.Error(), kerr.NoReassignmentInProgress) {
		t.Fatalf("cancel with none in progress: %v", resp.Error())
	}
}

// TestReassignmentIsThrottled: a broker with
// reassignment_throttle_bytes_per_sec copies a partition moved onto it no
// faster than that, and still catches up and joins the ISR.
func TestReassignmentIsThrottled(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, fastCluster)
	ctx := testContext(t)
	client := newClient(t, brokers[0].Addr, kgo.SeedBrokers(addrs(brokers)...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "throttled"); err != nil {
		t.Fatal(err)
	}
	value := make([]byte, 10<<10)
	for i := range value {
		value[i] = byte(i * 7919 % 251)
	}
	for range 30 { // 300 KiB
		if err := client.ProduceSync(ctx, &kgo.Record{Topic: "throttled", Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	const rate = 100 << 10 // 100 KiB/s: the copy takes about two seconds past the first second's worth
	fourth := brokertest.JoinCluster(t, brokers, func(c *config.Config) {
		fastCluster(c)
		c.ReassignmentThrottleBytesPerSec = rate
	})
	waitFor(t, "the fourth broker in service", 10*time.Second, func() bool { return len(brokers[0].Cluster.Brokers()) == 4 })
	replicas := append(slices.Clone(partitionOf(brokers[0], "throttled", 0).State().Replicas), 4)
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("throttled", 0, replicas)
	started := time.Now()
	if resp, err := admin.AlterPartitionAssignments(ctx, req); err != nil || resp.Error() != nil {
		t.Fatalf("reassign: %v %v", err, resp.Error())
	}
	waitFor(t, "the throttled replica in the ISR", 30*time.Second, func() bool {
		return slices.Contains(partitionOf(brokers[0], "throttled", 0).State().ISR, 4)
	})
	took := time.Since(started)
	size := partitionOf(fourth, "throttled", 0).Log.Size()
	t.Logf("copied %d bytes in %v at a throttle of %d bytes/s", size, took.Round(10*time.Millisecond), rate)
	if minimum := time.Duration(float64(size-rate) / rate * float64(time.Second)); took < minimum*8/10 {
		t.Fatalf("copied %d bytes in %v: faster than the throttle allows (at least %v)", size, took, minimum)
	}
}
