package metrics_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/metrics"
	"github.com/kqstack/kqstack/broker/server"
)

// startMeasuredBroker runs a real broker whose server records into m.
func startMeasuredBroker(t *testing.T) (string, *metrics.Metrics) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.GroupInitialRebalanceDelayMs = t.TempDir(), ln.Addr().String(), 0
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cl, err := cluster.Open(cfg, clock.System{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New(cl)
	srv := server.New(cl, logger)
	srv.SetMetrics(m)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = cl.Close()
	})
	return ln.Addr().String(), m
}

// scrape reads /metrics as Prometheus would, returning "name{labels}" -> value.
func scrape(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	families, err := new(expfmt.TextParser).TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, metric := range f.Metric {
			var labels []string
			for _, l := range metric.Label {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case metric.Counter != nil:
				out[key] = metric.Counter.GetValue()
			case metric.Gauge != nil:
				out[key] = metric.Gauge.GetValue()
			case metric.Histogram != nil:
				out[key+"_count"] = float64(metric.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func TestMetricsFollowRealTraffic(t *testing.T) {
	addr, m := startMeasuredBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	// acks=all (franz-go's default): 10 records, each durable before its ack.
	for i := 0; i < 10; i++ {
		r := &kgo.Record{Value: []byte(`{"n":1}`), Partition: 0}
		if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var got []*kgo.Record
	for len(got) < 4 {
		fetches := consumer.PollRecords(ctx, 4-len(got))
		if err := fetches.Err0(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fetches.Records()...)
	}
	if err := consumer.CommitRecords(ctx, got...); err != nil {
		t.Fatal(err)
	}

	s := scrape(t, m)
	for key, want := range map[string]float64{
		"kqbroker_topic_records_in_total{topic=orders}":                           10,
		"kqbroker_partition_log_end_offset{partition=0,topic=orders}":             10,
		"kqbroker_partition_log_start_offset{partition=0,topic=orders}":           0,
		"kqbroker_group_committed_offset{group=billing,partition=0,topic=orders}": 4,
		"kqbroker_group_lag{group=billing,partition=0,topic=orders}":              6,
		"kqbroker_group_members{group=billing,state=Stable}":                      1,
		"kqbroker_topics{}": 2, // orders and __consumer_offsets, created by billing's FindCoordinator
		"kqbroker_partition_high_watermark{partition=0,topic=orders}":   10,
		"kqbroker_partition_in_sync_replicas{partition=0,topic=orders}": 1,
		"kqbroker_partition_replicas{partition=0,topic=orders}":         1,
		"kqbroker_leader_partitions{}":                                  52, // and the 50 of __consumer_offsets
		"kqbroker_under_replicated_partitions{}":                        0,
		"kqbroker_under_min_isr_partitions{}":                           0,
		"kqbroker_offline_partitions{}":                                 0,
		"kqbroker_isr_shrinks_total{partition=0,topic=orders}":          0,
		"kqbroker_isr_expands_total{partition=1,topic=orders}":          0,
		"kqbroker_brokers{state=active}":                                1,
		"kqbroker_brokers{state=fenced}":                                0,
		// A broker alone is a quorum of one voter: it leads it.
		"kqbroker_quorum_leader{}":     1,
		"kqbroker_active_controller{}": 1,
	} {
		if s[key] != want {
			t.Errorf("%s = %v, want %v", key, s[key], want)
		}
	}
	if _, err := kadm.NewClient(client).DeleteTopics(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, m)
	for key := range after {
		if strings.Contains(key, "topic=orders") {
			t.Errorf("%s is still exported after the topic was deleted", key)
		}
	}
	for key, atLeast := range map[string]float64{
		"kqbroker_topic_records_out_total{topic=orders}":                  4,
		"kqbroker_partition_size_bytes{partition=0,topic=orders}":         10 * 61,
		"kqbroker_fsync_duration_seconds{}_count":                         10, // one fsync per acks=all request at least
		"kqbroker_connections{}":                                          2,
		"kqbroker_requests_total{api=Produce,version=11}":                 10,
		"kqbroker_request_duration_seconds{api=Produce,version=11}_count": 10,
		"kqbroker_requests_total{api=JoinGroup,version=9}":                1,
		"go_goroutines{}":                 1,
		"kqbroker_quorum_term{}":          1,
		"kqbroker_quorum_applied_index{}": 2, // the cluster's first record and the topic
		"kqbroker_quorum_commit_index{}":  2,
		// The topic and the producer id block at least were proposed here.
		"kqbroker_quorum_commit_latency_seconds{}_count": 2,
	} {
		if s[key] < atLeast {
			t.Errorf("%s = %v, want at least %v", key, s[key], atLeast)
		}
	}
}

// Every series the Grafana dashboard queries is one the broker exports.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	addr, m := startMeasuredBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	consumer.PollFetches(ctx)
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	consumer.Close()

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	families, err := new(expfmt.TextParser).TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	// A broker alone has no followers: the followers' lag comes from the
	// leaders of a cluster.
	exported := replicatedFamilies(t)
	for name := range families {
		exported[name] = true
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "dashboards", "kqbroker.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	series := regexp.MustCompile(`\b(kqbroker_[a-z_]+|go_[a-z_]+|process_[a-z_]+)`)
	checked := 0
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			for _, name := range series.FindAllString(target.Expr, -1) {
				family := strings.TrimSuffix(name, "_bucket")
				if !exported[family] {
					t.Errorf("panel %q queries %s, which /metrics does not export", p.Title, name)
				}
				checked++
			}
		}
	}
	if checked < 15 {
		t.Fatalf("only %d series found in the dashboard", checked)
	}
}

// The log cleaner's work shows in the metrics: a compacted topic in small
// segments, its keys written over and over, is cleaned by the broker's
// maintenance, and the passes and bytes read and kept are counted.
func TestLogCleanerMetrics(t *testing.T) {
	addr, m := startMeasuredBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("latest-prices"))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	configs := map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("1024"), "min.cleanable.dirty.ratio": kadm.StringPtr("0.01")}
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 1, 1, configs, "latest-prices"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		r := &kgo.Record{Key: []byte{byte('a' + i%10)}, Value: []byte(strings.Repeat("p", 40))}
		if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Maintenance runs every log.check_interval_ms (5 s by default).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got := scrape(t, m)
		passes, read, written := got["kqbroker_log_cleaner_passes_total{}"], got["kqbroker_log_cleaner_read_bytes_total{}"], got["kqbroker_log_cleaner_written_bytes_total{}"]
		if passes > 0 {
			if read == 0 || written >= read {
				t.Fatalf("after %v cleans: %v bytes read, %v kept", passes, read, written)
			}
			t.Logf("%v cleans read %v bytes and kept %v", passes, read, written)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no clean counted after 20s: %v", got)
		}
	}
}
