package cluster

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/config"
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
		{"cfg", 1, map[string]string{"cleanup.policy": "compact"}, kerr.InvalidConfig},
		{"cfg", 1, map[string]string{"segment.bytes": "10"}, kerr.InvalidConfig},
		{"cfg", 1, map[string]string{"message.timestamp.type": "LogAppendTime", "retention.ms": "-1"}, nil},
	}
	for _, tt := range cases {
		_, err := c.CreateTopic(tt.name, tt.partitions, tt.configs, false)
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
	if _, err := c.CreateTopic("payments", 2, map[string]string{"retention.ms": "1000"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic("gone", 1, nil, false); err != nil {
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
