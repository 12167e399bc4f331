package server_test

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/group"
)

// TestLegacyDataDirIsTakenOver: a data directory of the kqbroker before the
// metadata quorum, which kept its metadata in kqbroker-metadata.json beside
// the same partition logs, producer state and __consumer_offsets log, is
// taken over at the first start: the topic keeps its id, partitions and
// configs, the records and a group's committed offsets are there, producer
// ids are never reused, and an idempotent producer goes on.
func TestLegacyDataDirIsTakenOver(t *testing.T) {
	brokertest.SingleBroker(t, "it rewrites one broker's data directory into the layout of a single-node version")
	b := groupBroker(t)
	ctx := testContext(t)
	admin := kadm.NewClient(newClient(t, b.Addr))
	if _, err := admin.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": kgoString("86400000")}, "payments"); err != nil {
		t.Fatal(err)
	}
	producer := newClient(t, b.Addr, kgo.DefaultProduceTopic("payments"))
	for i := range 20 {
		if err := producer.ProduceSync(ctx, &kgo.Record{Key: []byte{byte(i)}, Value: []byte("before")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.CommitOffsets(ctx, "billing", kadm.OffsetsFromRecords(kgo.Record{Topic: "payments", Partition: 0, Offset: 4})); err != nil {
		t.Fatal(err)
	}
	topics, err := admin.ListTopics(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	topicID, clusterID := topics["payments"].ID, b.Cluster.ClusterID()
	ends, err := admin.ListEndOffsets(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	producer.Close()
	admin.Close()
	b.Stop(t)

	// The directory as the earlier kqbroker left it: no metadata log, its
	// JSON file instead (producer ids up to 5000 reserved), and every
	// group in one private log where partition 0 of __consumer_offsets
	// now is (same record format): the partition holding billing, alone.
	if err := os.RemoveAll(filepath.Join(b.Config.DataDir, "__cluster_metadata")); err != nil {
		t.Fatal(err)
	}
	billing := fmt.Sprintf("__consumer_offsets-%d", group.PartitionFor("billing", 50))
	if err := os.Rename(filepath.Join(b.Config.DataDir, billing), filepath.Join(b.Config.DataDir, "private")); err != nil {
		t.Fatal(err)
	}
	stale, _ := filepath.Glob(filepath.Join(b.Config.DataDir, "__consumer_offsets-*"))
	for _, dir := range stale {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(filepath.Join(b.Config.DataDir, "private"), filepath.Join(b.Config.DataDir, "__consumer_offsets-0")); err != nil {
		t.Fatal(err)
	}
	legacy, _ := json.Marshal(map[string]any{
		"cluster_id": clusterID, "next_producer_id": 5000,
		"topics": []map[string]any{{"name": "payments", "id": hex.EncodeToString(topicID[:]), "partitions": 2, "configs": map[string]string{"retention.ms": "86400000"}}},
	})
	if err := os.WriteFile(filepath.Join(b.Config.DataDir, "kqbroker-metadata.json"), legacy, 0o644); err != nil {
		t.Fatal(err)
	}

	for restart := range 2 { // taken over, then simply reopened
		b.StartAgain(t)
		admin = kadm.NewClient(newClient(t, b.Addr))
		topics, err := admin.ListTopics(ctx, "payments")
		if err != nil || topics["payments"].ID != topicID || len(topics["payments"].Partitions) != 2 {
			t.Fatalf("restart %d: payments is %+v (%v), want id %v and 2 partitions", restart, topics["payments"], err, topicID)
		}
		if b.Cluster.ClusterID() != clusterID {
			t.Fatalf("restart %d: cluster id %q, want %q", restart, b.Cluster.ClusterID(), clusterID)
		}
		configs, err := admin.DescribeTopicConfigs(ctx, "payments")
		if err != nil {
			t.Fatal(err)
		}
		if v, err := configs.On("payments", nil); err != nil || configValue(v, "retention.ms") != "86400000" {
			t.Fatalf("restart %d: retention.ms %q (%v)", restart, configValue(v, "retention.ms"), err)
		}
		after, err := admin.ListEndOffsets(ctx, "payments")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []int32{0, 1} {
			before, _ := ends.Lookup("payments", p)
			now, _ := after.Lookup("payments", p)
			if now.Offset < before.Offset {
				t.Fatalf("restart %d: partition %d ends at %d, before the upgrade at %d", restart, p, now.Offset, before.Offset)
			}
		}
		committed, err := admin.FetchOffsets(ctx, "billing")
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := committed.Lookup("payments", 0); !ok || o.At != 5 { // the record at 4 processed: the next is 5
			t.Fatalf("restart %d: billing's committed offset %+v, want 5", restart, o)
		}
		id, err := b.Cluster.AllocateProducerID()
		if err != nil || id < 5000 {
			t.Fatalf("restart %d: producer id %d (%v): ids below 5000 were handed out before", restart, id, err)
		}
		producer = newClient(t, b.Addr, kgo.DefaultProduceTopic("payments"))
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
			t.Fatalf("restart %d: produce: %v", restart, err)
		}
		producer.Close()
		admin.Close()
		b.Stop(t)
		if _, err := os.Stat(filepath.Join(b.Config.DataDir, "kqbroker-metadata.json.migrated")); err != nil {
			t.Fatalf("restart %d: the old metadata file is not kept as .migrated: %v", restart, err)
		}
	}
}

// newClient is a franz-go client of addr, closed when the test ends.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	client, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

func kgoString(s string) *string { return &s }

func configValue(r kadm.ResourceConfig, name string) string {
	for _, c := range r.Configs {
		if c.Key == name && c.Value != nil {
			return *c.Value
		}
	}
	return ""
}
