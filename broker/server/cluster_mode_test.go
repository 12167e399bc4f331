package server_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

// TestThreeBrokersShareTheMetadata: three brokers are one metadata quorum.
// A topic created through any of them is known to all, its partitions are
// spread over the three (one replica each: replication comes next), every
// broker answers Metadata with all of them and sends clients to each
// partition's leader, and a broker that stops cleanly leaves service: the
// other two go on, and new partitions avoid it.
func TestThreeBrokersShareTheMetadata(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, func(c *config.Config) {
		c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 100, 1000
	})
	var seeds []string
	for _, b := range brokers {
		seeds = append(seeds, b.Addr)
	}
	ctx := testContext(t)
	client := newClient(t, brokers[2].Addr, kgo.SeedBrokers(seeds...))
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 6, 1, nil, "spread"); err != nil {
		t.Fatal(err)
	}
	// Every broker knows it (once it has applied the change), with the
	// same leaders.
	for _, b := range brokers {
		waitFor(t, "every broker to apply the new topic", 10*time.Second, func() bool { _, ok := b.Cluster.Topic("spread"); return ok })
	}
	leadersSeen := map[int32]bool{}
	for i, b := range brokers {
		topic, ok := b.Cluster.Topic("spread")
		if !ok || len(topic.Partitions) != 6 {
			t.Fatalf("broker %d does not know the topic", i+1)
		}
		for _, p := range topic.Partitions {
			leadersSeen[p.State().Leader] = true
			if hosted := p.Log != nil; hosted != (p.State().Leader == b.Config.NodeID) {
				t.Fatalf("broker %d partition %d: hosted %v, leader %d", i+1, p.Index, hosted, p.State().Leader)
			}
		}
	}
	if len(leadersSeen) != 3 {
		t.Fatalf("6 partitions led by %v, want all 3 brokers", leadersSeen)
	}
	meta, err := admin.Metadata(ctx, "spread")
	if err != nil || len(meta.Brokers) != 3 || meta.Controller < 1 {
		t.Fatalf("metadata: %v, %d brokers, controller %d", err, len(meta.Brokers), meta.Controller)
	}

	// franz-go sends each record to its partition's leader.
	producer := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("spread"))
	for i := range 300 {
		if err := producer.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	consumer := newClient(t, seeds[1], kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("spread"), kgo.ConsumerGroup("readers"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	for len(seen) < 300 {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of 300: %v", len(seen), err)
		}
		fetches.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	consumer.Close()

	// A broker that does not lead a partition says so.
	topic, _ := brokers[0].Cluster.Topic("spread")
	var notLed int32 = -1
	for _, p := range topic.Partitions {
		if p.State().Leader != 1 {
			notLed = p.Index
		}
	}
	direct := newClient(t, brokers[0].Addr, kgo.SeedBrokers(brokers[0].Addr))
	list := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "spread"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Partition, lp.Timestamp = notLed, -1
	lt.Partitions = append(lt.Partitions, lp)
	list.Topics = append(list.Topics, lt)
	listed, err := list.RequestWith(ctx, direct.Broker(1))
	if err != nil || listed.Topics[0].Partitions[0].ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("list offsets of a partition broker 1 does not lead: %v %+v, want NOT_LEADER_OR_FOLLOWER", err, listed)
	}

	// Broker 3 stops cleanly: the other two are still a majority, and it
	// stays out of service (its last heartbeats do not bring it back).
	brokers[2].Stop(t)
	waitFor(t, "broker 1 to see broker 3 leave", 10*time.Second, func() bool { return len(brokers[0].Cluster.Brokers()) == 2 })
	time.Sleep(500 * time.Millisecond) // 5 heartbeat intervals
	if b := brokers[0].Cluster.Brokers(); len(b) != 2 {
		t.Fatalf("broker 3 came back into service after it stopped: %+v", b)
	}
	survivor := newClient(t, seeds[0], kgo.SeedBrokers(seeds[:2]...))
	survivorAdmin := kadm.NewClient(survivor)
	if _, err := survivorAdmin.CreateTopic(ctx, 4, 1, nil, "after"); err != nil {
		t.Fatalf("creating a topic with one broker of three down: %v", err)
	}
	waitFor(t, "broker 1 to apply the topic", 10*time.Second, func() bool { _, ok := brokers[0].Cluster.Topic("after"); return ok })
	after, _ := brokers[0].Cluster.Topic("after")
	for _, p := range after.Partitions {
		if p.State().Leader == 3 {
			t.Fatalf("partition %d placed on the stopped broker 3", p.Index)
		}
	}
	meta, err = survivorAdmin.Metadata(ctx)
	if err != nil || len(meta.Brokers) != 2 || slices.Contains(meta.Brokers.NodeIDs(), 3) {
		t.Fatalf("metadata after broker 3 stopped: %v %v", err, meta.Brokers.NodeIDs())
	}
	afterProducer := newClient(t, seeds[0], kgo.SeedBrokers(seeds[:2]...), kgo.DefaultProduceTopic("after"))
	for i := range 20 {
		if err := afterProducer.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("producing with broker 3 down: %v", err)
		}
	}
}

// TestABrokerJoinsAsANonVoter: a fourth broker, not among the voters, joins
// the running cluster (scale out): it gets the metadata, is put in
// service, and new partitions are placed on it too and served there.
func TestABrokerJoinsAsANonVoter(t *testing.T) {
	fast := func(c *config.Config) { c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 100, 1000 }
	brokers := brokertest.StartCluster(t, 3, fast)
	fourth := brokertest.JoinCluster(t, brokers, fast)
	ctx := testContext(t)
	seeds := []string{brokers[0].Addr, fourth.Addr}
	admin := kadm.NewClient(newClient(t, seeds[0], kgo.SeedBrokers(seeds...)))
	meta, err := admin.Metadata(ctx)
	if err != nil || len(meta.Brokers) != 4 {
		t.Fatalf("metadata with the fourth broker: %v %v", err, meta.Brokers.NodeIDs())
	}
	if _, err := admin.CreateTopic(ctx, 8, 1, nil, "wider"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fourth broker to apply the topic", 10*time.Second, func() bool { _, ok := fourth.Cluster.Topic("wider"); return ok })
	topic, _ := fourth.Cluster.Topic("wider")
	onFourth := 0
	for _, p := range topic.Partitions {
		if p.State().Leader == 4 {
			onFourth++
		}
	}
	if onFourth != 2 {
		t.Fatalf("%d of 8 partitions on the fourth broker, want 2", onFourth)
	}
	producer := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic("wider"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	for i := range 16 {
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}
