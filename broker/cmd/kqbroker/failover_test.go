package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/common/push"
)

// acks records, per client, which values were acknowledged.
type acks struct {
	mu     sync.Mutex
	values map[string]bool
	failed map[string]int
}

func (a *acks) record(client, value string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.failed[client]++
		return
	}
	a.values[value] = true
}

// kqHandled counts the values a kq consumer group handled.
type kqHandled struct {
	mu    sync.Mutex
	count map[string]int
}

func (h *kqHandled) Consume(_ context.Context, _, value string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count[value]++
	return nil
}

// TestClientsFailOver: kafka-go (the project's kq-style pusher, acks=all),
// sarama (an idempotent SyncProducer) and a go-queue kq consumer group run
// against three kqbroker processes while the broker leading a partition
// is killed with SIGKILL, then restarted. None of them is told anything:
// they refresh their metadata and go on with the new leader. Every value
// acknowledged to a producer is in the topic, the kq group handles them
// all, and kcat (librdkafka) produces to the cluster and reads it back
// after the failover.
func TestClientsFailOver(t *testing.T) {
	bin := buildBroker(t)
	brokers, addrs, configs := startClusterProcesses(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := kadm.NewClient(mustClient(t, addrs...))
	// The new cluster's __consumer_offsets (50 partitions, 3 replicas) is
	// created and replicated first, so the producers' figures below are of
	// the failover, not of that start.
	waitWholeISRs(t, ctx, admin, "__consumer_offsets", 3)
	// Partition 0 led by broker 2, partition 1 by broker 3.
	create := kmsg.NewPtrCreateTopicsRequest()
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = "failover", -1, -1
	for i, replicas := range [][]int32{{2, 3, 1}, {3, 1, 2}} {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), replicas
		topic.ReplicaAssignment = append(topic.ReplicaAssignment, a)
	}
	create.Topics = append(create.Topics, topic)
	if resp, err := create.RequestWith(ctx, mustClient(t, addrs...)); err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}
	for len(partitionLeaders(t, ctx, admin, "failover")) < 2 {
		time.Sleep(20 * time.Millisecond)
	}

	got := &acks{values: map[string]bool{}, failed: map[string]int{}}
	producing, stopProducing := context.WithCancel(ctx)
	var producers sync.WaitGroup
	pusher, err := push.NewPusher(push.Config{Brokers: addrs, Topic: "failover", Attempts: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Producer.Retry.Max = 20
	cfg.Producer.Retry.Backoff = 250 * time.Millisecond
	cfg.Net.MaxOpenRequests = 1
	cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
	saramaProducer, err := sarama.NewSyncProducer(addrs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer saramaProducer.Close()
	producers.Add(2)
	go func() {
		defer producers.Done()
		for i := 0; producing.Err() == nil; i++ {
			value := fmt.Sprintf("kafka-go-%d", i)
			got.record("kafka-go", value, pusher.PushWithKey(ctx, value, value))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go func() {
		defer producers.Done()
		for i := 0; producing.Err() == nil; i++ {
			value := fmt.Sprintf("sarama-%d", i)
			_, _, err := saramaProducer.SendMessage(&sarama.ProducerMessage{Topic: "failover", Key: sarama.StringEncoder(value), Value: sarama.StringEncoder(value)})
			got.record("sarama", value, err)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	handled := &kqHandled{count: map[string]int{}}
	group := kq.MustNewQueue(kq.KqConf{
		ServiceConf: service.ServiceConf{Name: "failover", Log: logx.LogConf{Mode: "console", Level: "severe"}},
		Brokers:     addrs, Group: "failover-group", Topic: "failover", Offset: "first",
		Conns: 1, Consumers: 1, Processors: 1, MinBytes: 1, MaxBytes: 10 << 20,
	}, handled, kq.WithMaxWait(200*time.Millisecond), kq.WithCommitInterval(200*time.Millisecond))
	go group.Start()
	defer group.Stop()

	time.Sleep(2 * time.Second)
	brokers[1].kill() // kill -9 the leader of partition 0
	time.Sleep(4 * time.Second)
	if out, err := kcatRun(t, "during-1\nduring-2\n", "-b", strings.Join(addrs, ","), "-t", "failover", "-P", "-X", "acks=all"); err != nil {
		t.Fatalf("kcat producing with a broker down: %v\n%s", err, out)
	}
	brokers[1] = startProcess(t, bin, "-config", configs[1])
	time.Sleep(2 * time.Second)
	stopProducing()
	producers.Wait()
	waitWholeISRs(t, ctx, admin, "failover", 3)

	// Every acknowledged value is there, read from the start by franz-go.
	ends, err := admin.ListEndOffsets(ctx, "failover")
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	consumer := mustClient(t, addrs...)
	consumer.AddConsumePartitions(map[string]map[int32]kgo.Offset{"failover": {0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart()}})
	present := map[string]bool{}
	for read := 0; read < total && ctx.Err() == nil; {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) { present[string(r.Value)] = true; read++ })
	}
	lost := 0
	for value := range got.values {
		if !present[value] {
			lost++
		}
	}
	perClient := map[string]int{}
	for value := range got.values {
		perClient[strings.SplitN(value, "-", 2)[0]]++
	}
	t.Logf("acknowledged: kafka-go %d, sarama %d (failed to the producer: %v); %d records in the topic; lost %d",
		perClient["kafka"], perClient["sarama"], got.failed, total, lost)
	if lost != 0 || perClient["kafka"] < 100 || perClient["sarama"] < 100 {
		t.Fatalf("lost %d acknowledged values; acknowledged per client %v", lost, perClient)
	}
	if !present["during-1"] || !present["during-2"] {
		t.Fatal("kcat's records, produced while a broker was down, are not in the topic")
	}
	// The kq group handled every acknowledged value.
	for deadline := time.Now().Add(60 * time.Second); ; {
		handled.mu.Lock()
		missing := 0
		for value := range got.values {
			if handled.count[value] == 0 {
				missing++
			}
		}
		handled.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the kq group has not handled %d acknowledged values", missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// kcat reads the whole topic after the failover.
	out, err := kcatRun(t, "", "-b", strings.Join(addrs, ","), "-t", "failover", "-C", "-o", "beginning", "-e", "-q", "-f", "%s\n")
	if err != nil {
		t.Fatalf("kcat consuming: %v\n%s", err, out)
	}
	if lines := strings.Count(out, "\n"); lines != total {
		t.Fatalf("kcat read %d records, the topic has %d", lines, total)
	}
}

// kcatRun runs kcat; the test skips (saying why) where it is not installed.
func kcatRun(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat; .ci/run installs it)")
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
