package server

// DeleteRecords (key 21), v0–v2.
//   v1: no change.
//   v2: flexible.
// Moves a partition's log start offset up to the given offset (-1: the high
// watermark); whole segments below it are deleted. The answer waits, up to
// the request's timeout, for the in-sync followers to move theirs: its low
// watermark is the lowest of them.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DeleteRecordsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteRecordsResponse)
	deadline := time.Now().Add(time.Duration(r.TimeoutMillis) * time.Millisecond)
	for _, rt := range r.Topics {
		topic := kmsg.NewDeleteRecordsResponseTopic()
		topic.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			partition := kmsg.NewDeleteRecordsResponseTopicPartition()
			partition.Partition = rp.Partition
			p, err := c.server.cluster.Partition(rt.Topic, rp.Partition)
			if err == nil {
				partition.LowWatermark, err = p.Replica.DeleteRecords(rp.Offset, deadline)
			}
			if err != nil {
				partition.ErrorCode, partition.LowWatermark = errorCode(err), -1
			}
			topic.Partitions = append(topic.Partitions, partition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}
