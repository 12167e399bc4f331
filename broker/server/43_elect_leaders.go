package server

// ElectLeaders (key 43), v0–v2.
//   v1: election type: 0 preferred (the first replica leads again), 1
//       unclean (a partition without a leader gets one, from outside the
//       ISR if it must); a top-level error code.
//   v2: flexible.
// A null topic list means every partition. Any broker answers: the
// elections go through the metadata quorum.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
)

func init() { register(43, 0, 2, handleElectLeaders) }

func handleElectLeaders(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	var partitions []cluster.TopicPartition
	if r.Topics != nil {
		partitions = []cluster.TopicPartition{}
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				partitions = append(partitions, cluster.TopicPartition{Topic: t.Topic, Partition: p})
			}
		}
	}
	results := c.server.cluster.ElectLeaders(partitions, r.Version >= 1 && r.ElectionType == 1)
	byTopic := map[string]int{}
	for _, result := range results {
		tp, err := result.TopicPartition, result.Err
		i, ok := byTopic[tp.Topic]
		if !ok {
			i = len(resp.Topics)
			byTopic[tp.Topic] = i
			topic := kmsg.NewElectLeadersResponseTopic()
			topic.Topic = tp.Topic
			resp.Topics = append(resp.Topics, topic)
		}
		p := kmsg.NewElectLeadersResponseTopicPartition()
		p.Partition = tp.Partition
		if err != nil {
			p.ErrorCode = errorCode(err)
			p.ErrorMessage = errorMessage(err)
		}
		resp.Topics[i].Partitions = append(resp.Topics[i].Partitions, p)
	}
	return resp, nil
}
