package server_test

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kqstack/kqstack/broker/config"
)

// TestProtocolDetails sends hand-built kmsg requests through a franz-go
// client to check behaviour clients rely on.
func TestProtocolDetails(t *testing.T) {
	b := startBroker(t, func(c *config.Config) { c.Log.MaxMessageBytes = 4096 })
	ctx := testContext(t)
	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i, ts := range []int64{5000, 9000, 7000} {
		r := &kgo.Record{Topic: "details", Value: []byte{byte(i)}, Timestamp: time.UnixMilli(ts)}
		if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	topicID := [16]byte{}
	if meta, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, client); err == nil {
		for _, mt := range meta.Topics {
			if *mt.Topic == "details" {
				topicID = mt.TopicID
			}
		}
	}
	leader := leaderOf(t, b, client, "details", 0)
	fetch := func(version int16, offset int64, maxWait int32) *kmsg.FetchResponseTopicPartition {
		req := kmsg.NewPtrFetchRequest()
		req.Version, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = version, maxWait, 1, 1<<20
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "details", topicID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes = offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, leader)
		if err != nil {
			t.Fatal(err)
		}
		return &resp.Topics[0].Partitions[0]
	}
	t.Run("fetch beyond the end is OFFSET_OUT_OF_RANGE", func(t *testing.T) {
		if p := fetch(11, 99, 0); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.HighWatermark != 3 {
			t.Fatalf("error %d, high watermark %d", p.ErrorCode, p.HighWatermark)
		}
	})
	t.Run("fetch v13 by topic id", func(t *testing.T) {
		if p := fetch(13, 0, 0); p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
			t.Fatalf("error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
		}
	})
	t.Run("a long poll is woken by an append", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			client.Produce(ctx, &kgo.Record{Topic: "details", Value: []byte("late"), Timestamp: time.UnixMilli(6000)}, nil)
		}()
		start := time.Now()
		p := fetch(12, 3, 10_000)
		if waited := time.Since(start); len(p.RecordBatches) == 0 || waited < 150*time.Millisecond || waited > 5*time.Second {
			t.Fatalf("long poll returned %d bytes after %v", len(p.RecordBatches), waited)
		}
	})
	t.Run("a long poll with nothing arriving returns at max wait", func(t *testing.T) {
		start := time.Now()
		p := fetch(12, 4, 300)
		if waited := time.Since(start); len(p.RecordBatches) != 0 || waited < 250*time.Millisecond || waited > 3*time.Second {
			t.Fatalf("returned %d bytes after %v", len(p.RecordBatches), waited)
		}
	})
	t.Run("ListOffsets v0 answers the old list of offsets", func(t *testing.T) {
		// As Burrow 1.2 asks, whatever Kafka version it is told.
		old, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.MaxVersions(kversion.V0_10_0()))
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		list := func(cl *kgo.Client, timestamp int64) kmsg.ListOffsetsResponseTopicPartition {
			t.Helper()
			req := kmsg.NewPtrListOffsetsRequest()
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = "details"
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp, rp.MaxNumOffsets = timestamp, 1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			return resp.Topics[0].Partitions[0]
		}
		for _, timestamp := range []int64{-1, -2} {
			want := list(client, timestamp).Offset
			p := list(old, timestamp)
			if p.ErrorCode != 0 || len(p.OldStyleOffsets) != 1 || p.OldStyleOffsets[0] != want {
				t.Fatalf("timestamp %d: error %d, offsets %v; want [%d]", timestamp, p.ErrorCode, p.OldStyleOffsets, want)
			}
		}
	})
	t.Run("ListOffsets -3 finds the largest timestamp", func(t *testing.T) {
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 7
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "details"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp = -3
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, client)
		if err != nil {
			t.Fatal(err)
		}
		if p := resp.Topics[0].Partitions[0]; p.Offset != 1 || p.Timestamp != 9000 {
			t.Fatalf("max timestamp at offset %d, %d; want 1, 9000", p.Offset, p.Timestamp)
		}
	})
	t.Run("a batch over max.message.bytes is MESSAGE_TOO_LARGE", func(t *testing.T) {
		incompressible := make([]byte, 8000)
		_, _ = rand.Read(incompressible)
		err := client.ProduceSync(ctx, &kgo.Record{Topic: "details", Value: incompressible}).FirstErr()
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("acks=2 is INVALID_REQUIRED_ACKS", func(t *testing.T) {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis = 7, 2, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "details"
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = validBatch()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		c := dial(t, b.Addr)
		if _, err := c.Write(frame(req, 5)); err != nil {
			t.Fatal(err)
		}
		_, body := readFrame(t, c)
		resp := kmsg.NewPtrProduceResponse()
		resp.Version = 7
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRequiredAcks.Code {
			t.Fatalf("error %d", code)
		}
	})
}
