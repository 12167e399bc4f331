package main

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestFaultsLoseNoAcknowledgedRecord: idempotent acks=all producers write
// to a 6-partition topic of three replicas (min.insync.replicas 2) on three
// kqbroker processes while the leader of partition 0 is killed with
// SIGKILL and restarted, and another broker (possibly the quorum leader)
// is paused with SIGSTOP past the session timeout and resumed. Once every
// ISR is whole again the checker reads every partition back (writes_test.go),
// then the brokers stop and every partition's three replicas are
// compared, byte for byte.
func TestFaultsLoseNoAcknowledgedRecord(t *testing.T) {
	bin := buildBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	brokers, addrs, configs, admin, w := startCheckedCluster(t, ctx, bin, "checked")

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
	w.stopWrites()
	waitWholeISRs(t, ctx, admin, "checked", 3)
	w.check(t, ctx, admin, addrs)
	for _, b := range brokers {
		b.stop(t)
	}
	compareReplicas(t, configs, "checked", 6)
}

// TestRollingRestartLosesNothing restarts the three brokers one after the
// other with SIGTERM, each once the ISRs are whole again, while idempotent
// acks=all producers write: a clean stop hands its leaderships over first,
// so no produce fails to the application, and the checker finds every
// acknowledged record; the replicas end identical.
func TestRollingRestartLosesNothing(t *testing.T) {
	bin := buildBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	brokers, addrs, configs, admin, w := startCheckedCluster(t, ctx, bin, "rolling")
	time.Sleep(time.Second)
	for i := range brokers {
		brokers[i].stop(t) // SIGTERM: a controlled shutdown
		time.Sleep(500 * time.Millisecond)
		brokers[i] = startProcess(t, bin, "-config", configs[i])
		waitWholeISRs(t, ctx, admin, "rolling", 3)
	}
	time.Sleep(time.Second)
	w.stopWrites()
	w.check(t, ctx, admin, addrs)
	if w.failed != 0 {
		t.Errorf("%d produces failed to the application during the rolling restart", w.failed)
	}
	for _, b := range brokers {
		b.stop(t)
	}
	compareReplicas(t, configs, "rolling", 6)
}

// TestKillFollowerAndControllerLosesNothing: under the same producers and
// checker, a follower of partition 0 is killed with SIGKILL and restarted,
// then the broker that leads the metadata quorum (the controller).
func TestKillFollowerAndControllerLosesNothing(t *testing.T) {
	bin := buildBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	brokers, addrs, configs, admin, w := startCheckedCluster(t, ctx, bin, "checked")
	time.Sleep(time.Second)
	meta, err := admin.Metadata(ctx, "checked")
	if err != nil {
		t.Fatal(err)
	}
	leader := meta.Topics["checked"].Partitions[0].Leader
	follower := -1
	for id := int32(1); id <= 3; id++ {
		if id != leader && (follower < 0 || id != meta.Controller) {
			follower = int(id) - 1
		}
	}
	brokers[follower].kill() // kill -9 a follower of partition 0
	time.Sleep(2 * time.Second)
	brokers[follower] = startProcess(t, bin, "-config", configs[follower])
	waitWholeISRs(t, ctx, admin, "checked", 3)
	if meta, err = admin.Metadata(ctx); err != nil || meta.Controller < 1 {
		t.Fatalf("no controller: %v", err)
	}
	controller := int(meta.Controller) - 1
	brokers[controller].kill() // kill -9 the quorum leader
	time.Sleep(3 * time.Second)
	brokers[controller] = startProcess(t, bin, "-config", configs[controller])
	time.Sleep(time.Second)
	w.stopWrites()
	waitWholeISRs(t, ctx, admin, "checked", 3)
	w.check(t, ctx, admin, addrs)
	for _, b := range brokers {
		b.stop(t)
	}
	compareReplicas(t, configs, "checked", 6)
}

// startCheckedCluster starts three kqbroker processes, a 6-partition topic
// of three replicas, and the checked writes to it.
func startCheckedCluster(t *testing.T, ctx context.Context, bin, topic string) ([]*brokerProcess, []string, []string, *kadm.Client, *writes) {
	t.Helper()
	brokers, addrs, configs := startClusterProcesses(t, bin, 3)
	admin := kadm.NewClient(mustClient(t, addrs...))
	if _, err := admin.CreateTopic(ctx, 6, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	for len(partitionLeaders(t, ctx, admin, topic)) < 6 {
		time.Sleep(20 * time.Millisecond)
	}
	return brokers, addrs, configs, admin, startWrites(t, ctx, addrs, topic)
}

// TestFollowerDownWhileMuchIsWritten: a follower is killed with SIGKILL,
// KQ_FAULT_BYTES (64 MiB in make test; make chaos writes 1 GiB) are
// written besides the checked records while it is down, and it is
// restarted: it catches up, every ISR is whole again, nothing acknowledged
// is lost and the replicas end identical.
func TestFollowerDownWhileMuchIsWritten(t *testing.T) {
	total := int64(64 << 20)
	if v := os.Getenv("KQ_FAULT_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			t.Fatalf("KQ_FAULT_BYTES=%q: want a number of bytes", v)
		}
		total = n
	}
	bin := buildBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	brokers, addrs, configs, admin, w := startCheckedCluster(t, ctx, bin, "checked")
	meta, err := admin.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The bulk goes to a topic of its own (the checker's values are unique).
	if _, err := admin.CreateTopic(ctx, 6, 3, nil, "bulk"); err != nil {
		t.Fatal(err)
	}
	for len(partitionLeaders(t, ctx, admin, "bulk")) < 6 {
		time.Sleep(20 * time.Millisecond)
	}
	// The writers' producers have their ids first: franz-go fails its
	// buffered records when the broker it asks for one dies under the
	// request ("broker closed the connection immediately after a request
	// was issued"), which would count as failed produces.
	time.Sleep(time.Second)
	down := int(1+meta.Controller%3) - 1 // not the controller
	brokers[down].kill()
	bulk, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("bulk"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer bulk.Close()
	value := make([]byte, 16<<10)
	for i := range value {
		value[i] = byte(i * 31 % 253)
	}
	for written := int64(0); written < total; written += int64(len(value)) {
		bulk.Produce(ctx, &kgo.Record{Value: value}, nil)
	}
	if err := bulk.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	brokers[down] = startProcess(t, bin, "-config", configs[down])
	waitWholeISRs(t, ctx, admin, "bulk", 3)
	waitWholeISRs(t, ctx, admin, "checked", 3)
	t.Logf("wrote %d MiB while broker %d was down; it was back in every ISR %v after its restart", total>>20, down+1, time.Since(restarted).Round(10*time.Millisecond))
	w.stopWrites()
	w.check(t, ctx, admin, addrs)
	for _, b := range brokers {
		b.stop(t)
	}
	compareReplicas(t, configs, "checked", 6)
	compareReplicas(t, configs, "bulk", 6)
}
