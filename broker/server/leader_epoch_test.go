package server_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLeaderEpochsOnTheWire: what KIP-320 clients (franz-go, the Java
// consumer, librdkafka) ask about leader epochs: OffsetForLeaderEpoch to
// check their position after a leader change, the current leader epoch
// in Fetch and ListOffsets, the epoch in Metadata.
func TestLeaderEpochsOnTheWire(t *testing.T) {
	b := startBroker(t, nil)
	ctx := testContext(t)
	client := newClient(t, b.Addr, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("epochs"))
	for range 5 {
		if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	metadata := kmsg.NewPtrMetadataRequest()
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr("epochs")
	metadata.Topics = append(metadata.Topics, topic)
	meta, err := metadata.RequestWith(ctx, client)
	if err != nil || len(meta.Topics) != 1 || meta.Topics[0].Partitions[0].LeaderEpoch != 0 {
		t.Fatalf("metadata: %v %+v", err, meta)
	}

	askEpoch := func(current, epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "epochs"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.CurrentLeaderEpoch, rp.LeaderEpoch = current, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	if p := askEpoch(0, 0); p.ErrorCode != 0 || p.LeaderEpoch != 0 || p.EndOffset != 5 {
		t.Fatalf("epoch 0: %+v, want epoch 0 ending at the log end 5", p)
	}
	if p := askEpoch(-1, 3); p.ErrorCode != 0 || p.LeaderEpoch != -1 || p.EndOffset != -1 {
		t.Fatalf("an epoch newer than any: %+v, want (-1, -1)", p)
	}
	if p := askEpoch(4, 0); p.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("a current epoch ahead of the broker: %+v, want UNKNOWN_LEADER_EPOCH", p)
	}

	list := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "epochs"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp, lp.CurrentLeaderEpoch = -1, 0
	lt.Partitions = append(lt.Partitions, lp)
	list.Topics = append(list.Topics, lt)
	listed, err := list.RequestWith(ctx, client)
	if err != nil || listed.Topics[0].Partitions[0].ErrorCode != 0 || listed.Topics[0].Partitions[0].Offset != 5 || listed.Topics[0].Partitions[0].LeaderEpoch != 0 {
		t.Fatalf("list offsets: %v %+v", err, listed)
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxWaitMillis, fetch.MaxBytes = 10, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "epochs", meta.Topics[0].TopicID // the client sends v13: by id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.CurrentLeaderEpoch, fp.FetchOffset, fp.PartitionMaxBytes = 7, 0, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fetched, err := fetch.RequestWith(ctx, leaderOf(t, b, client, "epochs", 0))
	if err != nil || fetched.Topics[0].Partitions[0].ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("fetch with a current epoch ahead of the broker: %v %+v, want UNKNOWN_LEADER_EPOCH", err, fetched)
	}
}
