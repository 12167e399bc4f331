package server

// ListOffsets (key 2), v0–v8.
//   v0: a list of offsets (max_num_offsets); here the one offset v1 would
//       answer (Kafka adds segment base offsets, which clients ignore).
//       Kafka 4 dropped v0 (KIP-896), but tools of Kafka 0.10's day
//       still send it: Debian's Burrow asks for end offsets with it.
//   v1: one offset per partition by timestamp: -2 earliest, -1 latest.
//   v2: isolation level.
//   v4: leader epoch.
//   v6: flexible.
//   v7: -3: the offset of the record with the largest timestamp (KIP-734).
//   v8: -4: earliest local offset (KIP-405; all data is local here).
// Latest is the high watermark for clients, the log end for a follower
// (a replica id). Any other timestamp finds the first record whose timestamp is at or
// after it; when there is none the answer is offset -1, timestamp -1.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/storage"
)

func init() { register(2, 0, 8, handleListOffsets) }

const (
	timestampLatest        = -1
	timestampEarliest      = -2
	timestampMax           = -3
	timestampEarliestLocal = -4
)

func handleListOffsets(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ListOffsetsRequest)
	resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
	cl := c.server.cluster
	for _, rt := range r.Topics {
		topic := kmsg.NewListOffsetsResponseTopic()
		topic.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			partition := kmsg.NewListOffsetsResponseTopicPartition()
			partition.Partition = rp.Partition
			p, err := cl.Partition(rt.Topic, rp.Partition)
			if err == nil && r.Version >= 4 {
				err = p.CheckLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if err == nil {
				partition.Offset, partition.Timestamp, err = listOffset(p.Log, rp.Timestamp)
				switch {
				case rp.Timestamp == timestampLatest && r.ReplicaID >= 0:
					partition.Offset = p.Log.LogEndOffset() // a follower's question: where the log ends
				case r.ReplicaID < 0 && (rp.Timestamp >= 0 || rp.Timestamp == timestampMax) && partition.Offset >= p.Log.HighWatermark():
					// Clients see only what is committed: a record above the
					// high watermark may still vanish.
					partition.Offset, partition.Timestamp = -1, -1
				}
				// The epoch the offset was written in; the latest for the end.
				partition.LeaderEpoch = p.Log.EpochAt(partition.Offset)
				if partition.Offset >= p.Log.LogEndOffset() {
					partition.LeaderEpoch = max(p.Log.LatestLeaderEpoch(), p.LeaderEpoch())
				}
			}
			if err != nil {
				partition.ErrorCode = errorCode(err)
				partition.Offset, partition.Timestamp = -1, -1
			}
			if r.Version == 0 && err == nil && rp.MaxNumOffsets > 0 && partition.Offset >= 0 {
				partition.OldStyleOffsets = []int64{partition.Offset}
			}
			topic.Partitions = append(topic.Partitions, partition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}

func listOffset(log *storage.Log, timestamp int64) (offset, foundTimestamp int64, err error) {
	switch timestamp {
	case timestampLatest:
		return log.HighWatermark(), -1, nil
	case timestampEarliest, timestampEarliestLocal:
		return log.LogStartOffset(), -1, nil
	case timestampMax:
		return log.MaxTimestamp()
	}
	offset, foundTimestamp, found, err := log.OffsetForTimestamp(timestamp)
	if err != nil || !found {
		return -1, -1, err
	}
	return offset, foundTimestamp, nil
}
