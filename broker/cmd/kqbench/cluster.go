package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kqstack/kqstack/internal/testport"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clusterSize is the brokers of the kqbroker-cluster target.
const clusterSize = 3

// startKqbrokerCluster starts three kqbroker processes that are one
// metadata quorum, on loopback; topics get three replicas (and
// min.insync.replicas 2), the default flush mode (every in-sync replica
// fsyncs before acks=all is answered). The target is the first broker,
// its peers the others; its figures of memory and CPU are the first
// broker's.
func startKqbrokerCluster() (*target, error) {
	// The ports stay reserved until kqbench exits: brokers restarted by
	// the failover workloads bind them again.
	addrs, _, err := testport.Reserve(2 * clusterSize)
	if err != nil {
		return nil, err
	}
	var voters []string
	for i := range clusterSize {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, addrs[clusterSize+i]))
	}
	started := make([]*target, clusterSize)
	errs := make(chan error, clusterSize)
	for i := range clusterSize {
		go func() {
			dir, err := os.MkdirTemp(benchTempDir(), "kqbench-cluster-")
			if err == nil {
				config := fmt.Sprintf("node_id: %d\nlisten: %s\ncontroller_listen: %s\ncontroller_quorum_voters: %s\nadmin_listen: 127.0.0.1:0\ndata_dir: %s\n",
					i+1, addrs[i], addrs[clusterSize+i], strings.Join(voters, ","), dir)
				if err = os.WriteFile(dir+".yaml", []byte(config), 0o644); err == nil {
					started[i], err = startChild("kqbroker", dir, "-config", dir+".yaml")
					if started[i] != nil {
						started[i].nodeID = int32(i + 1)
					}
				}
			}
			errs <- err
		}()
	}
	var failed error
	for range clusterSize {
		failed = errors.Join(failed, <-errs)
	}
	if failed != nil {
		for _, t := range started {
			if t != nil {
				_ = t.stop(false)
			}
		}
		return nil, failed
	}
	first := started[0]
	first.name, first.replicas, first.peers = "kqbroker-cluster", clusterSize, started[1:]
	return first, nil
}

// failoverWorkload measures how long acks=all produces stall when the
// leader of their partition is killed with SIGKILL (graceful: stopped with
// SIGTERM): from the last acknowledgement before to the first after, and
// how many produces failed to the application meanwhile. The broker is
// started again before the next run.
func failoverWorkload(graceful bool) workload {
	name := "failover: acks=all produce stall after kill -9 of the partition leader"
	if graceful {
		name = "failover: acks=all produce stall after SIGTERM of the partition leader"
	}
	return workload{
		name: name,
		setup: func(ctx context.Context, t *target) error {
			if t.name != "kqbroker-cluster" {
				return errors.New("failover is measured on -vs kqbroker-cluster only")
			}
			return nil
		},
		run: func(ctx context.Context, t *target) (measurement, error) {
			topic := uniqueTopic("failover")
			if err := t.createTopic(ctx, topic, 1); err != nil {
				return nil, err
			}
			seeds := []string{t.addr}
			for _, p := range t.peers {
				seeds = append(seeds, p.addr)
			}
			client, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.RecordDeliveryTimeout(20*time.Second),
				kgo.MetadataMinAge(50*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
			if err != nil {
				return nil, err
			}
			defer client.Close()
			// Every broker applies the new topic a moment after the one
			// that created it.
			leader := int32(-1)
			for leader < 1 && ctx.Err() == nil {
				meta, err := kadm.NewClient(client).Metadata(ctx, topic)
				if err == nil && len(meta.Topics[topic].Partitions) == 1 && meta.Topics[topic].Partitions[0].Err == nil {
					leader = meta.Topics[topic].Partitions[0].Leader
				}
				time.Sleep(10 * time.Millisecond)
			}
			victim := t
			for _, p := range t.peers {
				if p.nodeID == leader {
					victim = p
				}
			}
			if victim.nodeID != leader {
				return nil, fmt.Errorf("the partition's leader %d is not one of the brokers started", leader)
			}
			for range 100 { // warm: the client knows the leader
				if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte("warm")}).FirstErr(); err != nil {
					return nil, err
				}
			}
			// Produce without pause; the stall is the longest gap between
			// two acknowledgements around the fault.
			stopped := make(chan struct{})
			go func() {
				defer close(stopped)
				if graceful {
					_ = victim.stopSelf(true)
				} else {
					victim.kill()
				}
			}()
			last, longest, failed := time.Now(), time.Duration(0), 0
			for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
				if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte("during")}).FirstErr(); err != nil {
					failed++
					continue
				}
				now := time.Now()
				longest, last = max(longest, now.Sub(last)), now
				select {
				case <-stopped:
					if longest > 0 && now.Sub(last) < time.Millisecond && time.Since(deadline.Add(-15*time.Second)) > longest+2*time.Second {
						deadline = now // well past the fault
					}
				default:
				}
			}
			<-stopped
			if err := victim.restart(); err != nil {
				return nil, err
			}
			return measurement{"stall ms": float64(longest.Microseconds()) / 1000, "failed produces": float64(failed)}, nil
		},
	}
}

// catchupWorkload measures how fast a follower that was stopped copies
// what was written meanwhile: bytes MiB to 8 partitions of three replicas
// while one broker is down, then from its restart to its return into every
// ISR.
func catchupWorkload(bytes int64) workload {
	return workload{
		name: fmt.Sprintf("follower catch-up after %s written while it was down", bytesName(bytes)),
		setup: func(ctx context.Context, t *target) error {
			if t.name != "kqbroker-cluster" {
				return errors.New("catch-up is measured on -vs kqbroker-cluster only")
			}
			return nil
		},
		run: func(ctx context.Context, t *target) (measurement, error) {
			const partitions = 8
			topic := uniqueTopic("catchup")
			if err := t.createTopic(ctx, topic, partitions); err != nil {
				return nil, err
			}
			seeds := []string{t.addr}
			for _, p := range t.peers {
				seeds = append(seeds, p.addr)
			}
			follower := t.peers[len(t.peers)-1]
			if err := follower.stopSelf(true); err != nil {
				return nil, err
			}
			client, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(1<<20), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			if err != nil {
				return nil, err
			}
			defer client.Close()
			vals := values(64, 16<<10)
			for i := int64(0); i < bytes/(16<<10); i++ {
				client.Produce(ctx, &kgo.Record{Value: vals[i%64]}, nil)
			}
			if err := client.Flush(ctx); err != nil {
				return nil, err
			}
			started := time.Now()
			if err := follower.restart(); err != nil {
				return nil, err
			}
			ready := time.Now()
			// The copy: until the follower's partitions are as large as
			// the first broker's (every broker holds all of them).
			want := topicBytes(t.admin, topic)
			for ctx.Err() == nil && topicBytes(follower.admin, topic) < want {
				time.Sleep(10 * time.Millisecond)
			}
			copied := time.Since(ready)
			id := follower.nodeID
			admin := kadm.NewClient(client)
			for ctx.Err() == nil {
				meta, err := admin.Metadata(ctx, topic)
				inAll := err == nil && len(meta.Topics[topic].Partitions) == partitions
				if inAll {
					for _, p := range meta.Topics[topic].Partitions {
						inAll = inAll && slices.Contains(p.ISR, id)
					}
				}
				if inAll {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			took := time.Since(started)
			_, _ = admin.DeleteTopics(ctx, topic)
			return measurement{"MB/s": float64(want) / 1e6 / copied.Seconds(), "copy s": copied.Seconds(),
				"restart to ISR s": took.Seconds(), "start s": ready.Sub(started).Seconds()}, nil
		},
	}
}

// topicBytes is the size of a topic's partitions on one broker, from its
// /metrics (0 if it cannot be read).
func topicBytes(admin, topic string) int64 {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var total int64
	prefix := `kqbroker_partition_size_bytes{partition="`
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 64<<10), 1<<20)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, `topic="`+topic+`"`) {
			continue
		}
		if value, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			total += int64(value)
		}
	}
	return total
}
