package server

// OffsetFetch (key 9), v0–v9.
//   v1: offsets from the log (not ZooKeeper).
//   v2: a null topic list means every committed partition; top-level error.
//   v3: throttle time.
//   v5: leader epoch.
//   v6: flexible.
//   v7: require stable (no transactions here, so always stable).
//   v8: several groups per request.
//   v9: member id and epoch (for KIP-848 groups; ignored here).
// A partition with nothing committed answers offset -1 and no error, as
// kafka-go and every client expect.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/group"
)

func init() { register(9, 0, 9, handleOffsetFetch) }

// fetchedPartition is one answered partition.
type fetchedPartition struct {
	partition int32
	offset    group.Offset
}

// fetchGroupOffsets answers one group: the asked partitions, or (topics nil)
// every partition with a committed offset, by topic.
func fetchGroupOffsets(c *conn, groupID string, topics map[string][]int32, all bool) ([]string, map[string][]fetchedPartition) {
	coordinator := c.server.groups
	answered := make(map[string][]fetchedPartition)
	if all {
		for tp, o := range coordinator.GroupOffsets(groupID) {
			answered[tp.Topic] = append(answered[tp.Topic], fetchedPartition{tp.Partition, o})
		}
	} else {
		for topic, partitions := range topics {
			for _, p := range partitions {
				answered[topic] = append(answered[topic], fetchedPartition{p, coordinator.FetchOffset(groupID, group.TopicPartition{Topic: topic, Partition: p})})
			}
		}
	}
	names := make([]string, 0, len(answered))
	for topic, partitions := range answered {
		names = append(names, topic)
		sort.Slice(partitions, func(i, j int) bool { return partitions[i].partition < partitions[j].partition })
	}
	sort.Strings(names)
	return names, answered
}

func handleOffsetFetch(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if r.Version >= 8 {
		for _, rg := range r.Groups {
			if err := c.server.notCoordinator(rg.Group); err != nil {
				g := kmsg.NewOffsetFetchResponseGroup()
				g.Group, g.ErrorCode = rg.Group, errorCode(err)
				resp.Groups = append(resp.Groups, g)
				continue
			}
			topics := make(map[string][]int32)
			for _, rt := range rg.Topics {
				topics[rt.Topic] = append(topics[rt.Topic], rt.Partitions...)
			}
			names, answered := fetchGroupOffsets(c, rg.Group, topics, rg.Topics == nil)
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			for _, name := range names {
				topic := kmsg.NewOffsetFetchResponseGroupTopic()
				topic.Topic = name
				for _, p := range answered[name] {
					partition := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					partition.Partition, partition.Offset, partition.LeaderEpoch = p.partition, p.offset.Offset, p.offset.LeaderEpoch
					metadata := p.offset.Metadata
					partition.Metadata = &metadata
					topic.Partitions = append(topic.Partitions, partition)
				}
				g.Topics = append(g.Topics, topic)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp, nil
	}
	if err := c.server.notCoordinator(r.Group); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	topics := make(map[string][]int32)
	for _, rt := range r.Topics {
		topics[rt.Topic] = append(topics[rt.Topic], rt.Partitions...)
	}
	names, answered := fetchGroupOffsets(c, r.Group, topics, r.Topics == nil && r.Version >= 2)
	for _, name := range names {
		topic := kmsg.NewOffsetFetchResponseTopic()
		topic.Topic = name
		for _, p := range answered[name] {
			partition := kmsg.NewOffsetFetchResponseTopicPartition()
			partition.Partition, partition.Offset, partition.LeaderEpoch = p.partition, p.offset.Offset, p.offset.LeaderEpoch
			metadata := p.offset.Metadata
			partition.Metadata = &metadata
			topic.Partitions = append(topic.Partitions, partition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}
