// Package metadata is the cluster's replicated metadata: the records the
// controller writes to the metadata quorum's log, and the image every
// broker builds by applying them in log order. It does no I/O, takes no
// locks and reads no clock: the same records give the same image on every
// broker.
//
// A log entry is a batch of records, applied all or nothing:
//
//	entry  = { "records": [ record, ... ] }            (JSON)
//	record = { "type": "<kind>", "<kind>": { fields } }
//
// Kinds: cluster, register_broker, fence_broker, unfence_broker, topic,
// partition, partition_change, config, remove_topic, producer_ids. A
// record's fields are never renamed or given a new meaning; new fields are
// optional, so an older image can skip what it does not know.
package metadata

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// TopicID is a topic's UUID.
type TopicID [16]byte

// Record is one metadata change; exactly one field is set.
type Record struct {
	Cluster         *ClusterRecord         `json:"cluster,omitempty"`
	RegisterBroker  *RegisterBrokerRecord  `json:"register_broker,omitempty"`
	FenceBroker     *FenceBrokerRecord     `json:"fence_broker,omitempty"`
	UnfenceBroker   *UnfenceBrokerRecord   `json:"unfence_broker,omitempty"`
	Topic           *TopicRecord           `json:"topic,omitempty"`
	Partition       *PartitionRecord       `json:"partition,omitempty"`
	PartitionChange *PartitionChangeRecord `json:"partition_change,omitempty"`
	Config          *ConfigRecord          `json:"config,omitempty"`
	RemoveTopic     *RemoveTopicRecord     `json:"remove_topic,omitempty"`
	ProducerIDs     *ProducerIDsRecord     `json:"producer_ids,omitempty"`
}

// ClusterRecord names the cluster; the first record of every log.
type ClusterRecord struct {
	ClusterID string `json:"cluster_id"`
}

// RegisterBrokerRecord is a broker joining, or rejoining with a new epoch.
// A registered broker starts fenced: it leads nothing until it is
// unfenced (it has caught up with the metadata and heartbeats).
type RegisterBrokerRecord struct {
	BrokerID int32 `json:"broker_id"`
	Epoch    int64 `json:"epoch"`
	// Advertise is the host:port clients connect to.
	Advertise string `json:"advertise"`
	// InterBroker is the host:port followers fetch from.
	InterBroker string `json:"inter_broker"`
}

// FenceBrokerRecord takes a broker out of service: it leaves every ISR
// and loses its leaderships (by PartitionChangeRecords in the same batch).
type FenceBrokerRecord struct {
	BrokerID int32 `json:"broker_id"`
	Epoch    int64 `json:"epoch"`
}

// UnfenceBrokerRecord puts a registered broker in service.
type UnfenceBrokerRecord struct {
	BrokerID int32 `json:"broker_id"`
	Epoch    int64 `json:"epoch"`
}

// TopicRecord creates a topic; its partitions follow in the same batch.
type TopicRecord struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id"`
}

// PartitionRecord creates a partition with its first assignment.
type PartitionRecord struct {
	TopicID        TopicID `json:"topic_id"`
	Partition      int32   `json:"partition"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"` // -1: none
	LeaderEpoch    int32   `json:"leader_epoch"`
	PartitionEpoch int32   `json:"partition_epoch"`
	// Adding and Removing: a reassignment in progress (snapshots only).
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
}

// PartitionChangeRecord changes a partition's ISR or leader. A new leader
// bumps the leader epoch; every change bumps the partition epoch. Unset
// fields stay as they are.
//
// A change decided on a state of the partition names that state's epochs
// (Expect*): applied to any other, it is refused with a *StaleChangeError,
// so a leader's ISR change (Kafka's AlterPartition) and the controller's
// elections never undo each other. A leader's change that adds a fenced
// broker to the ISR is refused too.
type PartitionChangeRecord struct {
	TopicID   TopicID `json:"topic_id"`
	Partition int32   `json:"partition"`
	ISR       []int32 `json:"isr,omitempty"`
	Leader    *int32  `json:"leader,omitempty"`
	// ExpectLeaderEpoch and ExpectPartitionEpoch: the state decided on.
	ExpectLeaderEpoch    *int32 `json:"expect_leader_epoch,omitempty"`
	ExpectPartitionEpoch *int32 `json:"expect_partition_epoch,omitempty"`
	// FromLeader is the broker that asked (a leader's ISR change), -1 or
	// unset for the controller.
	FromLeader *int32 `json:"from_leader,omitempty"`
	// Reassignment sets the replicas and the reassignment in progress.
	Reassignment *Reassignment `json:"reassignment,omitempty"`
}

// Reassignment is a partition's replicas while they move (Kafka's
// AlterPartitionReassignments): Replicas holds the target replicas first,
// then those leaving; Adding are the target replicas not yet in sync when
// it began, Removing the replicas that go once they are. Both empty: the
// replicas are just Replicas.
type Reassignment struct {
	Replicas []int32 `json:"replicas"`
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
}

// ConfigRecord sets a topic config override; a nil Value removes it.
type ConfigRecord struct {
	TopicID TopicID `json:"topic_id"`
	Name    string  `json:"name"`
	Value   *string `json:"value"`
}

// RemoveTopicRecord deletes a topic and its partitions.
type RemoveTopicRecord struct {
	TopicID TopicID `json:"topic_id"`
}

// ProducerIDsRecord hands a broker the block of producer ids
// [FirstID, FirstID+Size): ids are unique across the cluster and never
// reused.
type ProducerIDsRecord struct {
	BrokerID int32 `json:"broker_id"`
	FirstID  int64 `json:"first_id"`
	Size     int64 `json:"size"`
}

// entry is a log entry's encoding.
type entry struct {
	Records []Record `json:"records"`
}

// EncodeBatch encodes records as one log entry.
func EncodeBatch(records []Record) ([]byte, error) {
	for i, r := range records {
		if n := r.kinds(); n != 1 {
			return nil, fmt.Errorf("metadata record %d sets %d kinds, want exactly 1", i, n)
		}
	}
	return json.Marshal(entry{Records: records})
}

// DecodeBatch decodes a log entry.
func DecodeBatch(data []byte) ([]Record, error) {
	var e entry
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("metadata entry: %w", err)
	}
	if len(e.Records) == 0 {
		return nil, errors.New("metadata entry holds no records")
	}
	for i, r := range e.Records {
		if r.kinds() != 1 {
			return nil, fmt.Errorf("metadata entry: record %d is of no kind this broker knows", i)
		}
	}
	return e.Records, nil
}

func (r Record) kinds() int {
	n := 0
	for _, set := range []bool{r.Cluster != nil, r.RegisterBroker != nil, r.FenceBroker != nil, r.UnfenceBroker != nil,
		r.Topic != nil, r.Partition != nil, r.PartitionChange != nil, r.Config != nil, r.RemoveTopic != nil, r.ProducerIDs != nil} {
		if set {
			n++
		}
	}
	return n
}

// String is the id in hex, as kqbroker's files and logs write it.
func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText writes the id in hex.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads an id written by MarshalText.
func (id *TopicID) UnmarshalText(text []byte) error {
	raw, err := hex.DecodeString(string(text))
	if err != nil || len(raw) != len(id) {
		return fmt.Errorf("topic id %q: want 32 hex digits", text)
	}
	copy(id[:], raw)
	return nil
}
