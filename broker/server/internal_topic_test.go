package server_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
