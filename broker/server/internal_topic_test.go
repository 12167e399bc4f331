package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/group"
)

// TestConsumerOffsetsIsAnInternalTopic: as in Kafka, __consumer_offsets
// appears at the first FindCoordinator, is listed as internal, can be read
// by any client (a commit is there, in Kafka's record format, on its
// group's partition), and cannot be produced to, created or deleted.
func TestConsumerOffsetsIsAnInternalTopic(t *testing.T) {
	b := groupBroker(t)
	ctx := testContext(t)
	client := newClient(t, b.Addr)
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 1, -1, nil, "paid"); err != nil {
		t.Fatal(err)
	}
	b.Sync(t)
	var commit kadm.Offsets
	commit.Add(kadm.Offset{Topic: "paid", Partition: 0, At: 7, LeaderEpoch: -1})
	if err := admin.CommitAllOffsets(ctx, "auditors", commit); err != nil {
		t.Fatal(err)
	}
	b.Sync(t)
	topics, err := kadm.NewClient(newClient(t, b.Addr)).ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	offsets := topics[group.OffsetsTopic]
	if !offsets.IsInternal || len(offsets.Partitions) != 50 {
		t.Fatalf("%s in Metadata: internal %v, %d partitions; want internal, 50", group.OffsetsTopic, offsets.IsInternal, len(offsets.Partitions))
	}

	partition := group.PartitionFor("auditors", 50)
	reader := newClient(t, b.Addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{group.OffsetsTopic: {partition: kgo.NewOffset().AtStart()}}))
	found := false
	for !found {
		fetches := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no offset commit of auditors on partition %d of %s", partition, group.OffsetsTopic)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var key kmsg.OffsetCommitKey
			var value kmsg.OffsetCommitValue
			if key.ReadFrom(r.Key) == nil && key.Version <= 1 && key.Group == "auditors" && value.ReadFrom(r.Value) == nil {
				found = key.Topic == "paid" && key.Partition == 0 && value.Offset == 7
			}
		})
	}

	produced := client.ProduceSync(ctx, &kgo.Record{Topic: group.OffsetsTopic, Value: []byte("x")}).FirstErr()
	if !errors.Is(produced, kerr.InvalidTopicException) {
		t.Errorf("producing to %s: %v, want INVALID_TOPIC_EXCEPTION", group.OffsetsTopic, produced)
	}
	if deleted, _ := admin.DeleteTopics(ctx, group.OffsetsTopic); !errors.Is(deleted[group.OffsetsTopic].Err, kerr.InvalidTopicException) {
		t.Errorf("deleting %s: %v, want INVALID_TOPIC_EXCEPTION", group.OffsetsTopic, deleted[group.OffsetsTopic].Err)
	}
	if created, _ := admin.CreateTopic(ctx, 1, 1, nil, group.OffsetsTopic); !errors.Is(created.Err, kerr.InvalidTopicException) && !errors.Is(created.Err, kerr.TopicAlreadyExists) {
		t.Errorf("creating %s: %v, want it refused", group.OffsetsTopic, created.Err)
	}
}

// TestConsumerOffsetsIsCompacted: __consumer_offsets has Kafka's
// cleanup.policy=compact, so the log cleaner keeps the last commit of each
// group and partition and the topic's size follows the live groups; the
// group's offset is the same after it.
func TestConsumerOffsetsIsCompacted(t *testing.T) {
	b := startBroker(t, func(c *config.Config) {
		c.GroupInitialRebalanceDelayMs = 0
		c.Log.CheckIntervalMs = 100
	})
	ctx := testContext(t)
	client := newClient(t, b.Addr)
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 1, -1, nil, "audited"); err != nil {
		t.Fatal(err)
	}
	b.Sync(t)
	commit := func(offset int64) {
		t.Helper()
		var o kadm.Offsets
		o.Add(kadm.Offset{Topic: "audited", Partition: 0, At: offset, LeaderEpoch: -1})
		if err := admin.CommitAllOffsets(ctx, "auditors", o); err != nil {
			t.Fatal(err)
		}
	}
	commit(0)
	configs, err := admin.DescribeTopicConfigs(ctx, group.OffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	if policy, err := configs.On(group.OffsetsTopic, nil); err != nil || !hasConfig(policy.Configs, "cleanup.policy", "compact") {
		t.Fatalf("%s's configs: %+v %v; want cleanup.policy=compact", group.OffsetsTopic, policy.Configs, err)
	}
	// Small segments, so that closed ones pile up to be cleaned.
	if _, err := admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: kadm.StringPtr("1024")}}, group.OffsetsTopic); err != nil {
		t.Fatal(err)
	}
	b.Sync(t)
	const commits = 300
	for i := int64(1); i <= commits; i++ {
		commit(i)
	}
	partition := group.PartitionFor("auditors", 50)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		n := offsetRecordsOf(t, ctx, b.Addr, partition, "auditors")
		if n < commits/4 {
			t.Logf("%d commits, %d records of them left on partition %d after cleaning", commits+1, n, partition)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records of %d commits are still on partition %d of %s", n, commits+1, partition, group.OffsetsTopic)
		}
	}
	fetched, err := admin.FetchOffsets(ctx, "auditors")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := fetched.Lookup("audited", 0); !ok || o.At != commits {
		t.Fatalf("auditors' offset after cleaning: %+v, want %d", o, commits)
	}

	// A topic made before it was compacted (no cleanup.policy) is given
	// the policy.
	if _, err := admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "cleanup.policy"}}, group.OffsetsTopic); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		kadm.NewClient(newClient(t, b.Addr)).FindGroupCoordinators(ctx, "auditors") // a broker alone looks at a FindCoordinator
		configs, err := admin.DescribeTopicConfigs(ctx, group.OffsetsTopic)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := configs.On(group.OffsetsTopic, nil); err == nil && hasConfig(c.Configs, "cleanup.policy", "compact") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still not compacted 10s after its cleanup.policy was removed", group.OffsetsTopic)
		}
	}
}

func hasConfig(configs []kadm.Config, key, value string) bool {
	for _, c := range configs {
		if c.Key == key && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// offsetRecordsOf counts the offset commit records of groupID on a
// partition of __consumer_offsets, read from its start to its end.
func offsetRecordsOf(t *testing.T, ctx context.Context, addr string, partition int32, groupID string) int {
	t.Helper()
	client := newClient(t, addr)
	ends, err := kadm.NewClient(client).ListEndOffsets(ctx, group.OffsetsTopic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(group.OffsetsTopic, partition)
	reader := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{group.OffsetsTopic: {partition: kgo.NewOffset().AtStart()}}))
	defer reader.Close()
	n := 0
	for last := int64(-1); last < end.Offset-1; {
		fetches := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading partition %d of %s: %v", partition, group.OffsetsTopic, ctx.Err())
		}
		fetches.EachRecord(func(r *kgo.Record) {
			last = r.Offset
			var key kmsg.OffsetCommitKey
			if key.ReadFrom(r.Key) == nil && key.Version <= 1 && key.Group == groupID {
				n++
			}
		})
	}
	return n
}
