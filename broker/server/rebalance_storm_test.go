package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRebalanceStorm: members join and leave repeatedly while records flow.
// At the end every record was consumed at least once, the committed offsets
// cover every record, and no partition is left without a consumer.
func TestRebalanceStorm(t *testing.T) {
	b := groupBroker(t)
	const topic, groupID = "storm", "storm-group"
	produceKeyed(t, b.Addr, topic, 10) // creates the topic with 6 partitions
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	var seenMu sync.Mutex
	seen := make(map[string]bool)
	member := func(ctx context.Context) {
		client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
			kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.HeartbeatInterval(100*time.Millisecond))
		if err != nil {
			t.Error(err)
			return
		}
		defer client.Close()
		for ctx.Err() == nil {
			pollCtx, pollCancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fetches := client.PollFetches(pollCtx)
			pollCancel()
			fetches.EachRecord(func(r *kgo.Record) {
				seenMu.Lock()
				seen[string(r.Value)] = true
				seenMu.Unlock()
			})
			// A commit can lose to a rebalance; the records then come again.
			_ = client.CommitUncommittedOffsets(context.Background())
		}
		_ = client.CommitUncommittedOffsets(context.Background())
	}

	// A producer runs for the whole storm.
	var produced atomic.Int64
	produceDone := make(chan struct{})
	go func() {
		defer close(produceDone)
		client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DefaultProduceTopic(topic))
		if err != nil {
			t.Error(err)
			return
		}
		defer client.Close()
		for i := 10; i < 3010; i++ {
			client.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 50)), Value: []byte(fmt.Sprint(i))}, nil)
			if i%30 == 0 {
				time.Sleep(15 * time.Millisecond)
			}
		}
		if err := client.Flush(ctx); err != nil {
			t.Error(err)
		}
		produced.Store(3010)
	}()

	// The storm: members come and go, one to three at a time.
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	stormEnd := time.Now().Add(4 * time.Second)
	for time.Now().Before(stormEnd) {
		lifetime := time.Duration(150+rng.IntN(600)) * time.Millisecond
		memberCtx, memberCancel := context.WithTimeout(ctx, lifetime)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer memberCancel()
			member(memberCtx)
		}()
		time.Sleep(time.Duration(100+rng.IntN(250)) * time.Millisecond)
	}
	wg.Wait()
	<-produceDone

	// Two steady members finish the work.
	steadyCtx, steadyCancel := context.WithCancel(ctx)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			member(steadyCtx)
		}()
	}
	waitFor(t, "every record consumed", 60*time.Second, func() bool {
		seenMu.Lock()
		defer seenMu.Unlock()
		return int64(len(seen)) == produced.Load()
	})
	waitFor(t, "committed offsets to cover every record", 30*time.Second, func() bool { return lag(t, b.Addr, groupID, topic) == 0 })
	steadyCancel()
	wg.Wait()
}
