package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeWorkload: a new franz-go consumer reading records of size bytes
// from the earliest offset of one partition. The records are produced once
// per target (acks=1, kgo's defaults) before the first run.
func consumeWorkload(size, records int) workload {
	topics := map[*target]string{}
	return workload{
		name: fmt.Sprintf("consume %s from earliest, 1 partition", sizeName(size)),
		setup: func(ctx context.Context, t *target) error {
			topic := uniqueTopic("consume")
			if err := t.createTopic(ctx, topic, 1); err != nil {
				return err
			}
			topics[t] = topic
			opts, _ := produceOptions(t.addr, topic, "1")
			client, err := kgo.NewClient(opts...)
			if err != nil {
				return err
			}
			defer client.Close()
			vals := values(1024, size)
			for i := 0; i < records; i++ {
				client.Produce(ctx, &kgo.Record{Value: vals[i%len(vals)]}, nil)
			}
			return client.Flush(ctx)
		},
		teardown: func(ctx context.Context, t *target) { t.deleteTopic(ctx, topics[t]) },
		run: func(ctx context.Context, t *target) (measurement, error) {
			cpuBefore, clientBefore := t.cpuTime(), selfCPUTime()
			begin := time.Now()
			client, err := kgo.NewClient(kgo.SeedBrokers(t.addr), kgo.ConsumeTopics(topics[t]), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				return nil, err
			}
			defer client.Close()
			var n int
			var bytes int64
			for n < records {
				fetches := client.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("consumed %d of %d records: %w", n, records, err)
				}
				for _, fetchErr := range fetches.Errors() {
					return nil, fmt.Errorf("fetch %s[%d]: %w", fetchErr.Topic, fetchErr.Partition, fetchErr.Err)
				}
				fetches.EachRecord(func(r *kgo.Record) { n++; bytes += int64(len(r.Value)) })
			}
			elapsed := time.Since(begin)
			cpu, clientCPU := t.cpuTime()-cpuBefore, selfCPUTime()-clientBefore
			return measurement{
				"broker cpu %": 100 * cpu.Seconds() / elapsed.Seconds(),
				"client cpu %": 100 * clientCPU.Seconds() / elapsed.Seconds(),
				// The broker's own cost, whatever the client's speed.
				"broker cpu µs/1k records": float64(cpu.Microseconds()) / float64(n) * 1000,
				"records/s":                float64(n) / elapsed.Seconds(),
				"MB/s":                     float64(bytes) / elapsed.Seconds() / 1e6,
			}, nil
		},
	}
}
