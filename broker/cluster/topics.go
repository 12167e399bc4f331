package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	mathrand "math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/metadata"
)

// proposeTimeout bounds a metadata change; a one-voter quorum commits in
// a millisecond or two.
const proposeTimeout = 30 * time.Second

// propose commits records through the quorum. An image that refuses the
// batch answers with its error, mapped to Kafka's where there is one.
func (c *Cluster) propose(records ...metadata.Record) (*metadata.Image, error) {
	ctx, cancel := context.WithTimeout(context.Background(), proposeTimeout)
	defer cancel()
	image, err := c.quorum.Propose(ctx, records...)
	var exists *metadata.TopicExistsError
	switch {
	case errors.As(err, &exists):
		return nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, exists.Name)
	case err != nil:
		return nil, fmt.Errorf("%w: the metadata change was not committed: %v", kerr.KafkaStorageError, err)
	}
	return image, nil
}

// Placement says where a new topic's partitions go: Partitions (-1: the
// broker default) spread over the brokers in service with
// ReplicationFactor replicas each (-1: default_replication_factor, or
// min(3, brokers)), or Assignment, each partition's replicas in order
// (the first is the preferred leader).
type Placement struct {
	Partitions        int32
	ReplicationFactor int16
	Assignment        [][]int32
}

// CreateTopic creates a topic placed as placement says, with config
// overrides. With validateOnly it only checks. A topic of two replicas or
// more gets min.insync.replicas=2 unless the configs say otherwise.
func (c *Cluster) CreateTopic(name string, placement Placement, configs map[string]string, validateOnly bool) (*Topic, error) {
	if err := CheckTopicName(name); err != nil {
		return nil, err
	}
	if err := c.internalRefusal(name); err != nil {
		return nil, err
	}
	return c.createTopic(name, placement, configs, validateOnly)
}

// createTopic is CreateTopic once the name is allowed.
func (c *Cluster) createTopic(name string, placement Placement, configs map[string]string, validateOnly bool) (*Topic, error) {
	partitions := placement.Partitions
	if len(placement.Assignment) > 0 {
		partitions = int32(len(placement.Assignment))
	} else if partitions == -1 {
		partitions = c.cfg.DefaultPartitions
	}
	if partitions < 1 || partitions > 100000 {
		return nil, fmt.Errorf("%w: %d partitions; a topic needs between 1 and 100000", kerr.InvalidPartitions, partitions)
	}
	if err := checkTopicConfigs(configs); err != nil {
		return nil, err
	}
	if _, exists := c.quorum.Image().Topic(name); exists {
		return nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, name)
	}
	var id TopicID
	_, _ = rand.Read(id[:])
	var placed []metadata.Record
	var err error
	if len(placement.Assignment) > 0 {
		placed, err = c.assignPartitions(id, 0, placement.Assignment)
	} else {
		placed, err = c.placePartitions(id, 0, partitions, placement.ReplicationFactor)
	}
	if err != nil {
		return nil, err
	}
	overrides := maps.Clone(configs)
	if overrides == nil {
		overrides = map[string]string{}
	}
	if _, set := overrides["min.insync.replicas"]; !set && len(placed[0].Partition.Replicas) >= 2 {
		overrides["min.insync.replicas"] = "2"
	}
	if minISR, _ := strconv.Atoi(overrides["min.insync.replicas"]); minISR > len(placed[0].Partition.Replicas) {
		c.logger.Warn("min.insync.replicas is above the replication factor: acks=all produces will be refused", "topic", name,
			"min.insync.replicas", minISR, "replication_factor", len(placed[0].Partition.Replicas))
	}
	if validateOnly {
		t := &Topic{Name: name, Configs: overrides, settings: settingsFor(overrides, c.cfg.Log), Partitions: make([]*Partition, partitions)}
		for i, r := range placed {
			t.Partitions[i] = &Partition{Topic: name, Index: int32(i)}
			t.Partitions[i].state.Store(&metadata.Partition{Replicas: r.Partition.Replicas, ISR: r.Partition.ISR, Leader: r.Partition.Leader})
		}
		return t, nil
	}
	records := []metadata.Record{{Topic: &metadata.TopicRecord{Name: name, ID: id}}}
	records = append(records, placed...)
	for key, value := range overrides {
		records = append(records, metadata.Record{Config: &metadata.ConfigRecord{TopicID: id, Name: key, Value: &value}})
	}
	if _, err := c.propose(records...); err != nil {
		return nil, err
	}
	t, ok := c.TopicByID(id)
	if !ok {
		return nil, fmt.Errorf("%w: topic %q was created, but this broker could not open its partitions; see its log", kerr.KafkaStorageError, name)
	}
	c.logger.Info("created topic", "topic", name, "partitions", partitions, "replication_factor", len(placed[0].Partition.Replicas), "configs", overrides)
	return t, nil
}

// ReplicationFactor is the number of replicas of the topic's partitions.
func (t *Topic) ReplicationFactor() int16 {
	if len(t.Partitions) == 0 {
		return 0
	}
	return int16(len(t.Partitions[0].State().Replicas))
}

// brokersInService are the ids of the unfenced brokers, sorted; this
// broker alone before it registered.
func (c *Cluster) brokersInService() []int32 {
	var ids []int32
	for _, b := range c.Brokers() {
		ids = append(ids, b.NodeID)
	}
	if len(ids) == 0 {
		ids = []int32{c.cfg.NodeID}
	}
	return ids
}

// placePartitions assigns partitions first to first+count-1 of a topic
// to the brokers in service: leaders round robin from a random broker, as
// Kafka spreads them, and the followers on the brokers after each leader.
func (c *Cluster) placePartitions(id TopicID, first, count int32, replicationFactor int16) ([]metadata.Record, error) {
	brokers := c.brokersInService()
	rf := int(replicationFactor)
	if rf == -1 {
		rf = int(c.cfg.DefaultReplicationFactor)
		if rf == 0 {
			rf = min(3, len(brokers))
		}
	}
	if rf < 1 || rf > len(brokers) {
		return nil, fmt.Errorf("%w: replication factor %d, but %d brokers are in service %v; use at most %d, or -1 for the default",
			kerr.InvalidReplicationFactor, rf, len(brokers), brokers, len(brokers))
	}
	start := mathrand.IntN(len(brokers))
	records := make([]metadata.Record, 0, count)
	for i := first; i < first+count; i++ {
		replicas := make([]int32, rf)
		for j := range replicas {
			replicas[j] = brokers[(start+int(i)+j)%len(brokers)]
		}
		records = append(records, metadata.Record{Partition: &metadata.PartitionRecord{TopicID: id, Partition: i,
			Replicas: replicas, ISR: slices.Clone(replicas), Leader: replicas[0]}})
	}
	return records, nil
}

// assignPartitions places partitions from first on the replicas given:
// registered brokers, none twice in a partition, as many for each.
func (c *Cluster) assignPartitions(id TopicID, first int32, assignment [][]int32) ([]metadata.Record, error) {
	image := c.quorum.Image()
	records := make([]metadata.Record, 0, len(assignment))
	for i, replicas := range assignment {
		partition := first + int32(i)
		if len(replicas) == 0 || len(replicas) != len(assignment[0]) {
			return nil, fmt.Errorf("%w: partition %d has %d replicas; every partition needs the same number, at least 1", kerr.InvalidReplicaAssignment, partition, len(replicas))
		}
		for j, r := range replicas {
			if slices.Contains(replicas[:j], r) {
				return nil, fmt.Errorf("%w: partition %d lists broker %d twice", kerr.InvalidReplicaAssignment, partition, r)
			}
			if _, ok := image.Broker(r); !ok && !(r == c.cfg.NodeID && len(image.Brokers()) == 0) {
				return nil, fmt.Errorf("%w: partition %d: broker %d is not registered (brokers: %v)", kerr.InvalidReplicaAssignment, partition, r, c.brokersInService())
			}
		}
		records = append(records, metadata.Record{Partition: &metadata.PartitionRecord{TopicID: id, Partition: partition,
			Replicas: slices.Clone(replicas), ISR: slices.Clone(replicas), Leader: replicas[0]}})
	}
	return records, nil
}

// DeleteTopic deletes a topic and its data.
func (c *Cluster) DeleteTopic(name string) error {
	t, ok := c.quorum.Image().Topic(name)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
	}
	if err := c.internalRefusal(name); err != nil {
		return err
	}
	if _, err := c.propose(metadata.Record{RemoveTopic: &metadata.RemoveTopicRecord{TopicID: t.ID}}); err != nil {
		return err
	}
	c.logger.Info("deleted topic", "topic", name)
	return nil
}

// CreatePartitions grows a topic to count partitions.
func (c *Cluster) CreatePartitions(name string, count int32, validateOnly bool) error {
	t, ok := c.quorum.Image().Topic(name)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
	}
	if count <= int32(len(t.Partitions)) {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger (partitions cannot be removed)", kerr.InvalidPartitions, name, len(t.Partitions))
	}
	if count > 100000 {
		return fmt.Errorf("%w: %d partitions is more than 100000", kerr.InvalidPartitions, count)
	}
	if validateOnly {
		return nil
	}
	records, err := c.placePartitions(t.ID, int32(len(t.Partitions)), count-int32(len(t.Partitions)), int16(len(t.Partitions[0].Replicas)))
	if err != nil {
		return err
	}
	if _, err := c.propose(records...); err != nil {
		return err
	}
	if local, ok := c.TopicByID(t.ID); !ok || int32(len(local.Partitions)) < count {
		return fmt.Errorf("%w: the partitions of %q were created, but this broker could not open them all; see its log", kerr.KafkaStorageError, name)
	}
	return nil
}

// SetTopicConfigs replaces a topic's config overrides (after checking them)
// and applies them to its logs.
func (c *Cluster) SetTopicConfigs(name string, configs map[string]string, validateOnly bool) error {
	if err := checkTopicConfigs(configs); err != nil {
		return err
	}
	t, ok := c.quorum.Image().Topic(name)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
	}
	if validateOnly {
		return nil
	}
	var records []metadata.Record
	for key := range t.Configs {
		if _, kept := configs[key]; !kept {
			records = append(records, metadata.Record{Config: &metadata.ConfigRecord{TopicID: t.ID, Name: key}})
		}
	}
	for key, value := range configs {
		if old, set := t.Configs[key]; !set || old != value {
			records = append(records, metadata.Record{Config: &metadata.ConfigRecord{TopicID: t.ID, Name: key, Value: &value}})
		}
	}
	if len(records) == 0 {
		return nil
	}
	_, err := c.propose(records...)
	return err
}

// TopicConfigs returns every supported config of a topic with its value.
func (c *Cluster) TopicConfigs(t *Topic) []ConfigEntry { return effectiveConfigs(t.Configs, c.cfg.Log) }
