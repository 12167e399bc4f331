package cluster

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/controller"
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Election is one partition's answer to ElectLeaders: nil or its Kafka
// error.
type Election struct {
	TopicPartition
	Err error
}

// ElectLeaders elects the preferred leader (or, unclean, any replica for a
// partition without one) of each partition, answered in their order; nil
// means every partition.
func (c *Cluster) ElectLeaders(partitions []TopicPartition, unclean bool) []Election {
	image := c.quorum.Image()
	if partitions == nil {
		for _, t := range image.Topics() {
			for i := range t.Partitions {
				partitions = append(partitions, TopicPartition{t.Name, int32(i)})
			}
		}
	}
	results := make([]Election, 0, len(partitions))
	for _, tp := range partitions {
		t, ok := image.Topic(tp.Topic)
		if !ok {
			results = append(results, Election{tp, fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, tp.Topic)})
			continue
		}
		record, err := controller.ElectLeader(image, t.ID, tp.Partition, unclean)
		if err != nil {
			results = append(results, Election{tp, err})
			continue
		}
		// One change at a time: a partition that moved meanwhile fails
		// alone, with a retriable error.
		if _, err := c.propose(record); err != nil {
			if errors.Is(err, kerr.KafkaStorageError) {
				err = fmt.Errorf("%w: the partition changed while its leader was being elected; try again (%v)", kerr.NotController, err)
			}
			results = append(results, Election{tp, err})
			continue
		}
		results = append(results, Election{tp, nil})
		c.logger.Info("elected a leader by request", "topic", tp.Topic, "partition", tp.Partition, "unclean", unclean,
			"leader", *record.PartitionChange.Leader)
	}
	return results
}

// Reassignment is one partition's answer to Reassign: nil or its Kafka
// error.
type Reassignment struct {
	TopicPartition
	Err error
}

// Reassign moves partitions to the replicas given (kafka-reassign-
// partitions.sh; AlterPartitionReassignments): the new replicas copy each
// partition from its leader, and once all of them are in sync the old ones
// leave. A nil target cancels the partition's reassignment in progress.
// Answers come in the order asked.
func (c *Cluster) Reassign(partitions []TopicPartition, targets [][]int32) []Reassignment {
	results := make([]Reassignment, 0, len(partitions))
	for i, tp := range partitions {
		image := c.quorum.Image()
		t, ok := image.Topic(tp.Topic)
		if !ok {
			results = append(results, Reassignment{tp, fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, tp.Topic)})
			continue
		}
		record, changes, err := controller.Reassign(image, t.ID, tp.Partition, targets[i])
		if err == nil && changes {
			if _, err = c.propose(record); err != nil && errors.Is(err, kerr.KafkaStorageError) {
				err = fmt.Errorf("%w: the partition changed while it was being reassigned; try again (%v)", kerr.NotController, err)
			}
		}
		if err == nil && changes {
			c.logger.Info("reassigning a partition", "topic", tp.Topic, "partition", tp.Partition, "target", targets[i])
		}
		results = append(results, Reassignment{tp, err})
	}
	return results
}

// PartitionReassignment is a reassignment in progress.
type PartitionReassignment struct {
	TopicPartition
	Replicas, Adding, Removing []int32
}

// Reassignments lists the reassignments in progress, of the partitions
// given (nil: all).
func (c *Cluster) Reassignments(partitions []TopicPartition) []PartitionReassignment {
	image := c.quorum.Image()
	var wanted map[TopicPartition]bool
	if partitions != nil {
		wanted = map[TopicPartition]bool{}
		for _, tp := range partitions {
			wanted[tp] = true
		}
	}
	var out []PartitionReassignment
	for _, t := range image.Topics() {
		for i, p := range t.Partitions {
			tp := TopicPartition{t.Name, int32(i)}
			if (len(p.Adding) == 0 && len(p.Removing) == 0) || (wanted != nil && !wanted[tp]) {
				continue
			}
			out = append(out, PartitionReassignment{TopicPartition: tp, Replicas: p.Replicas, Adding: p.Adding, Removing: p.Removing})
		}
	}
	return out
}
