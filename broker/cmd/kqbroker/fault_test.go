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
	w := startWrites(t, ctx, addrs, "checked")

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
	brokers, addrs, configs := startClusterProcesses(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := kadm.NewClient(mustClient(t, addrs...))
	if _, err := admin.CreateTopic(ctx, 6, 3, nil, "rolling"); err != nil {
		t.Fatal(err)
	}
	for len(partitionLeaders(t, ctx, admin, "rolling")) < 6 {
		time.Sleep(20 * time.Millisecond)
	}
	w := startWrites(t, ctx, addrs, "rolling")
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
