// Package metrics is kqbroker's Prometheus instrumentation: counters the
// request path updates as it goes, and gauges read from the cluster's own
// state at scrape time (offsets, sizes, group lag, fsync latencies), so the
// broker keeps no second copy of them.
//
// Names follow Prometheus conventions under the kqbroker_ prefix:
//
//	kqbroker_requests_total{api,version}            requests handled
//	kqbroker_request_duration_seconds{api,version}  histogram, receipt to response queued
//	kqbroker_topic_bytes_in_total{topic}            record batch bytes produced
//	kqbroker_topic_records_in_total{topic}          records produced
//	kqbroker_topic_bytes_out_total{topic}           record batch bytes fetched
//	kqbroker_topic_records_out_total{topic}         records fetched
//	kqbroker_partition_log_start_offset{topic,partition}
//	kqbroker_partition_log_end_offset{topic,partition}
//	kqbroker_partition_size_bytes{topic,partition}
//	kqbroker_group_lag{group,topic,partition}       log end offset - committed offset
//	kqbroker_group_committed_offset{group,topic,partition}
//	kqbroker_group_members{group}
//	kqbroker_connections                            open client connections
//	kqbroker_connections_total                      connections accepted
//	kqbroker_connections_refused_total{limit}       connections closed by a connection limit
//	kqbroker_request_memory_bytes                   request bytes reserved, of queued_max_request_bytes
//	kqbroker_fsync_duration_seconds                 histogram over every log's data fsyncs
//	kqbroker_topics                                 topics
//	go_*, process_*                                 Go runtime and process
//
// Replication, as Kafka's ReplicaManager and Partition metrics. A
// partition's leader reports its ISR and followers; every broker hosting
// a replica reports its offsets:
//
//	kqbroker_partition_high_watermark{topic,partition}     offset below which consumers read
//	kqbroker_partition_in_sync_replicas{topic,partition}   leader only: ISR size
//	kqbroker_partition_replicas{topic,partition}           leader only: replicas
//	kqbroker_leader_partitions                             partitions this broker leads (LeaderCount)
//	kqbroker_under_replicated_partitions                   led partitions with ISR < replicas (UnderReplicatedPartitions)
//	kqbroker_under_min_isr_partitions                      led partitions with ISR < min.insync.replicas (UnderMinIsrPartitionCount)
//	kqbroker_offline_partitions                            partitions with no leader (OfflinePartitionsCount)
//	kqbroker_isr_shrinks_total{topic,partition}            followers the leader took out of the ISR (IsrShrinksPerSec)
//	kqbroker_isr_expands_total{topic,partition}            followers the leader put back (IsrExpandsPerSec)
//	kqbroker_replica_lag_records{topic,partition,replica}  leader only: its log end - the follower's fetch offset
//	kqbroker_replica_lag_seconds{topic,partition,replica}  leader only: time since the follower was last at the log end
//	kqbroker_brokers{state}                                registered brokers, active or fenced
//
// Kafka's OfflinePartitionsCount is the active controller's alone; here
// every broker counts the partitions without a leader in its own copy of
// the metadata (they all apply the same log), so a dashboard shows the
// count even while the quorum elects a controller: take max() over
// brokers, never sum(). The ISR counters count what the leader proposed
// and the quorum committed; a broker the controller fences leaves every
// ISR without the leader's proposal, as in Kafka, and is seen in
// kqbroker_under_replicated_partitions instead. They are per partition so
// that a partition leaving this broker takes its series with it instead
// of making a broker-wide counter go down; sum() them for Kafka's view.
//
// The metadata quorum, as this broker sees it:
//
//	kqbroker_quorum_leader                   node id of the quorum leader (the active controller), -1 during an election
//	kqbroker_active_controller               1 on the quorum leader (ActiveControllerCount); sums to 1
//	kqbroker_quorum_term                     raft term: grows with each election
//	kqbroker_quorum_commit_index             last metadata log index known committed
//	kqbroker_quorum_applied_index            last metadata log index applied here
//	kqbroker_quorum_commit_latency_seconds   histogram: metadata changes this broker proposed, proposal to applied here
//	kqbroker_log_cleaner_passes_total          cleans of compacted logs that got anywhere (this broker's logs since they opened)
//	kqbroker_log_cleaner_read_bytes_total      segment bytes the cleaner read
//	kqbroker_log_cleaner_written_bytes_total   segment bytes it wrote: what it kept
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
)

// Metrics is one broker's registry. A nil *Metrics records nothing, so
// code paths need no checks (tests run servers without metrics).
type Metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	bytesIn     *prometheus.CounterVec
	recordsIn   *prometheus.CounterVec
	bytesOut    *prometheus.CounterVec
	recordsOut  *prometheus.CounterVec
	connections prometheus.Gauge
	accepted    prometheus.Counter
	refused     *prometheus.CounterVec
	requestMem  prometheus.Gauge
	// perRequest caches each API key and version's two series, so the
	// request path does no label lookup (Kafka's keys and versions are small).
	perRequest [128][32]atomic.Pointer[requestSeries]
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New registers the broker's metrics, reading cluster state at scrape time.
func New(cl *cluster.Cluster) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kqbroker_requests_total", Help: "Requests handled, by API and version.",
		}, []string{"api", "version"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "kqbroker_request_duration_seconds", Help: "Time from reading a request to queueing its response (fetch long polls included).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"api", "version"}),
		bytesIn:     topicCounter("kqbroker_topic_bytes_in_total", "Record batch bytes appended by producers."),
		recordsIn:   topicCounter("kqbroker_topic_records_in_total", "Records appended by producers."),
		bytesOut:    topicCounter("kqbroker_topic_bytes_out_total", "Record batch bytes returned to fetches."),
		recordsOut:  topicCounter("kqbroker_topic_records_out_total", "Records returned to fetches."),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kqbroker_connections", Help: "Open client connections."}),
		accepted:    prometheus.NewCounter(prometheus.CounterOpts{Name: "kqbroker_connections_total", Help: "Client connections accepted."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kqbroker_connections_refused_total",
			Help: "Client connections closed at accept by a limit (max_connections, max_connections_per_ip)."}, []string{"limit"}),
		requestMem: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kqbroker_request_memory_bytes",
			Help: "Bytes reserved by requests being read and handled, of queued_max_request_bytes."}),
	}
	m.registry.MustRegister(m.requests, m.durations, m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut, m.connections, m.accepted, m.refused, m.requestMem,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&clusterCollector{cluster: cl}, &replicationCollector{cluster: cl})
	return m
}

func topicCounter(name, help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"topic"})
}

// Handler serves the registry in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Request records one handled request.
func (m *Metrics) Request(key, version int16, took time.Duration) {
	if m == nil {
		return
	}
	series := m.requestSeries(key, version)
	series.count.Inc()
	series.duration.Observe(took.Seconds())
}

func (m *Metrics) requestSeries(key, version int16) *requestSeries {
	labels := func() *requestSeries {
		api, v := apiName(key), strconv.Itoa(int(version))
		return &requestSeries{m.requests.WithLabelValues(api, v), m.durations.WithLabelValues(api, v)}
	}
	if key < 0 || int(key) >= len(m.perRequest) || version < 0 || int(version) >= len(m.perRequest[0]) {
		return labels()
	}
	slot := &m.perRequest[key][version]
	if s := slot.Load(); s != nil {
		return s
	}
	s := labels()
	slot.Store(s) // two requests racing here store equal series
	return s
}

// Produced records batches appended to a topic.
func (m *Metrics) Produced(topic string, bytes, records int) {
	if m == nil {
		return
	}
	m.bytesIn.WithLabelValues(topic).Add(float64(bytes))
	m.recordsIn.WithLabelValues(topic).Add(float64(records))
}

// Fetched records batches returned from a topic.
func (m *Metrics) Fetched(topic string, bytes, records int) {
	if m == nil || bytes == 0 {
		return
	}
	m.bytesOut.WithLabelValues(topic).Add(float64(bytes))
	m.recordsOut.WithLabelValues(topic).Add(float64(records))
}

// ConnectionRefused counts a connection closed by a limit.
func (m *Metrics) ConnectionRefused(limit string) {
	if m != nil {
		m.refused.WithLabelValues(limit).Inc()
	}
}

// RequestMemoryInUse records the request bytes reserved.
func (m *Metrics) RequestMemoryInUse(bytes int64) {
	if m != nil {
		m.requestMem.Set(float64(bytes))
	}
}

// ReadFetchSessions registers the server's fetch session cache, read at
// scrape time: sessions, and the partitions they hold.
func (m *Metrics) ReadFetchSessions(read func() (sessions, partitions int)) {
	if m == nil {
		return
	}
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kqbroker_fetch_sessions",
			Help: "Incremental fetch sessions (KIP-227) cached, of followers and consumers."},
			func() float64 { sessions, _ := read(); return float64(sessions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kqbroker_fetch_session_partitions",
			Help: "Partitions held by the cached fetch sessions."},
			func() float64 { _, partitions := read(); return float64(partitions) }))
}

// ConnectionOpened and ConnectionClosed track client connections.
func (m *Metrics) ConnectionOpened() {
	if m != nil {
		m.connections.Inc()
		m.accepted.Inc()
	}
}

func (m *Metrics) ConnectionClosed() {
	if m != nil {
		m.connections.Dec()
	}
}

// TopicDeleted drops a deleted topic's counters.
func (m *Metrics) TopicDeleted(topic string) {
	if m == nil {
		return
	}
	for _, c := range []*prometheus.CounterVec{m.bytesIn, m.recordsIn, m.bytesOut, m.recordsOut} {
		c.DeleteLabelValues(topic)
	}
}

func apiName(key int16) string {
	if name := kmsg.NameForKey(key); name != "" {
		return name
	}
	return strconv.Itoa(int(key))
}
