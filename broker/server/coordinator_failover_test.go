package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/group"
)

// TestGroupsSurviveTheirCoordinator: a group's coordinator is the leader
// of its partition of the replicated __consumer_offsets (another broker
// answers NOT_COORDINATOR). Its commits are answered once the in-sync
// replicas have them, so when the coordinator stops, the partition's new
// leader loads the group: every acknowledged commit is there, and a
// consumer of the group goes on from them, reading nothing twice.
func TestGroupsSurviveTheirCoordinator(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, fastCluster)
	seeds := addrs(brokers)
	ctx := testContext(t)
	client := newClient(t, seeds[0], kgo.SeedBrokers(seeds...))
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 3, 3, nil, "survivor"); err != nil {
		t.Fatal(err)
	}
	produceValues := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := client.ProduceSync(ctx, &kgo.Record{Topic: "survivor", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// consume reads n records as a member of the group, committing each
	// poll synchronously, and returns their values.
	consume := func(seeds []string, n int) map[string]int {
		t.Helper()
		member := newClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumerGroup("survivors"), kgo.ConsumeTopics("survivor"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		defer member.Close()
		seen := map[string]int{}
		for total := 0; total < n; {
			fetches := member.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("consumed %d of %d", total, n)
			}
			fetches.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++; total++ })
			if err := member.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		return seen
	}
	produceValues(0, 30)
	if seen := consume(seeds, 30); len(seen) != 30 {
		t.Fatalf("first member read %d distinct records, want 30", len(seen))
	}

	found := admin.FindGroupCoordinators(ctx, "survivors")["survivors"]
	if found.Err != nil {
		t.Fatal(found.Err)
	}
	coordinator := brokerByID(brokers, found.NodeID)
	offsets, _ := coordinator.Cluster.Topic(group.OffsetsTopic)
	partition := group.PartitionFor("survivors", int32(len(offsets.Partitions)))
	if state := offsets.Partitions[partition].State(); state.Leader != found.NodeID || len(state.ISR) != 3 {
		t.Fatalf("partition %d of %s: %+v; want broker %d (the coordinator) leading 3 in-sync replicas", partition, group.OffsetsTopic, state, found.NodeID)
	}
	var other *testBroker
	for _, b := range brokers {
		if b != coordinator {
			other = b
		}
	}
	fetch := kmsg.NewPtrOffsetFetchRequest() // franz-go sends v8+: groups in a list
	asked := kmsg.NewOffsetFetchRequestGroup()
	asked.Group = "survivors"
	fetch.Groups = append(fetch.Groups, asked)
	resp, err := fetch.RequestWith(ctx, client.Broker(int(other.Config.NodeID)))
	if err != nil || len(resp.Groups) != 1 || resp.Groups[0].ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("OffsetFetch at broker %d, not the coordinator (broker %d): %v, %+v; want NOT_COORDINATOR", other.Config.NodeID, found.NodeID, err, resp)
	}

	coordinator.Stop(t)
	var survivors []string
	for _, b := range brokers {
		if b != coordinator {
			survivors = append(survivors, b.Addr)
		}
	}
	after := kadm.NewClient(newClient(t, survivors[0], kgo.SeedBrokers(survivors...)))
	var committed kadm.OffsetResponses
	waitFor(t, "the group's commits at its new coordinator", 15*time.Second, func() bool {
		committed, err = after.FetchOffsets(ctx, "survivors")
		total := int64(0)
		committed.Each(func(o kadm.OffsetResponse) { total += o.At })
		return err == nil && total == 30
	})
	produceValues(30, 10)
	seen := consume(survivors, 10)
	for i := 30; i < 40; i++ {
		if seen[fmt.Sprint(i)] != 1 {
			t.Fatalf("after the coordinator stopped, the group read %v; want 30 to 39 once each, nothing before", seen)
		}
	}
	if len(seen) != 10 {
		t.Fatalf("after the coordinator stopped, the group read %d records (%v), want the 10 new ones", len(seen), seen)
	}
}
