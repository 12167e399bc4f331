package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	mathrand "math/rand/v2"
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

// CreateTopic creates a topic with partitions partitions (-1: the broker
// default) and config overrides. With validateOnly it only checks.
func (c *Cluster) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	if err := CheckTopicName(name); err != nil {
		return nil, err
	}
	if partitions == -1 {
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
	overrides := maps.Clone(configs)
	if overrides == nil {
		overrides = map[string]string{}
	}
	if validateOnly {
		return &Topic{Name: name, Configs: overrides, settings: settingsFor(overrides, c.cfg.Log), Partitions: make([]*Partition, partitions)}, nil
	}
	var id TopicID
	_, _ = rand.Read(id[:])
	records := []metadata.Record{{Topic: &metadata.TopicRecord{Name: name, ID: id}}}
	records = append(records, c.placePartitions(id, 0, partitions)...)
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
	c.logger.Info("created topic", "topic", name, "partitions", partitions, "configs", overrides)
	return t, nil
}

// placePartitions assigns partitions first to first+count-1 of a topic
// to the brokers in service, round robin from a random one, as Kafka
// spreads leaders. One replica each: replication is not there yet.
func (c *Cluster) placePartitions(id TopicID, first, count int32) []metadata.Record {
	brokers := []int32{c.cfg.NodeID}
	if inService := c.Brokers(); len(inService) > 0 {
		brokers = brokers[:0]
		for _, b := range inService {
			brokers = append(brokers, b.NodeID)
		}
	}
	start := int32(mathrand.IntN(len(brokers)))
	records := make([]metadata.Record, 0, count)
	for i := first; i < first+count; i++ {
		replica := brokers[(start+i)%int32(len(brokers))]
		records = append(records, metadata.Record{Partition: &metadata.PartitionRecord{TopicID: id, Partition: i,
			Replicas: []int32{replica}, ISR: []int32{replica}, Leader: replica}})
	}
	return records
}

// DeleteTopic deletes a topic and its data.
func (c *Cluster) DeleteTopic(name string) error {
	t, ok := c.quorum.Image().Topic(name)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
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
	records := c.placePartitions(t.ID, int32(len(t.Partitions)), count-int32(len(t.Partitions)))
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
