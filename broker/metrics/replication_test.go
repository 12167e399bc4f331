package metrics_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/metrics"
)

// waitScrape scrapes m until every series in want has its value.
func waitScrape(t *testing.T, ctx context.Context, m *metrics.Metrics, what string, want map[string]float64) map[string]float64 {
	t.Helper()
	for {
		s := scrape(t, m)
		missing := ""
		for key, value := range want {
			if got, ok := s[key]; !ok || got != value {
				missing = key
				break
			}
		}
		if missing == "" {
			return s
		}
		if ctx.Err() != nil {
			t.Fatalf("%s: %s = %v, want %v", what, missing, s[missing], want[missing])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicationMetricsInACluster: three brokers, a partition with
// three replicas led by broker 1. The leader reports its followers' lag;
// the group coordinator reports lag for a partition another broker
// leads; with a follower stopped the partition is under-replicated, the
// follower's lag in time grows and it is counted fenced; started again,
// it catches up and the leader counts it back in the ISR. Every broker
// knows the quorum's leader and term.
func TestReplicationMetricsInACluster(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, func(c *config.Config) {
		c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 200, 1500
		// One replica per partition of __consumer_offsets, so that the
		// counts below are of the test's topics only.
		c.OffsetsTopicReplicationFactor = 1
	})
	m := make([]*metrics.Metrics, len(brokers))
	for i, b := range brokers {
		m[i] = metrics.New(b.Cluster)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers[0].Addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	createOnePartition(t, ctx, client, "orders", 1, 2, 3) // led by broker 1
	for i := range 5 {
		if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The controller created __consumer_offsets with the cluster: broker
	// 1 leads orders and its share of those partitions.
	ledByOne := 1.0
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if offsets, ok := brokers[0].Cluster.Topic("__consumer_offsets"); ok {
			for _, p := range offsets.Partitions {
				if p.State().Leader == 1 {
					ledByOne++
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the controller did not create __consumer_offsets")
		}
	}
	// acks=all answered: both followers fetched to the log end.
	waitScrape(t, ctx, m[0], "the leader with its followers caught up", map[string]float64{
		"kqbroker_partition_in_sync_replicas{partition=0,topic=orders}":    3,
		"kqbroker_replica_lag_records{partition=0,replica=2,topic=orders}": 0,
		"kqbroker_replica_lag_records{partition=0,replica=3,topic=orders}": 0,
		"kqbroker_replica_lag_seconds{partition=0,replica=2,topic=orders}": 0,
		"kqbroker_under_replicated_partitions{}":                           0,
		"kqbroker_leader_partitions{}":                                     ledByOne,
		"kqbroker_brokers{state=active}":                                   3,
		"kqbroker_offline_partitions{}":                                    0,
	})
	var term, leaders float64
	for i := range m {
		s := scrape(t, m[i])
		if _, ok := s["kqbroker_replica_lag_records{partition=0,replica=1,topic=orders}"]; ok {
			t.Errorf("broker %d, a follower, reports lag", i+1)
		}
		if s["kqbroker_quorum_leader{}"] < 1 || (term != 0 && s["kqbroker_quorum_term{}"] != term) {
			t.Errorf("broker %d: quorum leader %v, term %v (another broker said term %v)", i+1, s["kqbroker_quorum_leader{}"], s["kqbroker_quorum_term{}"], term)
		}
		term = s["kqbroker_quorum_term{}"]
		leaders += s["kqbroker_active_controller{}"]
	}
	if leaders != 1 {
		t.Errorf("%v brokers say they are the active controller, want 1", leaders)
	}

	// The coordinator of billing (the leader of its partition of
	// __consumer_offsets) reports the lag of a partition another broker
	// leads from its own replica's HW.
	found := kadm.NewClient(client).FindGroupCoordinators(ctx, "billing")
	coordinator := found["billing"].NodeID
	if found["billing"].Err != nil || coordinator < 1 || int(coordinator) > len(m) {
		t.Fatalf("the coordinator of billing: %+v", found["billing"])
	}
	// Led by broker 2, or 1 when 2 coordinates; broker 3, which stops
	// below, never leads it.
	other, underWithoutThree := int32(2), 1.0
	if coordinator == 2 {
		other, underWithoutThree = 1, 2 // orders and payments, both led by broker 1
	}
	createOnePartition(t, ctx, client, "payments", other, 6-other-coordinator, coordinator) // all three, other leading
	for range 4 {
		if err := client.ProduceSync(ctx, &kgo.Record{Topic: "payments", Value: []byte("p")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var commit kadm.Offsets
	commit.Add(kadm.Offset{Topic: "payments", Partition: 0, At: 1, LeaderEpoch: -1})
	if err := kadm.NewClient(client).CommitAllOffsets(ctx, "billing", commit); err != nil {
		t.Fatal(err)
	}
	waitScrape(t, ctx, m[coordinator-1], "the coordinator's lag of a partition it follows", map[string]float64{
		"kqbroker_group_committed_offset{group=billing,partition=0,topic=payments}": 1,
		"kqbroker_group_lag{group=billing,partition=0,topic=payments}":              3,
	})

	// Broker 3 stops: out of the ISR (the controller's change, not the
	// leader's), fenced, and further and further behind.
	brokers[2].Stop(t)
	for i := range 3 {
		if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	before := waitScrape(t, ctx, m[0], "the leader with broker 3 stopped", map[string]float64{
		"kqbroker_partition_in_sync_replicas{partition=0,topic=orders}":    2,
		"kqbroker_under_replicated_partitions{}":                           underWithoutThree,
		"kqbroker_replica_lag_records{partition=0,replica=3,topic=orders}": 3,
		"kqbroker_brokers{state=fenced}":                                   1,
		"kqbroker_isr_expands_total{partition=0,topic=orders}":             0,
	})["kqbroker_replica_lag_seconds{partition=0,replica=3,topic=orders}"]
	time.Sleep(100 * time.Millisecond)
	if after := scrape(t, m[0])["kqbroker_replica_lag_seconds{partition=0,replica=3,topic=orders}"]; after <= before || before <= 0 {
		t.Errorf("the stopped follower's lag in time went from %v to %v, want it growing", before, after)
	}

	// Started again, it catches up and the leader puts it back.
	brokers[2].StartAgain(t)
	waitScrape(t, ctx, m[0], "the leader with broker 3 back", map[string]float64{
		"kqbroker_partition_in_sync_replicas{partition=0,topic=orders}":    3,
		"kqbroker_under_replicated_partitions{}":                           0,
		"kqbroker_isr_expands_total{partition=0,topic=orders}":             1,
		"kqbroker_isr_shrinks_total{partition=0,topic=orders}":             0,
		"kqbroker_replica_lag_records{partition=0,replica=3,topic=orders}": 0,
		"kqbroker_brokers{state=active}":                                   3,
	})
}

// replicatedFamilies names the metric families three brokers export
// together once a partition with three replicas took a record.
func replicatedFamilies(t *testing.T) map[string]bool {
	t.Helper()
	brokers := brokertest.StartCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers[0].Addr), kgo.DefaultProduceTopic("replicated"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 1, 3, nil, "replicated"); err != nil {
		t.Fatal(err)
	}
	if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	families := map[string]bool{}
	for _, b := range brokers {
		rec := httptest.NewRecorder()
		metrics.New(b.Cluster).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		parsed, err := new(expfmt.TextParser).TextToMetricFamilies(strings.NewReader(rec.Body.String()))
		if err != nil {
			t.Fatal(err)
		}
		for name := range parsed {
			families[name] = true
		}
	}
	return families
}

// createOnePartition creates a topic of one partition on the replicas
// given, the first its leader.
func createOnePartition(t *testing.T, ctx context.Context, client *kgo.Client, name string, replicas ...int32) {
	t.Helper()
	create := kmsg.NewPtrCreateTopicsRequest()
	topic := kmsg.NewCreateTopicsRequestTopic()
	topic.Topic, topic.NumPartitions, topic.ReplicationFactor = name, -1, -1
	assignment := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	assignment.Replicas = replicas
	topic.ReplicaAssignment = append(topic.ReplicaAssignment, assignment)
	create.Topics = append(create.Topics, topic)
	resp, err := create.RequestWith(ctx, client)
	if err == nil {
		err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("creating %s on %v: %v", name, replicas, err)
	}
}
