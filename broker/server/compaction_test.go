package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/config"
)

// compactedRecord is a record as a client read it back.
type compactedRecord struct {
	offset int64
	key    string
	value  *string // nil: a tombstone
}

// TestCompactedTopicReadByFranzGoKafkaGoAndKcat writes several values per
// key and tombstones to a compacted topic with small segments, from two
// idempotent franz-go producers (the first one's batches all end up
// superseded, so the cleaner keeps its last batch empty), waits for the
// cleaner, and reads the topic back with franz-go, segmentio/kafka-go and
// kcat: each sees only the last record of each key, tombstones included,
// at the offsets they were written at, with gaps where the cleaner removed
// records, and no error.
func TestCompactedTopicReadByFranzGoKafkaGoAndKcat(t *testing.T) {
	b := startBroker(t, func(c *config.Config) { c.Log.CheckIntervalMs = 50 })
	ctx := testContext(t)
	const topic, keys = "compacted", 20
	admin, err := kadm.NewOptClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	configs := map[string]*string{}
	for name, value := range map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01"} {
		configs[name] = &value
	}
	if resp, err := admin.CreateTopic(ctx, 1, -1, configs, topic); err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v %v", err, resp.Err)
	}
	b.Sync(t)

	// The last value each key should have: nil for a deleted key.
	want := map[string]*string{}
	produce := func(client *kgo.Client, key string, value *string) {
		t.Helper()
		r := &kgo.Record{Topic: topic, Key: []byte(key)}
		if value != nil {
			r.Value = []byte(*value)
		}
		client.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %s: %v", key, err)
			}
		})
		want[key] = value
	}
	flush := func(client *kgo.Client) {
		t.Helper()
		if err := client.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Each round is one batch per producer, compressed: the cleaner takes
	// records out of compressed batches and compresses the rest again.
	first, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	if err != nil {
		t.Fatal(err)
	}
	second, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	for round := range 10 {
		client := first
		if round >= 5 {
			client = second
		}
		for k := range keys {
			if k%3 == round%3 && round < 9 {
				continue // not every key in every round
			}
			value := fmt.Sprintf("value %d of key %d, long enough to be worth compressing", round, k)
			produce(client, fmt.Sprintf("k%02d", k), &value)
		}
		flush(client)
	}
	first.Close()
	for k := range 5 {
		produce(second, fmt.Sprintf("k%02d", k), nil)
	}
	flush(second)
	// Records under their own keys, one batch each, until what came
	// before lies in closed segments the cleaner may take.
	filler := strings.Repeat("f", 300)
	for i := range 12 {
		produce(second, fmt.Sprintf("filler-%02d", i), &filler)
		flush(second)
	}
	end := listEnd(t, ctx, admin, topic)

	// Keyless records are refused, with Kafka's error.
	plain, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.DisableIdempotentWrite(), kgo.RecordRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("no key")}).FirstErr(); !errors.Is(err, kerr.InvalidRecord) {
		t.Fatalf("producing a record without a key to a compacted topic: %v, want INVALID_RECORD", err)
	}

	// Wait for the cleaner: no key of the rounds twice.
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := readFranzGo(t, ctx, b.Addr, topic, end)
		if len(got) <= keys+12 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the topic was not compacted within 30 s: %d records", len(got))
		}
		time.Sleep(100 * time.Millisecond)
	}
	readers := map[string]func() []compactedRecord{
		"franz-go":           func() []compactedRecord { return readFranzGo(t, ctx, b.Addr, topic, end) },
		"segmentio/kafka-go": func() []compactedRecord { return readKafkaGo(t, ctx, b.Addr, topic, end) },
		"kcat":               func() []compactedRecord { return readKcat(t, b.Addr, topic) },
	}
	for name, read := range readers {
		got := read()
		checkCompacted(t, name, got, want, end)
	}
	if len(b.Peers) > 0 {
		replicasConverge(t, b, topic, end)
	}
}

// replicasConverge waits until every replica's log holds the same batches,
// byte for byte: each broker cleans its own copy, and the cleaner's result
// depends only on the records and the cleaning point (here, every
// replica's lies past the overwritten keys).
func replicasConverge(t *testing.T, b *testBroker, topic string, end int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var copies [][]byte
		for _, broker := range append([]*testBroker{b}, b.Peers...) {
			tp, ok := broker.Cluster.Topic(topic)
			if !ok || tp.Partitions[0].Log == nil {
				continue
			}
			var batches []byte
			for offset := tp.Partitions[0].Log.LogStartOffset(); offset < end; {
				data, err := tp.Partitions[0].Log.AppendReadUpTo(nil, offset, 1<<20, end)
				if err != nil || len(data) == 0 {
					break
				}
				batches = append(batches, data...)
				for len(data) > 0 {
					var batch kmsg.RecordBatch
					if err := batch.ReadFrom(data); err != nil {
						t.Fatalf("broker %d: batch at %d: %v", broker.Config.NodeID, offset, err)
					}
					offset = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
					data = data[12+batch.Length:]
				}
			}
			copies = append(copies, batches)
		}
		same := len(copies) == 3
		for _, c := range copies[1:] {
			same = same && bytes.Equal(c, copies[0])
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d replicas' cleaned logs still differ after 30 s", len(copies))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func listEnd(t *testing.T, ctx context.Context, admin *kadm.Client, topic string) int64 {
	t.Helper()
	ends, err := admin.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, _ := ends.Lookup(topic, 0)
	return o.Offset
}

// checkCompacted: every key once (a key written in the active segment may
// still be there twice, never one of the rounds' keys), its last value,
// offsets increasing with gaps, and the last offset end-1.
func checkCompacted(t *testing.T, reader string, got []compactedRecord, want map[string]*string, end int64) {
	t.Helper()
	seen := map[string]compactedRecord{}
	for i, r := range got {
		if i > 0 && r.offset <= got[i-1].offset {
			t.Fatalf("%s: offset %d after %d", reader, r.offset, got[i-1].offset)
		}
		if previous, dup := seen[r.key]; dup && strings.HasPrefix(r.key, "k") {
			t.Fatalf("%s: key %s at offsets %d and %d after the clean", reader, r.key, previous.offset, r.offset)
		}
		seen[r.key] = r
	}
	for key, value := range want {
		r, ok := seen[key]
		switch {
		case !ok:
			t.Fatalf("%s: key %s is missing; read %v", reader, key, got)
		case (value == nil) != (r.value == nil) || (value != nil && *value != *r.value):
			t.Fatalf("%s: key %s at offset %d is %v, want %v", reader, key, r.offset, show(r.value), show(value))
		}
	}
	if len(got) == 0 || got[len(got)-1].offset != end-1 {
		t.Fatalf("%s: read up to offset %d, want %d", reader, got[len(got)-1].offset, end-1)
	}
	if int64(len(got)) == end {
		t.Fatalf("%s: %d records at %d offsets: no gaps, nothing was cleaned", reader, len(got), end)
	}
}

func show(v *string) string {
	if v == nil {
		return "<tombstone>"
	}
	return strconv.Quote(*v)
}

func readFranzGo(t *testing.T, ctx context.Context, addr, topic string, end int64) []compactedRecord {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var got []compactedRecord
	for len(got) == 0 || got[len(got)-1].offset < end-1 {
		fetches := client.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatalf("franz-go fetch: %v", err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			c := compactedRecord{offset: r.Offset, key: string(r.Key)}
			if r.Value != nil {
				v := string(r.Value)
				c.value = &v
			}
			got = append(got, c)
		})
	}
	return got
}

func readKafkaGo(t *testing.T, ctx context.Context, addr, topic string, end int64) []compactedRecord {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	var got []compactedRecord
	for len(got) == 0 || got[len(got)-1].offset < end-1 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go read after offset %d: %v", len(got), err)
		}
		c := compactedRecord{offset: m.Offset, key: string(m.Key)}
		if m.Value != nil {
			v := string(m.Value)
			c.value = &v
		}
		got = append(got, c)
	}
	return got
}

func readKcat(t *testing.T, addr, topic string) []compactedRecord {
	t.Helper()
	out := kcat(t, "", "-b", addr, "-t", topic, "-C", "-o", "beginning", "-e", "-Z", "-f", "%o\t%k\t%s\n")
	var got []compactedRecord
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		fields := strings.SplitN(line, "\t", 3)
		if len(fields) != 3 {
			t.Fatalf("kcat line %q", line)
		}
		offset, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		c := compactedRecord{offset: offset, key: fields[1]}
		if fields[2] != "NULL" {
			c.value = &fields[2]
		}
		got = append(got, c)
	}
	return got
}

// BenchmarkProduceLatencyWhileCleaning: an idempotent franz-go producer
// sends one 1 KiB record at a time (acks=all, so each waits for an fsync;
// uncompressed) to a compacted topic holding 64 MiB under 65,536 keys in
// 1 MiB segments,
// overwriting random keys. With cleaner=on (min.cleanable.dirty.ratio 0.01,
// maintenance every 100 ms) the cleaner goes over the whole log each time a
// segment rolls, about every 1,000 records; with cleaner=off (ratio 1, never
// due) it never runs; cleaner=throttled is cleaner=on with the cleaner's
// I/O held to 16 MiB/s. It reports the produce latency's p50, p99 and max,
// and the cleans that ran meanwhile and the MiB of log they went over.
func BenchmarkProduceLatencyWhileCleaning(b *testing.B) {
	for _, cleaner := range []string{"off", "on", "throttled"} {
		b.Run("cleaner="+cleaner, func(b *testing.B) {
			broker := startBroker(b, func(c *config.Config) { c.Log.CheckIntervalMs = 100 })
			ctx := testContext(b)
			ratio := map[string]string{"off": "1", "on": "0.01", "throttled": "0.01"}[cleaner]
			configs := map[string]*string{}
			for name, value := range map[string]string{"cleanup.policy": "compact", "segment.bytes": "1048576", "min.cleanable.dirty.ratio": ratio} {
				configs[name] = &value
			}
			admin, err := kadm.NewOptClient(kgo.SeedBrokers(broker.Addr))
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close()
			const topic, keys = "compacted-bench", 1 << 16
			if resp, err := admin.CreateTopic(ctx, 1, -1, configs, topic); err != nil || resp.Err != nil {
				b.Fatalf("create topic: %v %v", err, resp.Err)
			}
			broker.Sync(b)
			client, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(time.Millisecond),
				kgo.ProducerBatchCompression(kgo.NoCompression()))
			if err != nil {
				b.Fatal(err)
			}
			defer client.Close()
			value := func(i int) []byte {
				return append(fmt.Appendf(nil, `{"order":%d,"status":"paid","amount":%d,"note":"`, i, i*7), strings.Repeat("x", 960)...)[:1024]
			}
			for i := range keys {
				client.Produce(ctx, &kgo.Record{Key: fmt.Appendf(nil, "key-%05d", i), Value: value(i)}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			if err := client.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			tp, _ := broker.Cluster.Topic(topic)
			log := tp.Partitions[0].Log
			if cleaner == "throttled" {
				// No broker setting carries it yet: set on the log itself.
				cfg := log.Config()
				cfg.CleanerBytesPerSecond = 16 << 20
				if err := log.SetConfig(cfg); err != nil {
					b.Fatal(err)
				}
			}
			before := log.CleanerStats()
			latencies := make([]time.Duration, b.N)
			rng := rand.New(rand.NewPCG(1, 2))
			b.SetBytes(1024)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				if err := client.ProduceSync(ctx, &kgo.Record{Key: fmt.Appendf(nil, "key-%05d", rng.IntN(keys)), Value: value(i)}).FirstErr(); err != nil {
					b.Fatal(err)
				}
				latencies[i] = time.Since(start)
			}
			b.StopTimer()
			slices.Sort(latencies)
			at := func(q float64) float64 { return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) }
			b.ReportMetric(at(0.5), "p50-µs")
			b.ReportMetric(at(0.99), "p99-µs")
			b.ReportMetric(at(1), "max-µs")
			after := log.CleanerStats()
			b.ReportMetric(float64(after.Passes-before.Passes), "cleans")
			b.ReportMetric(float64(after.BytesRead-before.BytesRead)/(1<<20), "cleaned-MiB")
		})
	}
}
