package push

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

func TestPushWithKeyIsDurableOrderedAndHashedLikeOtherClients(t *testing.T) {
	b := brokertest.Start(t, func(c *config.Config) { c.DefaultPartitions = 6 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := NewPusher(Config{Brokers: []string{b.Addr}, Topic: "orders", AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	traced := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
	for i := 0; i < 20; i++ {
		if err := p.PushWithKey(traced, fmt.Sprintf("order-%d", i%4), fmt.Sprintf("event-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// acks=all under the default flush policy: durable when Push returned.
	topic, _ := b.Cluster.Topic("orders")
	for _, partition := range topic.Partitions {
		if partition.Log.DurableOffset() != partition.Log.LogEndOffset() {
			t.Fatalf("partition %d: durable to %d of %d", partition.Index, partition.Log.DurableOffset(), partition.Log.LogEndOffset())
		}
	}
	// Read back: each key on one partition, in push order, with traceparent.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	partitionOf := map[string]int32{}
	lastValue := map[string]int{}
	for read := 0; read < 20; {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			read++
			key := string(r.Key)
			if p, seen := partitionOf[key]; seen && p != r.Partition {
				t.Errorf("key %s on partitions %d and %d", key, p, r.Partition)
			}
			partitionOf[key] = r.Partition
			var n int
			fmt.Sscanf(string(r.Value), "event-%d", &n)
			if last, seen := lastValue[key]; seen && n < last {
				t.Errorf("key %s out of order: %d after %d", key, n, last)
			}
			lastValue[key] = n
			traceparent := ""
			for _, h := range r.Headers {
				if h.Key == "traceparent" {
					traceparent = string(h.Value)
				}
			}
			if !strings.Contains(traceparent, traceID.String()) {
				t.Errorf("record without the caller's trace: %q", traceparent)
			}
		})
	}
	// franz-go's default partitioner hashes keys with murmur2 as well.
	producer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	for key, partition := range partitionOf {
		r := &kgo.Record{Key: []byte(key), Value: []byte("franz")}
		if err := producer.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if r.Partition != partition {
			t.Errorf("key %s: Pusher chose partition %d, franz-go %d", key, partition, r.Partition)
		}
	}
}

func TestPushErrorsAreReturned(t *testing.T) {
	b := brokertest.Start(t, func(c *config.Config) { c.AutoCreateTopics = false })
	p, err := NewPusher(Config{Brokers: []string{b.Addr}, Topic: "missing", Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = p.PushWithKey(ctx, "k", "v")
	if !errors.Is(err, kafka.UnknownTopicOrPartition) {
		t.Fatalf("push to a missing topic: %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
	}
	if _, err := NewPusher(Config{Topic: "x"}); err == nil {
		t.Fatal("a Pusher without brokers was accepted")
	}
}

// MustNewPusher has kq.NewPusher's signature and the Pusher kq's methods,
// so a kq producer switches by its import; each push is acknowledged by
// the broker before it returns.
func TestMustNewPusherIsShapedLikeKqs(t *testing.T) {
	b := brokertest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(newTestClient(t, b.Addr)).CreateTopic(ctx, 1, -1, nil, "kq-shaped"); err != nil {
		t.Fatal(err)
	}
	b.Sync(t)
	p := MustNewPusher([]string{b.Addr}, "kq-shaped")
	defer p.Close()
	if p.Name() != "kq-shaped" {
		t.Fatalf("Name: %q", p.Name())
	}
	for _, push := range []func() error{
		func() error { return p.Push(ctx, "one") },
		func() error { return p.PushWithKey(ctx, "k", "two") },
		func() error { return p.KPush(ctx, "k", "three") },
	} {
		if err := push(); err != nil {
			t.Fatal(err)
		}
	}
	ends, err := kadm.NewClient(newTestClient(t, b.Addr)).ListEndOffsets(ctx, "kq-shaped")
	if err != nil {
		t.Fatal(err)
	}
	if end, _ := ends.Lookup("kq-shaped", 0); end.Offset != 3 {
		t.Fatalf("end offset %d after 3 pushes", end.Offset)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustNewPusher with no topic did not panic")
		}
	}()
	MustNewPusher([]string{b.Addr}, "")
}

func newTestClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
