package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/config"
)

// fastCluster is a cluster whose failures are noticed in about a second.
func fastCluster(c *config.Config) {
	c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 100, 1000
	c.ReplicaLagTimeMaxMs = 1000
}

// TestReplicatedTopic: a topic created without a replication factor on
// three brokers gets three replicas per partition and min.insync.replicas
// 2; acks=all records are on every replica, byte for byte; consumers read
// them from the leader; the leader's clean stop moves leadership to a
// follower that has every acknowledged record, and the stopped broker
// catches up and rejoins the ISR when it comes back.
func TestReplicatedTopic(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, fastCluster)
	seeds := addrs(brokers)
	ctx := testContext(t)
	client := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	admin := kadm.NewClient(client)
	created, err := admin.CreateTopic(ctx, 2, -1, nil, "replicated")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	for _, b := range brokers {
		waitFor(t, "every broker to apply the new topic", 10*time.Second, func() bool { _, ok := b.Cluster.Topic("replicated"); return ok })
	}
	configs, err := admin.DescribeTopicConfigs(ctx, "replicated")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := configs.On("replicated", nil); err != nil || !slices.ContainsFunc(c.Configs, func(e kadm.Config) bool {
		return e.Key == "min.insync.replicas" && e.MaybeValue() == "2"
	}) {
		t.Fatalf("min.insync.replicas of a topic with 3 replicas: %v %+v", err, c)
	}
	produce(t, client, "replicated", 0, 0, 100)
	meta, err := admin.ListTopics(ctx, "replicated")
	if err != nil {
		t.Fatal(err)
	}
	p0 := meta["replicated"].Partitions[0]
	if len(p0.Replicas) != 3 || len(p0.ISR) != 3 {
		t.Fatalf("partition 0: replicas %v, ISR %v; want 3 of each", p0.Replicas, p0.ISR)
	}
	waitIdentical(t, brokers, "replicated", 0)
	consumeExactly(t, seeds, "replicated", 0, 100)

	// The leader stops cleanly: a follower leads at a new epoch, with all.
	leader := brokerByID(brokers, p0.Leader)
	leader.Stop(t)
	survivors := slices.DeleteFunc(slices.Clone(brokers), func(b *brokertest.Broker) bool { return b == leader })
	waitFor(t, "a new leader of partition 0", 15*time.Second, func() bool {
		s := partitionOf(survivors[0], "replicated", 0).State()
		return s.Leader != p0.Leader && s.Leader != -1
	})
	produce(t, client, "replicated", 0, 100, 100)
	consumeExactly(t, addrs(survivors), "replicated", 0, 200)

	// It comes back, catches up, and is in sync again.
	leader.StartAgain(t)
	waitFor(t, "the restarted broker back in the ISR", 20*time.Second, func() bool {
		return slices.Contains(partitionOf(survivors[0], "replicated", 0).State().ISR, p0.Leader)
	})
	waitIdentical(t, brokers, "replicated", 0)
}

// TestMinInsyncReplicas: on a topic with min.insync.replicas=3, once a
// follower stops (and the controller takes it out of the ISR), acks=all is
// refused with NOT_ENOUGH_REPLICAS before anything is written, acks=1
// still appends, and consumers do not see those records until the ISR is
// back to min.insync.replicas (the high watermark waits, KIP-966).
func TestMinInsyncReplicas(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, fastCluster)
	seeds := addrs(brokers)
	ctx := testContext(t)
	client := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	admin := kadm.NewClient(client)
	three := "3"
	if _, err := admin.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &three}, "strict"); err != nil {
		t.Fatal(err)
	}
	produce(t, client, "strict", 0, 0, 10)
	waitIdentical(t, brokers, "strict", 0)
	state := partitionOf(brokers[0], "strict", 0).State()
	leader := brokerByID(brokers, state.Leader)
	follower := brokerByID(brokers, state.Replicas[1])
	follower.Stop(t)
	waitFor(t, "the ISR to shrink to two", 15*time.Second, func() bool { return len(partitionOf(leader, "strict", 0).State().ISR) == 2 })
	strict := newClient(t, leader.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(0), kgo.DisableIdempotentWrite())
	err := strict.ProduceSync(ctx, &kgo.Record{Topic: "strict", Partition: 0, Value: []byte("refused")}).FirstErr()
	if !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with the ISR below min.insync.replicas: %v, want NOT_ENOUGH_REPLICAS", err)
	}
	if end := partitionOf(leader, "strict", 0).Log.LogEndOffset(); end != 10 {
		t.Fatalf("the refused record was written: log end %d, want 10", end)
	}
	one := newClient(t, leader.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err := one.ProduceSync(ctx, &kgo.Record{Topic: "strict", Partition: 0, Value: []byte("acks=1")}).FirstErr(); err != nil {
		t.Fatalf("acks=1 with two in-sync replicas: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // the other follower fetches it meanwhile
	if hw := partitionOf(leader, "strict", 0).Log.HighWatermark(); hw != 10 {
		t.Fatalf("high watermark %d with the ISR below min.insync.replicas, want it held at 10", hw)
	}
	// The follower returns: the ISR is whole again and the record committed.
	follower.StartAgain(t)
	waitFor(t, "the high watermark to pass the acks=1 record", 20*time.Second, func() bool {
		return partitionOf(leader, "strict", 0).Log.HighWatermark() == 11
	})
	if err := strict.ProduceSync(ctx, &kgo.Record{Topic: "strict", Partition: 0, Value: []byte("accepted")}).FirstErr(); err != nil {
		t.Fatalf("acks=all with 3 in-sync replicas: %v", err)
	}
	waitIdentical(t, brokers, "strict", 0)
}

func addrs(brokers []*brokertest.Broker) []string {
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.Addr)
	}
	return seeds
}

func brokerByID(brokers []*brokertest.Broker, id int32) *brokertest.Broker {
	for _, b := range brokers {
		if b.Config.NodeID == id {
			return b
		}
	}
	return nil
}

func partitionOf(b *brokertest.Broker, topic string, index int32) *cluster.Partition {
	t, ok := b.Cluster.Topic(topic)
	if !ok || int(index) >= len(t.Partitions) {
		return &cluster.Partition{}
	}
	return t.Partitions[index]
}

// produce writes records from..from+n-1 ("record-i") to one partition,
// acks=all, each acknowledged before the next.
func produce(t *testing.T, client *kgo.Client, topic string, partition int32, from, n int) {
	t.Helper()
	ctx := testContext(t)
	for i := from; i < from+n; i++ {
		r := &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "record-%d", i)}
		if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce record %d: %v", i, err)
		}
	}
}

// consumeExactly reads the partition from the start and checks it holds
// record-0 .. record-(n-1), in order, once each.
func consumeExactly(t *testing.T, seeds []string, topic string, partition int32, n int) {
	t.Helper()
	ctx := testContext(t)
	consumer := newClient(t, seeds[0], kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	var got []string
	for len(got) < n {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records", len(got), n)
		}
		fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	for i, v := range got {
		if v != fmt.Sprintf("record-%d", i) {
			t.Fatalf("record at offset %d is %q", i, v)
		}
	}
	if len(got) != n {
		t.Fatalf("consumed %d records, want %d", len(got), n)
	}
}

// waitIdentical waits until every running broker's replica of the
// partition holds the same bytes up to the same end.
func waitIdentical(t *testing.T, brokers []*brokertest.Broker, topic string, index int32) {
	t.Helper()
	var last string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var first []byte
		same := true
		for i, b := range brokers {
			p := partitionOf(b, topic, index)
			if p.Log == nil {
				same, last = false, fmt.Sprintf("broker %d holds no replica", b.Config.NodeID)
				break
			}
			data, err := p.Log.AppendReadUpTo(nil, p.Log.LogStartOffset(), 64<<20, p.Log.LogEndOffset())
			if err != nil {
				same, last = false, err.Error()
				break
			}
			if i == 0 {
				first = data
			} else if !bytes.Equal(first, data) {
				same, last = false, fmt.Sprintf("broker %d has %d bytes, broker %d %d", brokers[0].Config.NodeID, len(first), b.Config.NodeID, len(data))
				break
			}
		}
		if same && len(first) > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the replicas of %s-%d differ: %s", topic, index, last)
}

// TestControlledShutdownMovesLeadership: a broker that stops cleanly hands
// its leaderships to in-sync followers before it closes its listener, so
// they move at once, long before its session would time out, and a
// producer goes on without losing a record.
func TestControlledShutdownMovesLeadership(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, func(c *config.Config) {
		c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 100, 60000 // only the shutdown itself can move leaders in time
	})
	seeds := addrs(brokers)
	ctx := testContext(t)
	client := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(50*time.Millisecond))
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 3, 3, nil, "rolling"); err != nil {
		t.Fatal(err)
	}
	produce(t, client, "rolling", 1, 0, 20)
	old := partitionOf(brokers[0], "rolling", 1).State()
	leader := brokerByID(brokers, old.Leader)
	leader.Stop(t)
	survivor := brokers[0]
	if survivor == leader {
		survivor = brokers[1]
	}
	waitFor(t, "the survivor to apply the handover", 2*time.Second, func() bool { return partitionOf(survivor, "rolling", 1).State().Leader != old.Leader })
	s := partitionOf(survivor, "rolling", 1).State()
	if s.Leader == old.Leader || s.Leader == -1 || s.LeaderEpoch != old.LeaderEpoch+1 || slices.Contains(s.ISR, old.Leader) {
		t.Fatalf("after the leader's clean stop: %+v (was %+v); want another leader at the next epoch, the stopped broker out of the ISR", s, old)
	}
	produce(t, client, "rolling", 1, 20, 20)
	var survivors []string
	for _, b := range brokers {
		if b != leader {
			survivors = append(survivors, b.Addr)
		}
	}
	consumeExactly(t, survivors, "rolling", 1, 40)
}

// TestProduceToAFollowerNamesTheLeader: a produce sent to a replica that
// does not lead gets NOT_LEADER_OR_FOLLOWER with the current leader, its
// epoch and its address (KIP-951, Produce v10+), so a client can go there
// without asking the metadata first.
func TestProduceToAFollowerNamesTheLeader(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, fastCluster)
	ctx := testContext(t)
	client := newClient(t, brokers[0].Addr, kgo.SeedBrokers(addrs(brokers)...))
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 1, 3, nil, "hinted"); err != nil {
		t.Fatal(err)
	}
	var state struct{ leader, epoch int32 }
	waitFor(t, "the topic everywhere", 10*time.Second, func() bool {
		for _, b := range brokers {
			if partitionOf(b, "hinted", 0).Log == nil {
				return false
			}
		}
		s := partitionOf(brokers[0], "hinted", 0).State()
		state.leader, state.epoch = s.Leader, s.LeaderEpoch
		return true
	})
	follower := brokers[0]
	if follower.Config.NodeID == state.leader {
		follower = brokers[1]
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 10, -1, 5000
	topic := kmsg.NewProduceRequestTopic()
	topic.Topic = "hinted"
	partition := kmsg.NewProduceRequestTopicPartition()
	partition.Records = recordBatchBytes(t)
	topic.Partitions = append(topic.Partitions, partition)
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, client.Broker(int(follower.Config.NodeID)))
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != kerr.NotLeaderForPartition.Code || p.CurrentLeader.LeaderID != state.leader || p.CurrentLeader.LeaderEpoch != state.epoch {
		t.Fatalf("answer from a follower: error %d, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming broker %d at epoch %d", p.ErrorCode, p.CurrentLeader, state.leader, state.epoch)
	}
	leader := brokerByID(brokers, state.leader)
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != state.leader || fmt.Sprintf("%s:%d", resp.Brokers[0].Host, resp.Brokers[0].Port) != leader.Addr {
		t.Fatalf("brokers in the answer: %+v, want the leader at %s", resp.Brokers, leader.Addr)
	}
}

// recordBatchBytes is one record batch as a producer sends it.
func recordBatchBytes(t *testing.T) []byte {
	t.Helper()
	r := kmsg.Record{Value: []byte("hint")}
	r.Length = int32(len(r.AppendTo(nil)) - 1)
	batch := kmsg.RecordBatch{Magic: 2, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1, Records: r.AppendTo(nil)}
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
