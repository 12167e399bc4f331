package main

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produceOptions are the client options every produce workload uses: kgo's
// defaults (snappy, no linger, 1 MB batches), acks as asked; idempotence
// is on for acks=all, as franz-go sets it, and off otherwise, as it must be.
func produceOptions(addr, topic string, acks string) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.MaxBufferedRecords(1 << 16)}
	switch acks {
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	default:
		return nil, fmt.Errorf("acks %q: 0, 1 or all", acks)
	}
	return opts, nil
}

// produceWorkload: franz-go producing records of size bytes to a new topic
// with the given partitions, as fast as the client and broker allow.
func produceWorkload(size int, acks string, partitions int32, records int) workload {
	vals := values(1024, size)
	return workload{
		name: fmt.Sprintf("produce %s acks=%s %s", sizeName(size), acks, partitionsName(partitions)),
		run: func(ctx context.Context, t *target) (measurement, error) {
			topic := uniqueTopic("produce")
			if err := t.createTopic(ctx, topic, partitions); err != nil {
				return nil, err
			}
			defer t.deleteTopic(context.Background(), topic)
			opts, err := produceOptions(t.addr, topic, acks)
			if err != nil {
				return nil, err
			}
			client, err := kgo.NewClient(opts...)
			if err != nil {
				return nil, err
			}
			defer client.Close()
			if err := client.ProduceSync(ctx, &kgo.Record{Value: vals[0]}).FirstErr(); err != nil && acks != "0" {
				return nil, fmt.Errorf("warm-up record: %w", err)
			}
			failed := make(chan error, 1)
			onDone := func(_ *kgo.Record, err error) {
				if err != nil {
					select {
					case failed <- err:
					default:
					}
				}
			}
			peak := t.peakRSS()
			cpuBefore, clientBefore := t.cpuTime(), selfCPUTime()
			begin := time.Now()
			for i := 0; i < records; i++ {
				client.Produce(ctx, &kgo.Record{Value: vals[i%len(vals)]}, onDone)
			}
			if err := client.Flush(ctx); err != nil {
				return nil, err
			}
			elapsed := time.Since(begin)
			cpu, clientCPU := t.cpuTime()-cpuBefore, selfCPUTime()-clientBefore
			rss := peak()
			select {
			case err := <-failed:
				return nil, fmt.Errorf("a record failed: %w", err)
			default:
			}
			perSecond := float64(records) / elapsed.Seconds()
			cpuPerRecords := float64(cpu.Microseconds()) / float64(records) * 1000
			return measurement{
				"records/s":    perSecond,
				"MB/s":         perSecond * float64(size) / 1e6,
				"peak rss MB":  megabytes(rss),
				"broker cpu %": 100 * cpu.Seconds() / elapsed.Seconds(),
				"client cpu %": 100 * clientCPU.Seconds() / elapsed.Seconds(),
				// The broker's own cost, whatever the client's speed.
				"broker cpu µs/1k records": cpuPerRecords,
			}, nil
		},
	}
}

func sizeName(size int) string {
	if size >= 1024 && size%1024 == 0 {
		return fmt.Sprintf("%d KiB", size/1024)
	}
	return fmt.Sprintf("%d B", size)
}

func partitionsName(n int32) string {
	if n == 1 {
		return "1 partition"
	}
	return fmt.Sprintf("%d partitions", n)
}
