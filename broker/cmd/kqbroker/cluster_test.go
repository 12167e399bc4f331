package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kqstack/kqstack/internal/testport"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKilledBrokerIsFencedAndComesBack: three kqbroker processes are one
// metadata quorum. Broker 3 is killed with SIGKILL: it cannot say it is
// leaving. The brokers have Kafka's heartbeat settings (every 2 s, fenced
// after 9 s of silence), but the controller fences it within about a
// second: its heartbeat connection closed when it died. Metadata stops
// listing it and its one-replica partition
// has no leader (LEADER_NOT_AVAILABLE) while the other brokers go on
// serving theirs. Restarted on its data directory, it registers again,
// leads its partition again, and the records acknowledged before the kill
// are there.
func TestKilledBrokerIsFencedAndComesBack(t *testing.T) {
	bin := buildBroker(t)
	brokers, addrs, configs := startClusterProcessesWith(t, bin, 3, "broker_heartbeat_interval_ms: 2000\nbroker_session_timeout_ms: 9000\n")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(addrs[:3]...))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 3, 1, nil, "spread"); err != nil {
		t.Fatal(err)
	}
	// Every broker answers Metadata once it has applied the new topic.
	leaders := partitionLeaders(t, ctx, admin, "spread")
	for len(leaders) < 3 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
		leaders = partitionLeaders(t, ctx, admin, "spread")
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers(addrs[:3]...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	for p := range int32(3) {
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "spread", Partition: p, Value: []byte(fmt.Sprint("before-", p))}).FirstErr(); err != nil {
			t.Fatalf("partition %d: %v", p, err)
		}
	}
	// The victim is not the controller: a new controller would first give
	// every broker a whole session (it has heard from none of them).
	meta, err := admin.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim := int32(1 + meta.Controller%3) // another broker
	var onVictim int32 = -1
	for p, leader := range leaders {
		if leader == victim {
			onVictim = p
		}
	}
	if onVictim < 0 {
		t.Fatalf("no partition on broker %d: leaders %v", victim, leaders)
	}
	var survivorAddrs []string
	for i, a := range addrs {
		if int32(i+1) != victim {
			survivorAddrs = append(survivorAddrs, a)
		}
	}

	killed := time.Now()
	brokers[victim-1].kill()
	survivors := kadm.NewClient(mustClient(t, survivorAddrs...))
	for {
		meta, err := survivors.Metadata(ctx, "spread")
		if err == nil && len(meta.Brokers) == 2 {
			p := meta.Topics["spread"].Partitions[onVictim]
			if p.Leader == -1 {
				t.Logf("broker %d fenced %v after the kill (session timeout 9 s); its partition %d has no leader (%v)", victim, time.Since(killed).Round(10*time.Millisecond), onVictim, p.Err)
				break
			}
		}
		if ctx.Err() != nil || time.Since(killed) > 8*time.Second {
			t.Fatalf("broker %d still in service %v after kill -9, nearly its whole session: %v %v", victim, time.Since(killed).Round(time.Millisecond), err, meta.Brokers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The others still serve their partitions.
	for p, leader := range leaders {
		if leader == victim {
			continue
		}
		if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "spread", Partition: p, Value: []byte("while-the-victim-is-down")}).FirstErr(); err != nil {
			t.Fatalf("partition %d (broker %d) with broker %d down: %v", p, leader, victim, err)
		}
	}

	brokers[victim-1] = startProcess(t, bin, "-config", configs[victim-1])
	for {
		if leaders := partitionLeaders(t, ctx, survivors, "spread"); leaders[onVictim] == victim {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("broker %d never led its partition again", victim)
		}
		time.Sleep(100 * time.Millisecond)
	}
	consumer := mustClient(t, addrs[:3]...)
	consumer.AddConsumePartitions(map[string]map[int32]kgo.Offset{"spread": {onVictim: kgo.NewOffset().AtStart()}})
	fetches := consumer.PollFetches(ctx)
	if records := fetches.Records(); len(records) == 0 || string(records[0].Value) != fmt.Sprint("before-", onVictim) {
		t.Fatalf("partition %d after the restart: %v %v", onVictim, fetches.Errors(), records)
	}
	if err := producer.ProduceSync(ctx, &kgo.Record{Topic: "spread", Partition: onVictim, Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("producing to broker %d's partition after its restart: %v", victim, err)
	}
	for _, b := range brokers {
		b.stop(t)
	}
}

// startClusterProcesses runs n kqbroker processes that are one metadata
// quorum (heartbeats every 200 ms, fenced after 1.5 s of silence). It
// returns them, their client addresses and their config files.
func startClusterProcesses(t *testing.T, bin string, n int) ([]*brokerProcess, []string, []string) {
	t.Helper()
	return startClusterProcessesWith(t, bin, n, "broker_heartbeat_interval_ms: 200\nbroker_session_timeout_ms: 1500\n")
}

// startClusterProcessesWith is startClusterProcesses with other settings
// (YAML lines) for the heartbeats and sessions.
func startClusterProcessesWith(t *testing.T, bin string, n int, sessions string) ([]*brokerProcess, []string, []string) {
	t.Helper()
	all := testport.Addrs(t, 2*n) // client and controller ports
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, all[n+i]))
	}
	configs := make([]string, n)
	for i := range n {
		configs[i] = filepath.Join(t.TempDir(), "kqbroker.yaml")
		text := fmt.Sprintf("node_id: %d\nlisten: %s\ncontroller_listen: %s\ncontroller_quorum_voters: %s\ndata_dir: %s\nadmin_listen: \"\"\n%sreplica_lag_time_max_ms: 2000\ngroup_initial_rebalance_delay_ms: 0\n",
			i+1, all[i], all[n+i], strings.Join(voters, ","), t.TempDir(), sessions)
		if err := os.WriteFile(configs[i], []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return startConfigured(t, bin, configs), all[:n], configs
}

// startConfigured starts a kqbroker process per config file, all at once
// (each waits for a majority of the quorum), and returns them ready.
func startConfigured(t *testing.T, bin string, configs []string) []*brokerProcess {
	t.Helper()
	brokers := make([]*brokerProcess, len(configs))
	started := make(chan struct{}, len(configs))
	for i := range configs {
		go func() {
			defer func() { started <- struct{}{} }() // also when startProcess fails the test
			brokers[i] = startProcess(t, bin, "-config", configs[i])
		}()
	}
	for range configs {
		<-started
	}
	for i, b := range brokers {
		if b == nil {
			t.Fatalf("broker %d did not start", i+1)
		}
	}
	return brokers
}

func mustClient(t *testing.T, seeds ...string) *kgo.Client {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

// partitionLeaders maps a topic's partitions to their leaders.
func partitionLeaders(t *testing.T, ctx context.Context, admin *kadm.Client, topic string) map[int32]int32 {
	t.Helper()
	meta, err := admin.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int32{}
	for _, p := range meta.Topics[topic].Partitions {
		leaders[p.Partition] = p.Leader
	}
	return leaders
}
