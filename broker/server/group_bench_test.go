package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BenchmarkOffsetCommit: one client commits offsets (one partition per
// request) with 64 requests in flight on its connection; every commit is
// durable (fsync, group commit) before it is answered.
func BenchmarkOffsetCommit(b *testing.B) {
	broker := groupBroker(b)
	client, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := testContext(b)
	commit := func(offset int64) error {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation = 7, "bench-commits", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "bench"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = int32(offset%6), offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, client)
		if err == nil && resp.Topics[0].Partitions[0].ErrorCode != 0 {
			err = fmt.Errorf("error code %d", resp.Topics[0].Partitions[0].ErrorCode)
		}
		return err
	}
	if err := commit(0); err != nil {
		b.Fatal(err)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				if err := commit(i); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// BenchmarkGroupSettle10: ten franz-go consumers join a new group at once;
// the time from the last one's start until the group is Stable with all
// ten assigned. The initial rebalance delay is 0; members heartbeat every
// 100 ms, since a member learns of a rebalance from its heartbeat.
func BenchmarkGroupSettle10(b *testing.B) {
	broker := groupBroker(b)
	produceKeyed(b, broker.Addr, "settle", 60)
	admin, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr))
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		groupID := fmt.Sprintf("settle-%d", i)
		ctx, cancel := context.WithCancel(context.Background())
		var clients []*kgo.Client
		for m := 0; m < 10; m++ {
			c, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics("settle"),
				kgo.HeartbeatInterval(100*time.Millisecond), kgo.Balancers(kgo.RangeBalancer()))
			if err != nil {
				b.Fatal(err)
			}
			clients = append(clients, c)
			go func() {
				for ctx.Err() == nil {
					c.PollFetches(ctx)
				}
			}()
		}
		lastJoin := time.Now()
		for {
			described, err := adm.DescribeGroups(context.Background(), groupID)
			if err == nil {
				g := described[groupID]
				assigned := 0
				for _, m := range g.Members {
					if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
						assigned++
					}
				}
				if g.State == "Stable" && len(g.Members) == 10 && assigned >= 6 {
					break
				}
			}
			if time.Since(lastJoin) > 30*time.Second {
				b.Fatal("the group did not settle in 30s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		total += time.Since(lastJoin)
		cancel()
		for _, c := range clients {
			c.Close()
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-stable")
}
