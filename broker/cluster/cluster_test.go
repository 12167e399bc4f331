package cluster

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/storage"
)

func openTestCluster(t *testing.T, dir string) *Cluster {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	c, err := Open(cfg, clock.System{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTopicNamesAndConfigs(t *testing.T) {
	c := openTestCluster(t, t.TempDir())
	defer c.Close()
	cases := []struct {
		name       string
		partitions int32
		configs    map[string]string
		want       error
	}{
		{"orders", -1, nil, nil},
		{"orders", 1, nil, kerr.TopicAlreadyExists},
		{"", 1, nil, kerr.InvalidTopicException},
		{"..", 1, nil, kerr.InvalidTopicException},
		{"has space", 1, nil, kerr.InvalidTopicException},
		{strings.Repeat("a", 250), 1, nil, kerr.InvalidTopicException},
		{"zero", 0, nil, kerr.InvalidPartitions},
		{"cfg", 1, map[string]string{"cleanup.policy": "compact,archive"}, kerr.InvalidConfig},
		{"cfg", 1, map[string]string{"segment.bytes": "10"}, kerr.InvalidConfig},
		{"cfg", 1, map[string]string{"message.timestamp.type": "LogAppendTime", "retention.ms": "-1"}, nil},
	}
	for _, tt := range cases {
		_, err := c.CreateTopic(tt.name, Placement{Partitions: tt.partitions, ReplicationFactor: -1}, tt.configs, false)
		if !errors.Is(err, tt.want) {
			t.Errorf("%.20q: got %v, want %v", tt.name, err, tt.want)
		}
	}
	orders, _ := c.Topic("orders")
	if len(orders.Partitions) != 3 {
		t.Fatalf("orders has %d partitions, want the default 3", len(orders.Partitions))
	}
	cfg, _ := c.Topic("cfg")
	if !cfg.LogAppendTime() || cfg.Partitions[0].Log.Config().RetentionAge >= 0 {
		t.Fatal("topic configs were not applied")
	}
}

func TestMetadataSurvivesRestartAndProducerIDsAreNotReused(t *testing.T) {
	dir := t.TempDir()
	c := openTestCluster(t, dir)
	if _, err := c.CreateTopic("payments", Placement{Partitions: 2, ReplicationFactor: -1}, map[string]string{"retention.ms": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic("gone", Placement{Partitions: 1, ReplicationFactor: -1}, nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	first, _ := c.AllocateProducerID()
	second, _ := c.AllocateProducerID()
	payments, _ := c.Topic("payments")
	id, clusterID := payments.ID, c.ClusterID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "gone-0")); !os.IsNotExist(err) {
		t.Fatalf("a deleted topic's directory remains: %v", err)
	}

	c = openTestCluster(t, dir)
	defer c.Close()
	payments, ok := c.Topic("payments")
	if !ok || payments.ID != id || len(payments.Partitions) != 2 || payments.Configs["retention.ms"] != "1000" || c.ClusterID() != clusterID {
		t.Fatalf("after restart: %+v (cluster %s)", payments, c.ClusterID())
	}
	if _, ok := c.Topic("gone"); ok {
		t.Fatal("a deleted topic came back")
	}
	third, _ := c.AllocateProducerID()
	if second != first+1 || third <= second {
		t.Fatalf("producer ids %d, %d, then %d after a restart", first, second, third)
	}
}

func TestDataDirHasOneOwner(t *testing.T) {
	dir := t.TempDir()
	first := openTestCluster(t, dir)
	cfg := config.Default()
	cfg.DataDir = dir
	_, err := Open(cfg, clock.System{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var inUse *DataDirInUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("second Open of a data directory in use: %v, want a DataDirInUseError", err)
	}
	if inUse.PID != os.Getpid() {
		t.Errorf("the error names pid %d, want the owner's %d", inUse.PID, os.Getpid())
	}
	want := "data directory " + dir + " is in use by another kqbroker (pid " + strconv.Itoa(os.Getpid()) + ")"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	// A lock file left by a process that is gone (here: a pid that cannot
	// be running) does not block the next start.
	if err := os.WriteFile(filepath.Join(dir, dataDirLockFile), []byte("999999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	again := openTestCluster(t, dir)
	owner, err := os.ReadFile(filepath.Join(dir, dataDirLockFile))
	if err != nil || strings.TrimSpace(string(owner)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file holds %q (%v), want this process's pid", owner, err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLeaderEpochFollowsTheImage: a new leader epoch in the metadata (here
// this broker elected again, as a controller would after a failover) is
// the partition's epoch at once, the log records where it begins before
// anything is written in it, and requests of the old epoch are fenced.
func TestLeaderEpochFollowsTheImage(t *testing.T) {
	dir := t.TempDir()
	c := openTestCluster(t, dir)
	topic, err := c.CreateTopic("orders", Placement{Partitions: 1, ReplicationFactor: -1}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partitions[0]
	if _, err := p.Log.Append(recordBatch(3), storage.AppendOptions{LeaderEpoch: p.LeaderEpoch()}); err != nil {
		t.Fatal(err)
	}
	self := c.cfg.NodeID
	if _, err := c.propose(metadata.Record{PartitionChange: &metadata.PartitionChangeRecord{TopicID: topic.ID, Partition: 0, Leader: &self}}); err != nil {
		t.Fatal(err)
	}
	if p.LeaderEpoch() != 1 {
		t.Fatalf("leader epoch %d, want 1", p.LeaderEpoch())
	}
	if epoch, end := p.Log.EndOffsetForEpoch(0); epoch != 0 || end != 3 {
		t.Fatalf("epoch 0 ends at (%d, %d), want (0, 3): epoch 1 begins at the log end, empty", epoch, end)
	}
	if err := p.CheckLeaderEpoch(0); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("a request of epoch 0: %v, want FENCED_LEADER_EPOCH", err)
	}
	if err := p.CheckLeaderEpoch(2); !errors.Is(err, kerr.UnknownLeaderEpoch) {
		t.Fatalf("a request of epoch 2: %v, want UNKNOWN_LEADER_EPOCH", err)
	}
	if err := p.CheckLeaderEpoch(-1); err != nil {
		t.Fatalf("a request without an epoch: %v", err)
	}
	// After a restart: the same epoch, from the replayed log.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openTestCluster(t, dir)
	defer c.Close()
	reopened, _ := c.Topic("orders")
	if reopened.Partitions[0].LeaderEpoch() != 1 || reopened.Partitions[0].Log.LatestLeaderEpoch() != 1 {
		t.Fatalf("after a restart: epoch %d, log's latest %d", reopened.Partitions[0].LeaderEpoch(), reopened.Partitions[0].Log.LatestLeaderEpoch())
	}
}

// recordBatch is a magic-v2 batch of n small records, encoded by kmsg.
func recordBatch(n int) []byte {
	var records []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("value")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		records = r.AppendTo(records)
	}
	batch := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: records}
	out := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// TestABrokerRunsOnItsSeams: a broker whose data directory is an
// in-memory file system and whose time is a manual clock writes nothing to
// the disk, and finds its topic and records again when it is opened again
// on the same file system: the metadata log, the partition logs and the
// offsets log all go through the FS seam.
func TestABrokerRunsOnItsSeams(t *testing.T) {
	fsys, clk := storage.NewMemFS(), clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "in-memory") // never created on the disk
	open := func() *Cluster {
		c, err := OpenWith(cfg, Deps{Clock: clk, FS: fsys, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open()
	topic, err := c.CreateTopic("orders", Placement{Partitions: 2, ReplicationFactor: -1}, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p := topic.Partitions[1]
	if _, err := p.Log.Append(recordBatch(3), storage.AppendOptions{LeaderEpoch: p.LeaderEpoch()}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute) // the maintenance loop runs on this clock
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the data directory is on the disk (%v): something bypassed the FS seam", err)
	}
	if names, err := fsys.ReadDir(cfg.DataDir); err != nil || !slices.Contains(names, "orders-1") {
		t.Fatalf("the in-memory data directory holds %v (%v), want orders-1 among them", names, err)
	}
	c = open()
	defer c.Close()
	reopened, ok := c.Topic("orders")
	if !ok || reopened.ID != topic.ID || len(reopened.Partitions) != 2 {
		t.Fatalf("after reopening: %+v %v", reopened, ok)
	}
	if end := reopened.Partitions[1].Log.LogEndOffset(); end != 3 {
		t.Fatalf("log end %d after reopening, want 3", end)
	}
}
