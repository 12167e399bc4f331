package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"
)

// pipelineWorkload: the go-zero pipeline as services run it. A go-queue kq
// Pusher (its defaults: kafka-go writer, snappy, chunked async pushes)
// sends JSON events to a topic with 6 partitions; a kq consumer group with
// goctl's defaults (8 fetchers, 8 processors, commits after each handled
// message) handles them. It measures events/s from the first push to the
// last event handled, and push-to-handle latency.
func pipelineWorkload(events int) workload {
	return workload{
		name: fmt.Sprintf("kq pipeline: Pusher -> broker -> kq group, %d events", events),
		run: func(ctx context.Context, t *target) (measurement, error) {
			topic := uniqueTopic("pipeline")
			if err := createTopicKafkaGo(ctx, t.addr, topic, 6); err != nil {
				return nil, fmt.Errorf("create topic %s on %s: %w", topic, t.name, err)
			}
			defer t.deleteTopic(context.Background(), topic)

			type event struct {
				Seq    int   `json:"seq"`
				SentNs int64 `json:"sent_ns"`
				Amount int   `json:"amount"`
				Note   string
			}
			origin := time.Now()
			var mu sync.Mutex
			seen := make(map[int]bool, events+1)
			var latencies []time.Duration
			allHandled := make(chan struct{})
			warm := make(chan struct{})
			handler := kq.WithHandle(func(_ context.Context, _, value string) error {
				var e event
				if err := json.Unmarshal([]byte(value), &e); err != nil {
					return err
				}
				now := time.Since(origin)
				mu.Lock()
				defer mu.Unlock()
				if e.Seq < 0 {
					if !seen[e.Seq] {
						seen[e.Seq] = true
						close(warm)
					}
					return nil
				}
				if seen[e.Seq] {
					return nil // at-least-once: a redelivery is not counted twice
				}
				seen[e.Seq] = true
				latencies = append(latencies, now-time.Duration(e.SentNs))
				if len(latencies) == events {
					close(allHandled)
				}
				return nil
			})
			conf := kq.KqConf{
				ServiceConf: service.ServiceConf{Name: "kqbench", Log: logx.LogConf{Mode: "console", Level: "error"}},
				Brokers:     []string{t.addr}, Group: topic, Topic: topic, Offset: "first",
				Conns: 1, Consumers: 8, Processors: 8, MinBytes: 10240, MaxBytes: 10 << 20, ForceCommit: true,
			}
			queue, err := kq.NewQueue(conf, handler)
			if err != nil {
				return nil, err
			}
			go queue.Start()
			defer queue.Stop()

			pusher := kq.NewPusher([]string{t.addr}, topic)
			defer pusher.Close()
			// One event first: the group has joined and is fetching before the clock starts.
			if err := pusher.Push(ctx, `{"seq":-1}`); err != nil {
				return nil, err
			}
			select {
			case <-warm:
			case <-ctx.Done():
				return nil, fmt.Errorf("the warm-up event was not handled: %w", ctx.Err())
			}

			begin := time.Since(origin)
			for i := 0; i < events; i++ {
				body, _ := json.Marshal(event{Seq: i, SentNs: int64(time.Since(origin)), Amount: i % 1000, Note: "paid order " + strconv.Itoa(i)})
				if err := pusher.PushWithKey(ctx, strconv.Itoa(i%512), string(body)); err != nil {
					return nil, err
				}
			}
			select {
			case <-allHandled:
			case <-ctx.Done():
				mu.Lock()
				n := len(latencies)
				mu.Unlock()
				return nil, fmt.Errorf("handled %d of %d events: %w", n, events, ctx.Err())
			}
			elapsed := time.Since(origin) - begin
			mu.Lock()
			defer mu.Unlock()
			slices.Sort(latencies)
			return measurement{
				"events/s": float64(events) / elapsed.Seconds(),
				"p50 ms":   percentile(latencies, 0.5),
				"p99 ms":   percentile(latencies, 0.99),
			}, nil
		},
	}
}

// createTopicKafkaGo creates the topic through kafka-go's shared default
// transport, the one kq's Pusher writes through. That transport caches the
// cluster's metadata and refreshes it on its own only every 6 seconds, so a
// topic created by another client is unknown to it until then and pushes
// fail (kq's async Pusher only logs that); creating the topic through it
// refreshes the cache.
func createTopicKafkaGo(ctx context.Context, addr, topic string, partitions int) error {
	client := &kafka.Client{Addr: kafka.TCP(addr)}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
	if err != nil {
		return err
	}
	return resp.Errors[topic]
}
