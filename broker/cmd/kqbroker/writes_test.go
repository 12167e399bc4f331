package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/storage"
)

// writes is a workload in the spirit of Redpanda's and Jepsen's: two
// idempotent acks=all producers write unique values to a topic and record
// where each acknowledged one went; check reads the topic back.
type writes struct {
	topic string
	mu    sync.Mutex
	acked map[string]ack // value -> where it was acknowledged
	// failed counts records whose produce failed (allowed: they were not
	// acknowledged).
	failed   int
	firstErr error // the first of those failures, for the log
	stop     context.CancelFunc
	running  sync.WaitGroup
	// read is what a consumer saw during the run, by where it read it: a
	// record read must never vanish or change afterwards.
	read map[ack]string
}

type ack struct {
	partition int32
	offset    int64
}

// startWrites starts the producers; stopWrites waits for the last answers.
func startWrites(t *testing.T, ctx context.Context, addrs []string, topic string) *writes {
	t.Helper()
	w := &writes{topic: topic, acked: map[string]ack{}, read: map[ack]string{}}
	producing, stop := context.WithCancel(ctx)
	w.stop = stop
	// A consumer reads along: consumers only see what is committed.
	reader, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	w.running.Add(1)
	go func() {
		defer w.running.Done()
		for producing.Err() == nil {
			fetches := reader.PollFetches(producing)
			w.mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) { w.read[ack{r.Partition, r.Offset}] = string(r.Value) })
			w.mu.Unlock()
		}
	}()
	for n := range 2 {
		producer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic(topic),
			kgo.RecordDeliveryTimeout(30*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(producer.Close)
		w.running.Add(1)
		go func() {
			defer w.running.Done()
			var inFlight sync.WaitGroup
			for i := 0; producing.Err() == nil; i++ {
				value := fmt.Sprintf("w%d-%d", n, i)
				inFlight.Add(1)
				producer.Produce(ctx, &kgo.Record{Key: []byte(value), Value: []byte(value)}, func(r *kgo.Record, err error) {
					defer inFlight.Done()
					w.mu.Lock()
					defer w.mu.Unlock()
					if err != nil {
						w.failed++
						if w.firstErr == nil {
							w.firstErr = err
						}
						return
					}
					w.acked[value] = ack{r.Partition, r.Offset}
				})
				time.Sleep(2 * time.Millisecond)
			}
			inFlight.Wait()
		}()
	}
	return w
}

func (w *writes) stopWrites() {
	w.stop()
	w.running.Wait()
}

// check reads every partition from its start to its end and counts, per
// partition: every acknowledged record at the offset it was acknowledged
// at (lost, moved otherwise), none read twice, and those present whose
// acknowledgement never came (allowed, counted).
func (w *writes) check(t *testing.T, ctx context.Context, admin *kadm.Client, addrs []string) {
	t.Helper()
	ends, err := admin.ListEndOffsets(ctx, w.topic)
	for err != nil && ctx.Err() == nil { // a partition may still be electing
		time.Sleep(100 * time.Millisecond)
		ends, err = admin.ListEndOffsets(ctx, w.topic)
	}
	consumer := mustClient(t, addrs...)
	starts := map[int32]kgo.Offset{}
	want := 0
	ends.Each(func(o kadm.ListedOffset) {
		starts[o.Partition] = kgo.NewOffset().AtStart()
		want += int(o.Offset)
	})
	consumer.AddConsumePartitions(map[string]map[int32]kgo.Offset{w.topic: starts})
	seen := map[string]ack{}
	duplicates, unknown := 0, 0
	for read := 0; read < want && ctx.Err() == nil; {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			read++
			value := string(r.Value)
			if _, twice := seen[value]; twice {
				duplicates++
			}
			seen[value] = ack{r.Partition, r.Offset}
			if _, ok := w.acked[value]; !ok {
				unknown++
			}
		})
	}
	at := map[ack]string{}
	for value, where := range seen {
		at[where] = value
	}
	vanished := 0
	for where, value := range w.read {
		if at[where] != value {
			vanished++
		}
	}
	lost, moved := 0, 0
	for value, at := range w.acked {
		got, ok := seen[value]
		switch {
		case !ok:
			lost++
		case got != at:
			moved++
		}
	}
	t.Logf("checker: %d acknowledged, %d failed to the producer, %d read back; lost %d, at another offset %d, duplicates %d, unacknowledged but present %d; %d read during the run, %d of them vanished or changed",
		len(w.acked), w.failed, len(seen), lost, moved, duplicates, unknown, len(w.read), vanished)
	if w.firstErr != nil {
		t.Logf("the first produce that failed: %v", w.firstErr)
	}
	if len(w.acked) < 1000 {
		t.Errorf("only %d records acknowledged: the run did not exercise the brokers", len(w.acked))
	}
	if lost != 0 || moved != 0 || duplicates != 0 {
		t.Errorf("acknowledged records lost %d, moved %d, duplicated %d", lost, moved, duplicates)
	}
	if vanished != 0 || len(w.read) == 0 {
		t.Errorf("of %d records consumers read during the run, %d later vanished or changed", len(w.read), vanished)
	}
}

// waitWholeISRs waits until every partition of topic has rf in-sync
// replicas: the faults have healed.
func waitWholeISRs(t *testing.T, ctx context.Context, admin *kadm.Client, topic string, rf int) {
	t.Helper()
	for ctx.Err() == nil {
		meta, err := admin.Metadata(ctx, topic)
		whole := err == nil && len(meta.Topics[topic].Partitions) > 0
		if whole {
			for _, p := range meta.Topics[topic].Partitions {
				whole = whole && len(p.ISR) == rf && p.Leader >= 0
			}
		}
		if whole {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the ISRs of %s did not heal", topic)
}

// compareReplicas opens each stopped broker's copy of every partition and
// checks they hold the same bytes (a digest of each, read batch by batch
// from the log start to the log end, every segment).
func compareReplicas(t *testing.T, configs []string, topic string, partitions int) {
	t.Helper()
	for p := range partitions {
		var first string
		for i, path := range configs {
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			digest, size, err := replicaDigest(filepath.Join(cfg.DataDir, fmt.Sprintf("%s-%d", topic, p)))
			if err != nil {
				t.Fatal(err)
			}
			if size == 0 {
				t.Errorf("%s-%d is empty on broker %d", topic, p, i+1)
			}
			if i == 0 {
				first = digest
			} else if digest != first {
				t.Errorf("%s-%d: broker %d's copy (%d bytes) differs from broker 1's", topic, p, i+1, size)
			}
		}
	}
}

// replicaDigest is the SHA-256 of a log's batches and their byte count.
func replicaDigest(dir string) (string, int64, error) {
	log, err := storage.Open(dir, storage.Options{})
	if err != nil {
		return "", 0, err
	}
	defer log.Close()
	h := sha256.New()
	var size int64
	buf := make([]byte, 0, 4<<20)
	for offset := log.LogStartOffset(); offset < log.LogEndOffset(); {
		data, err := log.AppendReadUpTo(buf[:0], offset, 4<<20, log.LogEndOffset())
		if err != nil {
			return "", 0, err
		}
		next := offset
		_ = storage.WalkBatchHeaders(data, func(b storage.BatchHeader) error { next = b.LastOffset() + 1; return nil })
		if next == offset {
			return "", 0, fmt.Errorf("%s: no batch at offset %d below the end %d", dir, offset, log.LogEndOffset())
		}
		h.Write(data)
		size += int64(len(data))
		offset = next
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
