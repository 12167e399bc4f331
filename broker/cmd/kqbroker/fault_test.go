package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/storage"
)

// TestFaultsLoseNoAcknowledgedRecord: idempotent acks=all producers write
// to a 6-partition topic of three replicas (min.insync.replicas 2) on three
// kqbroker processes while the leader of partition 0 is killed with
// SIGKILL and restarted, and another broker (possibly the quorum leader)
// is paused with SIGSTOP past the session timeout and resumed. Once every
// ISR is whole again a checker reads every partition back and counts, per
// partition: every acknowledged record is at the offset it was
// acknowledged at, no record is read twice, none is unknown. Then the
// brokers stop and every partition's three replicas are compared, byte for
// byte.
func TestFaultsLoseNoAcknowledgedRecord(t *testing.T) {
	bin := buildBroker(t)
	brokers, addrs, configs := startClusterProcesses(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := kadm.NewClient(mustClient(t, addrs...))
	if _, err := admin.CreateTopic(ctx, 6, 3, nil, "checked"); err != nil {
		t.Fatal(err)
	}
	for len(partitionLeaders(t, ctx, admin, "checked")) < 6 {
		time.Sleep(20 * time.Millisecond)
	}

	type ack struct {
		partition int32
		offset    int64
	}
	var mu sync.Mutex
	acked := map[string]ack{} // value -> where it was acknowledged
	failed := 0
	producing, stopProducing := context.WithCancel(ctx)
	var producers sync.WaitGroup
	for w := range 2 {
		producer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("checked"),
			kgo.RecordDeliveryTimeout(30*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer producer.Close()
		producers.Add(1)
		go func() {
			defer producers.Done()
			var inFlight sync.WaitGroup
			for i := 0; producing.Err() == nil; i++ {
				value := fmt.Sprintf("w%d-%d", w, i)
				inFlight.Add(1)
				producer.Produce(ctx, &kgo.Record{Key: []byte(value), Value: []byte(value)}, func(r *kgo.Record, err error) {
					defer inFlight.Done()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed++
						return
					}
					acked[value] = ack{r.Partition, r.Offset}
				})
				time.Sleep(2 * time.Millisecond)
			}
			inFlight.Wait()
		}()
	}

	time.Sleep(time.Second)
	victim := int(partitionLeaders(t, ctx, admin, "checked")[0]) - 1
	brokers[victim].kill() // kill -9 a leader
	time.Sleep(2 * time.Second)
	brokers[victim] = startProcess(t, bin, "-config", configs[victim])
	time.Sleep(time.Second)
	paused := (victim + 1) % 3
	_ = brokers[paused].cmd.Process.Signal(syscall.SIGSTOP) // paused past the 1.5 s session
	time.Sleep(3 * time.Second)
	_ = brokers[paused].cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(2 * time.Second)
	stopProducing()
	producers.Wait()
	waitWholeISRs(t, ctx, admin, "checked", 3)

	// The checker: read every partition from its start to its end.
	ends, err := admin.ListEndOffsets(ctx, "checked")
	for err != nil && ctx.Err() == nil { // a partition may still be electing
		time.Sleep(100 * time.Millisecond)
		ends, err = admin.ListEndOffsets(ctx, "checked")
	}
	consumer := mustClient(t, addrs...)
	starts := map[int32]kgo.Offset{}
	want := 0
	ends.Each(func(o kadm.ListedOffset) {
		starts[o.Partition] = kgo.NewOffset().AtStart()
		want += int(o.Offset)
	})
	consumer.AddConsumePartitions(map[string]map[int32]kgo.Offset{"checked": starts})
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
			if _, ok := acked[value]; !ok {
				unknown++ // written but its acknowledgement never came: allowed, counted
			}
		})
	}
	lost, moved := 0, 0
	for value, at := range acked {
		got, ok := seen[value]
		switch {
		case !ok:
			lost++
		case got != at:
			moved++
		}
	}
	t.Logf("checker: %d acknowledged, %d failed to the producer, %d read back; lost %d, at another offset %d, duplicates %d, unacknowledged but present %d",
		len(acked), failed, len(seen), lost, moved, duplicates, unknown)
	if len(acked) < 1000 {
		t.Errorf("only %d records acknowledged: the run did not exercise the brokers", len(acked))
	}
	if lost != 0 || moved != 0 || duplicates != 0 {
		t.Errorf("acknowledged records lost %d, moved %d, duplicated %d", lost, moved, duplicates)
	}
	for _, b := range brokers {
		b.stop(t)
	}
	compareReplicas(t, configs, "checked", 6)
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
// checks they hold the same bytes.
func compareReplicas(t *testing.T, configs []string, topic string, partitions int) {
	t.Helper()
	for p := range partitions {
		var first []byte
		for i, path := range configs {
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			log, err := storage.Open(filepath.Join(cfg.DataDir, fmt.Sprintf("%s-%d", topic, p)), storage.Options{})
			if err != nil {
				t.Fatal(err)
			}
			data, err := log.AppendReadUpTo(nil, log.LogStartOffset(), 1<<30, log.LogEndOffset())
			_ = log.Close()
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = data
				continue
			}
			if !bytes.Equal(first, data) {
				t.Errorf("%s-%d: broker 1 holds %d bytes, broker %d %d bytes that differ", topic, p, len(first), i+1, len(data))
			}
		}
		if len(first) == 0 {
			t.Errorf("%s-%d is empty", topic, p)
		}
	}
}
