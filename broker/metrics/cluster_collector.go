package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/group"
	"github.com/kqstack/kqstack/broker/storage"
)

var (
	logStartDesc      = prometheus.NewDesc("kqbroker_partition_log_start_offset", "First offset still in the partition's log.", []string{"topic", "partition"}, nil)
	logEndDesc        = prometheus.NewDesc("kqbroker_partition_log_end_offset", "Offset the partition's next record gets.", []string{"topic", "partition"}, nil)
	sizeDesc          = prometheus.NewDesc("kqbroker_partition_size_bytes", "Bytes of the partition's segments on disk.", []string{"topic", "partition"}, nil)
	lagDesc           = prometheus.NewDesc("kqbroker_group_lag", "Records between a group's committed offset and the log end.", []string{"group", "topic", "partition"}, nil)
	committedDesc     = prometheus.NewDesc("kqbroker_group_committed_offset", "A group's committed offset.", []string{"group", "topic", "partition"}, nil)
	membersDesc       = prometheus.NewDesc("kqbroker_group_members", "Members of a consumer group.", []string{"group", "state"}, nil)
	fsyncDesc         = prometheus.NewDesc("kqbroker_fsync_duration_seconds", "Latency of the fsyncs that make appended data durable, over all logs.", nil, nil)
	topicsDesc        = prometheus.NewDesc("kqbroker_topics", "Topics.", nil, nil)
	hwDesc            = prometheus.NewDesc("kqbroker_partition_high_watermark", "Offset below which consumers read: every in-sync replica has what is below.", []string{"topic", "partition"}, nil)
	isrDesc           = prometheus.NewDesc("kqbroker_partition_in_sync_replicas", "In-sync replicas of a partition this broker leads.", []string{"topic", "partition"}, nil)
	replicasDesc      = prometheus.NewDesc("kqbroker_partition_replicas", "Replicas of a partition this broker leads.", []string{"topic", "partition"}, nil)
	leadingDesc       = prometheus.NewDesc("kqbroker_leader_partitions", "Partitions this broker leads (Kafka's LeaderCount).", nil, nil)
	underDesc         = prometheus.NewDesc("kqbroker_under_replicated_partitions", "Partitions this broker leads whose ISR is smaller than their replicas (Kafka's UnderReplicatedPartitions).", nil, nil)
	cleanerPassesDesc = prometheus.NewDesc("kqbroker_log_cleaner_passes_total", "Cleans of compacted logs that got anywhere, over this broker's logs since they opened.", nil, nil)
	cleanerReadDesc   = prometheus.NewDesc("kqbroker_log_cleaner_read_bytes_total", "Segment bytes the log cleaner read, over this broker's logs since they opened.", nil, nil)
	cleanerWriteDesc  = prometheus.NewDesc("kqbroker_log_cleaner_written_bytes_total", "Segment bytes the log cleaner wrote (what it kept), over this broker's logs since they opened.", nil, nil)
)

// clusterCollector reads the cluster's state at scrape time.
type clusterCollector struct{ cluster *cluster.Cluster }

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{logStartDesc, logEndDesc, sizeDesc, lagDesc, committedDesc, membersDesc, fsyncDesc, topicsDesc,
		hwDesc, isrDesc, replicasDesc, leadingDesc, underDesc, cleanerPassesDesc, cleanerReadDesc, cleanerWriteDesc} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	topics := c.cluster.Topics()
	ch <- prometheus.MustNewConstMetric(topicsDesc, prometheus.GaugeValue, float64(len(topics)))
	fsync := storage.SyncStats{Buckets: make([]uint64, len(storage.SyncBuckets)+1)}
	leading, under := 0, 0
	var cleaned storage.CleanerStats
	self := c.cluster.Config().NodeID
	for _, t := range topics {
		for _, p := range t.Partitions {
			if p.Log == nil {
				continue // another broker's
			}
			labels := []string{t.Name, strconv.Itoa(int(p.Index))}
			ch <- prometheus.MustNewConstMetric(logStartDesc, prometheus.GaugeValue, float64(p.Log.LogStartOffset()), labels...)
			ch <- prometheus.MustNewConstMetric(logEndDesc, prometheus.GaugeValue, float64(p.Log.LogEndOffset()), labels...)
			ch <- prometheus.MustNewConstMetric(hwDesc, prometheus.GaugeValue, float64(p.Log.HighWatermark()), labels...)
			ch <- prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(p.Log.Size()), labels...)
			if state := p.State(); state.Leader == self {
				leading++
				if len(state.ISR) < len(state.Replicas) {
					under++
				}
				ch <- prometheus.MustNewConstMetric(isrDesc, prometheus.GaugeValue, float64(len(state.ISR)), labels...)
				ch <- prometheus.MustNewConstMetric(replicasDesc, prometheus.GaugeValue, float64(len(state.Replicas)), labels...)
			}
			addSyncStats(&fsync, p.Log.SyncStats())
			stats := p.Log.CleanerStats()
			cleaned.Passes, cleaned.BytesRead, cleaned.BytesWritten = cleaned.Passes+stats.Passes, cleaned.BytesRead+stats.BytesRead, cleaned.BytesWritten+stats.BytesWritten
		}
	}
	ch <- prometheus.MustNewConstMetric(cleanerPassesDesc, prometheus.CounterValue, float64(cleaned.Passes))
	ch <- prometheus.MustNewConstMetric(cleanerReadDesc, prometheus.CounterValue, float64(cleaned.BytesRead))
	ch <- prometheus.MustNewConstMetric(cleanerWriteDesc, prometheus.CounterValue, float64(cleaned.BytesWritten))
	ch <- prometheus.MustNewConstMetric(leadingDesc, prometheus.GaugeValue, float64(leading))
	ch <- prometheus.MustNewConstMetric(underDesc, prometheus.GaugeValue, float64(under))
	ch <- fsyncHistogram(fsync)

	groups := c.cluster.Groups()
	for _, listing := range groups.List(nil) {
		members := 0
		if d, ok := groups.Describe(listing.Group); ok {
			members = len(d.Members)
		}
		ch <- prometheus.MustNewConstMetric(membersDesc, prometheus.GaugeValue, float64(members), listing.Group, string(listing.State))
		for tp, committed := range groups.GroupOffsets(listing.Group) {
			labels := []string{listing.Group, tp.Topic, strconv.Itoa(int(tp.Partition))}
			ch <- prometheus.MustNewConstMetric(committedDesc, prometheus.GaugeValue, float64(committed.Offset), labels...)
			if lag, ok := c.lag(tp, committed); ok {
				ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(lag), labels...)
			}
		}
	}
}

// lag is the high watermark (the end consumers can read to, what
// ListOffsets answers kafka-consumer-groups.sh) minus the committed
// offset, read from this broker's replica of the partition: the leader's
// HW, or a follower's, which trails it by at most a fetch. Unknown for a
// deleted partition and for one this broker (the group's coordinator)
// holds no replica of.
func (c *clusterCollector) lag(tp group.TopicPartition, committed group.Offset) (int64, bool) {
	t, ok := c.cluster.Topic(tp.Topic)
	if !ok || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) || committed.Offset < 0 {
		return 0, false
	}
	p := t.Partitions[tp.Partition]
	if p.Log == nil {
		return 0, false
	}
	return max(p.Log.HighWatermark()-committed.Offset, 0), true
}

func addSyncStats(total *storage.SyncStats, s storage.SyncStats) {
	total.Count += s.Count
	total.Sum += s.Sum
	for i, n := range s.Buckets {
		total.Buckets[i] += n
	}
}

func fsyncHistogram(s storage.SyncStats) prometheus.Metric {
	buckets := make(map[float64]uint64, len(storage.SyncBuckets))
	var cumulative uint64
	for i, bound := range storage.SyncBuckets {
		cumulative += s.Buckets[i]
		buckets[bound.Seconds()] = cumulative
	}
	return prometheus.MustNewConstHistogram(fsyncDesc, s.Count, s.Sum.Seconds(), buckets)
}
