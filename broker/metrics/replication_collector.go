package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/quorum"
)

var (
	offlineDesc = prometheus.NewDesc("kqbroker_offline_partitions",
		"Partitions without a leader, in this broker's copy of the metadata (Kafka's OfflinePartitionsCount); every broker reports the whole cluster's, so take the max over brokers, not the sum.", nil, nil)
	underMinISRDesc = prometheus.NewDesc("kqbroker_under_min_isr_partitions",
		"Partitions this broker leads whose ISR is smaller than min.insync.replicas: acks=all produces fail (Kafka's UnderMinIsrPartitionCount).", nil, nil)
	shrinksDesc = prometheus.NewDesc("kqbroker_isr_shrinks_total",
		"Followers this broker, as the partition's leader, took out of the ISR, committed by the metadata quorum (Kafka's IsrShrinksPerSec).", []string{"topic", "partition"}, nil)
	expandsDesc = prometheus.NewDesc("kqbroker_isr_expands_total",
		"Followers this broker, as the partition's leader, put back in the ISR, committed by the metadata quorum (Kafka's IsrExpandsPerSec).", []string{"topic", "partition"}, nil)
	lagRecordsDesc = prometheus.NewDesc("kqbroker_replica_lag_records",
		"On the leader: its log end minus the follower's fetch offset (absent until the follower fetched from this leader).", []string{"topic", "partition", "replica"}, nil)
	lagSecondsDesc = prometheus.NewDesc("kqbroker_replica_lag_seconds",
		"On the leader: seconds since the follower last reached the leader's log end, 0 while it is there; past replica.lag.time.max.ms it leaves the ISR.", []string{"topic", "partition", "replica"}, nil)
	brokersDesc = prometheus.NewDesc("kqbroker_brokers",
		"Registered brokers in this broker's copy of the metadata: active (in service) or fenced (stopped, or silent past its session).", []string{"state"}, nil)
	quorumLeaderDesc = prometheus.NewDesc("kqbroker_quorum_leader",
		"Node id of the metadata quorum's leader (the active controller) as this broker sees it, -1 during an election.", nil, nil)
	activeControllerDesc = prometheus.NewDesc("kqbroker_active_controller",
		"1 on the broker that leads the metadata quorum, else 0 (Kafka's ActiveControllerCount): the sum over brokers is 1 in a healthy cluster.", nil, nil)
	quorumTermDesc = prometheus.NewDesc("kqbroker_quorum_term",
		"The metadata quorum's raft term as this broker knows it: it grows by one or more with each election.", nil, nil)
	commitIndexDesc = prometheus.NewDesc("kqbroker_quorum_commit_index",
		"Last metadata log index this broker knows committed.", nil, nil)
	appliedIndexDesc = prometheus.NewDesc("kqbroker_quorum_applied_index",
		"Last metadata log index this broker applied to its metadata.", nil, nil)
	commitLatencyDesc = prometheus.NewDesc("kqbroker_quorum_commit_latency_seconds",
		"Time from proposing a metadata change on this broker (topic changes, ISR changes, elections) to having it applied here, forwarding to the quorum leader included; refused changes are not counted.", nil, nil)
)

// replicationCollector reads replication and quorum state at scrape time:
// the replicas' counters and followers' lag, and the quorum's stats.
type replicationCollector struct{ cluster *cluster.Cluster }

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{offlineDesc, underMinISRDesc, shrinksDesc, expandsDesc, lagRecordsDesc, lagSecondsDesc, brokersDesc,
		quorumLeaderDesc, activeControllerDesc, quorumTermDesc, commitIndexDesc, appliedIndexDesc, commitLatencyDesc} {
		ch <- d
	}
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	offline, underMinISR := 0, 0
	for _, t := range c.cluster.Topics() {
		for _, p := range t.Partitions {
			if p.State().Leader < 0 {
				offline++
			}
			if p.Replica == nil {
				continue // another broker's
			}
			index := strconv.Itoa(int(p.Index))
			s := p.Replica.Stats()
			ch <- prometheus.MustNewConstMetric(shrinksDesc, prometheus.CounterValue, float64(s.ISRShrinks), t.Name, index)
			ch <- prometheus.MustNewConstMetric(expandsDesc, prometheus.CounterValue, float64(s.ISRExpands), t.Name, index)
			if !s.Leading {
				continue
			}
			if len(s.ISR) < s.MinISR {
				underMinISR++
			}
			for _, f := range s.Followers {
				replica := strconv.Itoa(int(f.ID))
				if f.LagRecords >= 0 {
					ch <- prometheus.MustNewConstMetric(lagRecordsDesc, prometheus.GaugeValue, float64(f.LagRecords), t.Name, index, replica)
				}
				ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, f.SinceCaughtUp.Seconds(), t.Name, index, replica)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(offlineDesc, prometheus.GaugeValue, float64(offline))
	ch <- prometheus.MustNewConstMetric(underMinISRDesc, prometheus.GaugeValue, float64(underMinISR))

	active, fenced := 0, 0
	for _, b := range c.cluster.RegisteredBrokers() {
		if b.Fenced {
			fenced++
		} else {
			active++
		}
	}
	ch <- prometheus.MustNewConstMetric(brokersDesc, prometheus.GaugeValue, float64(active), "active")
	ch <- prometheus.MustNewConstMetric(brokersDesc, prometheus.GaugeValue, float64(fenced), "fenced")

	q := c.cluster.QuorumStats()
	isLeader := 0.0
	if q.IsLeader {
		isLeader = 1
	}
	ch <- prometheus.MustNewConstMetric(quorumLeaderDesc, prometheus.GaugeValue, float64(q.Leader))
	ch <- prometheus.MustNewConstMetric(activeControllerDesc, prometheus.GaugeValue, isLeader)
	ch <- prometheus.MustNewConstMetric(quorumTermDesc, prometheus.GaugeValue, float64(q.Term))
	ch <- prometheus.MustNewConstMetric(commitIndexDesc, prometheus.GaugeValue, float64(q.CommitIndex))
	ch <- prometheus.MustNewConstMetric(appliedIndexDesc, prometheus.GaugeValue, float64(q.AppliedIndex))
	ch <- latencyHistogram(commitLatencyDesc, q.Commits)
}

// latencyHistogram turns the quorum's bucket counts into a histogram.
func latencyHistogram(desc *prometheus.Desc, s quorum.LatencyStats) prometheus.Metric {
	buckets := make(map[float64]uint64, len(quorum.CommitBuckets))
	var cumulative uint64
	for i, bound := range quorum.CommitBuckets {
		cumulative += s.Buckets[i]
		buckets[bound.Seconds()] = cumulative
	}
	return prometheus.MustNewConstHistogram(desc, s.Count, s.Sum.Seconds(), buckets)
}
