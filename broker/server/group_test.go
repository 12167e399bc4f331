package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/config"
)

func groupBroker(t testing.TB) *testBroker {
	return startBroker(t, func(c *config.Config) {
		c.GroupInitialRebalanceDelayMs = 0
		c.DefaultPartitions = 6
	})
}

// produceKeyed writes n keyed records (values 0..n-1) to topic with
// franz-go and waits.
func produceKeyed(t testing.TB, addr, topic string, n int) {
	t.Helper()
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprint(i)
	}
	produceValues(t, addr, topic, values)
}

func produceValues(t testing.TB, addr, topic string, values []string) {
	t.Helper()
	ctx := testContext(t)
	client, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i, v := range values {
		client.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprintf("order-%d", i%100)), Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := client.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// lag returns the group's total lag on topic.
func lag(t *testing.T, addr, groupID, topic string) int64 {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	ctx := testContext(t)
	committed, err := admin.FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(end kadm.ListedOffset) {
		c, ok := committed.Lookup(topic, end.Partition)
		if !ok || c.At < 0 {
			total += end.Offset
			return
		}
		total += end.Offset - c.At
	})
	return total
}

func TestFranzGoGroupConsumers(t *testing.T) {
	for _, balancer := range []struct {
		name string
		b    kgo.GroupBalancer
	}{{"cooperative-sticky", kgo.CooperativeStickyBalancer()}, {"range", kgo.RangeBalancer()}} {
		t.Run(balancer.name, func(t *testing.T) {
			b := groupBroker(t)
			const topic, n = "franz-group", 3000
			produceKeyed(t, b.Addr, topic, n)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var mu sync.Mutex
			seen := make(map[string]bool)
			var wg sync.WaitGroup
			for member := 0; member < 3; member++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumerGroup("franz-"+balancer.name), kgo.ConsumeTopics(topic),
						kgo.Balancers(balancer.b), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
					if err != nil {
						t.Error(err)
						return
					}
					defer client.Close()
					for {
						mu.Lock()
						done := len(seen) == n
						mu.Unlock()
						if done || ctx.Err() != nil {
							return
						}
						pollCtx, pollCancel := context.WithTimeout(ctx, time.Second)
						fetches := client.PollFetches(pollCtx)
						pollCancel()
						fetches.EachRecord(func(r *kgo.Record) {
							mu.Lock()
							seen[string(r.Value)] = true
							mu.Unlock()
						})
						if err := client.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
							t.Errorf("commit: %v", err)
						}
					}
				}()
			}
			wg.Wait()
			if len(seen) != n {
				t.Fatalf("consumed %d of %d records", len(seen), n)
			}
			if l := lag(t, b.Addr, "franz-"+balancer.name, topic); l != 0 {
				t.Fatalf("lag %d after consuming everything", l)
			}
		})
	}
}
