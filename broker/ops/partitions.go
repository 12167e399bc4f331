package ops

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Election is one partition's leader election result.
type Election struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Error     string `json:"error,omitempty"` // "" when the leader was elected
}

// ElectLeaders gives partitions their preferred leader back (or, unclean,
// any live replica to partitions without a leader), as
// kafka-leader-election.sh does. No topic means every partition; a topic
// without partitions, all of its.
func (c *Client) ElectLeaders(ctx context.Context, topic string, partitions []int32, unclean bool) ([]Election, error) {
	how := kadm.ElectPreferredReplica
	if unclean {
		how = kadm.ElectLiveReplica
	}
	var set kadm.TopicsSet
	if topic != "" {
		if len(partitions) == 0 {
			t, err := c.lookupTopic(ctx, topic)
			if err != nil {
				return nil, err
			}
			for _, p := range t.Partitions.Sorted() {
				partitions = append(partitions, p.Partition)
			}
		}
		set = kadm.TopicsSet{}
		set.Add(topic, partitions...)
	}
	results, err := c.admin.ElectLeaders(ctx, how, set)
	if err != nil {
		return nil, c.explain(err)
	}
	var out []Election
	for _, byPartition := range results {
		for _, r := range byPartition {
			e := Election{Topic: r.Topic, Partition: r.Partition}
			if r.Err != nil {
				e.Error = r.Err.Error()
				if r.ErrMessage != "" {
					e.Error = r.ErrMessage
				}
			}
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
