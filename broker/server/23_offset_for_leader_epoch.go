package server

// OffsetForLeaderEpoch (key 23), v0–v4.
//   v1: the answer carries the leader epoch the end offset belongs to.
//   v2: current leader epoch (KIP-320): a fenced or too-new client is told
//       FENCED_LEADER_EPOCH or UNKNOWN_LEADER_EPOCH; throttle time.
//   v3: replica id (followers; -1 for consumers, -2 for debugging tools).
//   v4: flexible.
// For each partition: the largest epoch at or below the one asked for, and
// the offset where it ended (the next epoch's start, or the log end for
// the latest), so a consumer after a leader change (KIP-320) or a follower
// can tell where its log and the leader's diverge.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/storage"
)

func init() { register(23, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.OffsetForLeaderEpochRequest)
	resp := r.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range r.Topics {
		topic := kmsg.NewOffsetForLeaderEpochResponseTopic()
		topic.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			partition := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			partition.Partition = rp.Partition
			partition.LeaderEpoch, partition.EndOffset = storage.UndefinedEpoch, -1
			p, err := c.server.cluster.Partition(rt.Topic, rp.Partition)
			if err == nil && r.Version >= 2 {
				err = p.CheckLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if err == nil {
				partition.LeaderEpoch, partition.EndOffset = p.Log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			partition.ErrorCode = errorCode(err)
			topic.Partitions = append(topic.Partitions, partition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}
