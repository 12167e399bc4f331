package server

// OffsetDelete (key 47), v0.
// Deletes a group's committed offsets for some partitions; the group must
// have no members.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/group"
)

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.OffsetDeleteRequest)
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var partitions []group.TopicPartition
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			partitions = append(partitions, group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition})
		}
	}
	err := c.server.notCoordinator(r.Group)
	if err == nil {
		err = c.server.groups.DeleteOffsets(r.Group, partitions)
	}
	resp.ErrorCode = errorCode(err)
	for _, rt := range r.Topics {
		topic := kmsg.NewOffsetDeleteResponseTopic()
		topic.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			partition := kmsg.NewOffsetDeleteResponseTopicPartition()
			partition.Partition = rp.Partition
			topic.Partitions = append(topic.Partitions, partition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}
