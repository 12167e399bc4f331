package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// latencyWorkload: end-to-end latency at a fixed rate. A franz-go producer
// (no linger) sends 100 B records paced every millisecond; each carries the
// time it was handed to the client; a franz-go consumer in the same
// process, already fetching, measures the time to delivery. The first
// second is warm-up and not counted.
func latencyWorkload(rate int, acks string, duration time.Duration) workload {
	const size = 100
	const warmUp = time.Second
	return workload{
		name: fmt.Sprintf("end-to-end latency, %d records/s, acks=%s, 100 B", rate, acks),
		run: func(ctx context.Context, t *target) (measurement, error) {
			// Earlier rows' writes still in the page cache would be written
			// back during this run and slow its fsyncs: settle them first.
			syscall.Sync()
			topic := uniqueTopic("latency")
			if err := t.createTopic(ctx, topic, 1); err != nil {
				return nil, err
			}
			defer t.deleteTopic(context.Background(), topic)
			consumer, err := kgo.NewClient(kgo.SeedBrokers(t.addr), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second))
			if err != nil {
				return nil, err
			}
			defer consumer.Close()
			opts, err := produceOptions(t.addr, topic, acks)
			if err != nil {
				return nil, err
			}
			producer, err := kgo.NewClient(append(opts, kgo.ProducerLinger(0))...)
			if err != nil {
				return nil, err
			}
			defer producer.Close()
			if err := producer.ProduceSync(ctx, &kgo.Record{Value: make([]byte, size)}).FirstErr(); err != nil && acks != "0" {
				return nil, fmt.Errorf("warm-up record: %w", err)
			}

			total := int(duration.Seconds() * float64(rate))
			fsyncsBefore := t.fsyncs()
			origin := time.Now()
			var latencies []time.Duration
			var consumed int
			consumeErr := make(chan error, 1)
			go func() {
				for consumed < total+1 {
					fetches := consumer.PollFetches(ctx)
					if ctx.Err() != nil {
						consumeErr <- fmt.Errorf("consumed %d of %d records: %w", consumed, total+1, ctx.Err())
						return
					}
					now := time.Since(origin)
					fetches.EachRecord(func(r *kgo.Record) {
						consumed++
						sent := time.Duration(binary.BigEndian.Uint64(r.Value))
						if sent >= warmUp {
							latencies = append(latencies, now-sent)
						}
					})
				}
				consumeErr <- nil
			}()

			var produceErr error
			var once sync.Once
			onDone := func(_ *kgo.Record, err error) {
				if err != nil {
					once.Do(func() { produceErr = err })
				}
			}
			perTick := max(rate/1000, 1)
			ticker := time.NewTicker(time.Millisecond)
			defer ticker.Stop()
			for sent := 0; sent < total; {
				<-ticker.C
				// Catch up after a late tick, so the rate holds on average.
				due := min(int(time.Since(origin).Seconds()*float64(rate)), total)
				for n := 0; sent < due && n < 10*perTick; n++ {
					value := make([]byte, size)
					binary.BigEndian.PutUint64(value, uint64(time.Since(origin)))
					producer.Produce(ctx, &kgo.Record{Value: value}, onDone)
					sent++
				}
			}
			if err := producer.Flush(ctx); err != nil {
				return nil, err
			}
			if err := <-consumeErr; err != nil {
				return nil, err
			}
			if produceErr != nil {
				return nil, fmt.Errorf("a record failed: %w", produceErr)
			}
			slices.Sort(latencies)
			m := measurement{
				"p50 ms":   percentile(latencies, 0.50),
				"p99 ms":   percentile(latencies, 0.99),
				"p99.9 ms": percentile(latencies, 0.999),
				"max ms":   percentile(latencies, 1),
			}
			// What the disk did meanwhile: an acks=all ack waits for an
			// fsync, so one slow fsync holds back every record behind it.
			if slow, slowest := slowFsyncs(fsyncsBefore, t.fsyncs(), 10*time.Millisecond); slowest != "" {
				m["fsyncs > 10 ms"] = float64(slow)
				fmt.Fprintf(os.Stderr, "    %s: %d fsyncs over 10 ms during the run; the slowest took up to %s\n", t.name, slow, slowest)
			}
			return m, nil
		},
	}
}

// percentile of sorted durations, in milliseconds.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(int(q*float64(len(sorted))), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}
