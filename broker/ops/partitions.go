package ops

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// Move is one partition's new replicas, in the form of
// kafka-reassign-partitions.sh's --reassignment-json-file.
type Move struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"` // nil: cancel the partition's reassignment
}

// MovePlan is the whole file: {"version":1,"partitions":[...]}.
type MovePlan struct {
	Version    int    `json:"version"`
	Partitions []Move `json:"partitions"`
}

// Reassign starts the moves (AlterPartitionReassignments) and returns each
// partition's error ("" when it started, or there was nothing to move).
func (c *Client) Reassign(ctx context.Context, moves []Move) ([]Election, error) {
	var req kadm.AlterPartitionAssignmentsReq
	for _, m := range moves {
		req.Assign(m.Topic, m.Partition, m.Replicas)
	}
	resps, err := c.admin.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return nil, c.explain(err)
	}
	var out []Election
	for _, m := range moves {
		e := Election{Topic: m.Topic, Partition: m.Partition}
		if r, ok := resps[m.Topic][m.Partition]; !ok {
			e.Error = "no answer for this partition"
		} else if r.Err != nil {
			e.Error = r.Err.Error()
			if r.ErrMessage != "" {
				e.Error = r.ErrMessage
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// MoveInProgress is a reassignment not finished yet.
type MoveInProgress struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding"`
	Removing  []int32 `json:"removing"`
}

// Reassignments lists every reassignment in progress.
func (c *Client) Reassignments(ctx context.Context) ([]MoveInProgress, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, c.kgo) // Topics nil: all of them
	if err != nil {
		return nil, c.explain(err)
	}
	if resp.ErrorCode != 0 {
		return nil, c.explain(kerr.ErrorForCode(resp.ErrorCode))
	}
	var out []MoveInProgress
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, MoveInProgress{Topic: t.Topic, Partition: p.Partition, Replicas: p.Replicas, Adding: p.AddingReplicas, Removing: p.RemovingReplicas})
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
