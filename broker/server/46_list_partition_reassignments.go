package server

// ListPartitionReassignments (key 46), v0.
// The reassignments in progress: each partition's replicas (target first),
// the replicas being added and those being removed. A null topic list
// means every partition.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
)

func init() { register(46, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	var partitions []cluster.TopicPartition
	if r.Topics != nil {
		partitions = []cluster.TopicPartition{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				partitions = append(partitions, cluster.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	byTopic := map[string]int{}
	for _, ra := range c.server.cluster.Reassignments(partitions) {
		i, ok := byTopic[ra.Topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[ra.Topic] = i
			topic := kmsg.NewListPartitionReassignmentsResponseTopic()
			topic.Topic = ra.Topic
			resp.Topics = append(resp.Topics, topic)
		}
		p := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		p.Partition, p.Replicas, p.AddingReplicas, p.RemovingReplicas = ra.Partition, ra.Replicas, ra.Adding, ra.Removing
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
	}
	return resp, nil
}
