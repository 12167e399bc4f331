package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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
