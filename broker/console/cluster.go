package console

import (
	"net/http"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kqstack/kqstack/broker/ops"
)

// clusterBroker is a row of the brokers table.
type clusterBroker struct {
	ops.Broker
	Controller bool `json:"controller"`
}

// clusterPartition is a row of the partitions table: a partition is
// under-replicated while its ISR is smaller than its replicas, offline
// while it has no leader.
type clusterPartition struct {
	Topic           string  `json:"topic"`
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"` // -1: none
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	UnderReplicated bool    `json:"under_replicated"`
	Offline         bool    `json:"offline"`
}

// clusterView is the brokers and partitions page: every broker, fenced
// ones included, and every partition of the topics clients see.
type clusterView struct {
	ClusterID       string             `json:"cluster_id"`
	ControllerID    int32              `json:"controller_id"`
	Brokers         []clusterBroker    `json:"brokers"`
	Partitions      []clusterPartition `json:"partitions"`
	UnderReplicated int                `json:"under_replicated_partitions"`
	Offline         int                `json:"offline_partitions"`
}

// cluster answers GET /api/cluster from the metadata the broker gives
// clients (Metadata v5+ for the ISR and offline replicas, DescribeCluster
// v2 for the fenced brokers).
func (c *Console) cluster(w http.ResponseWriter, r *http.Request) {
	info, err := c.client.Cluster(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	meta, err := kadm.NewClient(c.client.Kgo()).Metadata(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	view := clusterView{ClusterID: info.ClusterID, ControllerID: info.ControllerID, Brokers: []clusterBroker{}, Partitions: []clusterPartition{}}
	for _, b := range info.Brokers {
		view.Brokers = append(view.Brokers, clusterBroker{Broker: b, Controller: b.NodeID == info.ControllerID})
	}
	for _, t := range meta.Topics.Sorted() { // by name, partitions in order
		if t.IsInternal {
			continue
		}
		for _, p := range t.Partitions.Sorted() {
			row := clusterPartition{Topic: t.Topic, Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), OfflineReplicas: nonNil(p.OfflineReplicas),
				UnderReplicated: len(p.ISR) < len(p.Replicas), Offline: p.Leader < 0}
			if row.UnderReplicated {
				view.UnderReplicated++
			}
			if row.Offline {
				view.Offline++
			}
			view.Partitions = append(view.Partitions, row)
		}
	}
	writeJSON(w, http.StatusOK, view)
}

// nonNil makes an empty list a JSON [], not null.
func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}
