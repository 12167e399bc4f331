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
