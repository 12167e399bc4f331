package server_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkFranzGoProduce100B: franz-go producing 100-byte records to one
// partition with acks=1 (idempotence needs acks=all, so it is off here).
// Run with -benchtime 1000000x for the 1M-record figure.
func BenchmarkFranzGoProduce100B(b *testing.B) {
	broker := startBroker(b, nil)
	ctx := testContext(b)
	client, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("bench"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte("warm-up")}).FirstErr(); err != nil {
		b.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 100)
	failed := make(chan error, 1)
	onDone := func(_ *kgo.Record, err error) {
		if err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}
	b.SetBytes(100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		client.Produce(ctx, &kgo.Record{Value: value}, onDone)
	}
	if err := client.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	select {
	case err := <-failed:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkFranzGoConsume100B: franz-go consuming 100-byte records from the
// start of one partition, produced with franz-go's default codec (snappy)
// and without compression.
func BenchmarkFranzGoConsume100B(b *testing.B) {
	for _, codec := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"snappy", kgo.SnappyCompression()}, {"none", kgo.NoCompression()}} {
		b.Run("codec="+codec.name, func(b *testing.B) { benchmarkConsume(b, codec.codec) })
	}
}

func benchmarkConsume(b *testing.B, codec kgo.CompressionCodec) {
	broker := startBroker(b, nil)
	ctx := testContext(b)
	producer, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("bench"),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(1<<20),
		kgo.ProducerBatchCompression(codec))
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close()
	value := bytes.Repeat([]byte("v"), 100)
	for i := 0; i < b.N; i++ {
		producer.Produce(ctx, &kgo.Record{Value: value}, nil)
	}
	if err := producer.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.ConsumeTopics("bench"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20), kgo.FetchMaxPartitionBytes(16<<20))
	if err != nil {
		b.Fatal(err)
	}
	defer consumer.Close()
	b.SetBytes(100)
	b.ResetTimer()
	consumed := 0
	for consumed < b.N {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			b.Fatal(err)
		}
		consumed += fetches.NumRecords()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
