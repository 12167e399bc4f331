package server

// OffsetCommit (key 8), v0–v9.
//   v1: generation, member id, per-partition timestamp.
//   v2: retention time (ignored: offsets of empty groups expire after
//       the broker's offsets retention).
//   v5: no retention time.
//   v6: leader epoch.
//   v7: group instance id.
//   v8: flexible.
//   v9: no change here.
// The answer comes once the offsets are durable under the flush policy.
// A member's commit to a group that does not exist is GROUP_ID_NOT_FOUND
// from v9 and ILLEGAL_GENERATION before, as Kafka answers it.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/group"
)

func init() { register(8, 0, 9, handleOffsetCommit) }

func handleOffsetCommit(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	var commits []group.OffsetCommit
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			o := group.Offset{Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			commits = append(commits, group.OffsetCommit{TopicPartition: group.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}, Offset: o})
		}
	}
	generation, memberID := r.Generation, r.MemberID
	if r.Version == 0 {
		generation, memberID = -1, ""
	}
	err := c.server.notCoordinator(r.Group)
	var finish func() error
	if err == nil {
		finish, err = c.server.groups.CommitOffsets(r.Group, memberID, r.InstanceID, generation, commits)
		if errors.Is(err, kerr.GroupIDNotFound) && r.Version < 9 {
			err = fmt.Errorf("%w: %v", kerr.IllegalGeneration, err)
		}
	}
	setCode := func(code int16) {
		for ti := range resp.Topics {
			for pi := range resp.Topics[ti].Partitions {
				resp.Topics[ti].Partitions[pi].ErrorCode = code
			}
		}
	}
	for _, rt := range r.Topics {
		topic := kmsg.NewOffsetCommitResponseTopic()
		topic.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			partition := kmsg.NewOffsetCommitResponseTopicPartition()
			partition.Partition = rp.Partition
			topic.Partitions = append(topic.Partitions, partition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	if err != nil {
		setCode(errorCode(err))
		return resp, nil
	}
	// The writer waits for the offsets to be durable; the next commit on
	// this connection is read meanwhile and shares the fsync.
	c.deferFinish(func() { setCode(errorCode(finish())) })
	return resp, nil
}
