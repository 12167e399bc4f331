package server

// AlterPartitionReassignments (key 45), v0.
// Each partition moves to the replicas given (null cancels its
// reassignment in progress): the new replicas catch up as followers, then
// the old ones leave and the leader moves if it was one of them. Any
// broker answers: the change goes through the metadata quorum.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
)

func init() { register(45, 0, 0, handleAlterPartitionReassignments) }

func handleAlterPartitionReassignments(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	var partitions []cluster.TopicPartition
	var targets [][]int32
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			partitions = append(partitions, cluster.TopicPartition{Topic: t.Topic, Partition: p.Partition})
			targets = append(targets, p.Replicas)
		}
	}
	results := c.server.cluster.Reassign(partitions, targets)
	byTopic := map[string]int{}
	for _, result := range results {
		i, ok := byTopic[result.Topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[result.Topic] = i
			topic := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			topic.Topic = result.Topic
			resp.Topics = append(resp.Topics, topic)
		}
		p := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
		p.Partition = result.Partition
		if result.Err != nil {
			p.ErrorCode, p.ErrorMessage = errorCode(result.Err), errorMessage(result.Err)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
	}
	return resp, nil
}
