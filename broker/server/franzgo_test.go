package server_test

import (
	"fmt"
	"testing"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFranzGoIdempotentProduceAndConsume uses franz-go with its defaults,
// idempotence included, against an auto-created topic, then restarts the
// broker and checks the records and that offsets continue.
func TestFranzGoIdempotentProduceAndConsume(t *testing.T) {
	b := startBroker(t, func(c *config.Config) { c.DefaultPartitions = 3 })
	ctx := testContext(t)
	const topic, n = "orders", 1000
	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i := 0; i < n; i++ {
		client.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i%10)), Value: []byte(fmt.Sprintf("v%d", i))}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := client.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	consumeAll := func(want int) map[string]int64 {
		consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer consumer.Close()
		seen := make(map[string]int64)
		for len(seen) < want {
			fetches := consumer.PollFetches(ctx)
			if err := fetches.Err(); err != nil {
				t.Fatalf("fetch: %v (have %d of %d)", err, len(seen), want)
			}
			fetches.EachRecord(func(r *kgo.Record) {
				if _, dup := seen[string(r.Value)]; dup {
					t.Errorf("record %s delivered twice", r.Value)
				}
				seen[string(r.Value)] = r.Offset
			})
		}
		return seen
	}
	if got := consumeAll(n); len(got) != n {
		t.Fatalf("consumed %d records, want %d", len(got), n)
	}

	admin := kadm.NewClient(client)
	before, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	b.Restart(t)
	after, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	before.Each(func(o kadm.ListedOffset) {
		if a, _ := after.Lookup(topic, o.Partition); a.Offset != o.Offset {
			t.Errorf("partition %d end offset %d after restart, was %d", o.Partition, a.Offset, o.Offset)
		}
	})
	// The same idempotent client keeps producing after the restart.
	if err := client.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k0"), Value: []byte("after-restart")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := consumeAll(n + 1); got["after-restart"] == 0 && len(got) != n+1 {
		t.Fatalf("the record produced after the restart is missing")
	}
}
