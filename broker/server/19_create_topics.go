package server

// CreateTopics (key 19), v0–v7.
//   v1: validate_only, error messages.
//   v2: throttle time.
//   v4: -1 partitions / replication factor mean the broker defaults.
//   v5: flexible; the response carries partitions, replication factor and
//       configs of the created topic.
//   v7: topic ids.
// Partitions are spread over the brokers in service with the replication
// factor asked for (-1: default_replication_factor, or min(3, brokers)), or
// placed as the request's assignment says.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
)

func init() { register(19, 0, 7, handleCreateTopics) }

func handleCreateTopics(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	cl := c.server.cluster
	seen := make(map[string]int)
	for _, rt := range r.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range r.Topics {
		topic := kmsg.NewCreateTopicsResponseTopic()
		topic.Topic = rt.Topic
		t, err := createTopic(cl, rt, r.ValidateOnly, seen[rt.Topic] > 1)
		if err != nil {
			topic.ErrorCode = errorCode(err)
			topic.ErrorMessage = errorMessage(err)
			topic.NumPartitions, topic.ReplicationFactor = -1, -1
		} else {
			topic.TopicID = t.ID
			topic.NumPartitions = int32(len(t.Partitions))
			topic.ReplicationFactor = t.ReplicationFactor()
			for _, e := range cl.TopicConfigs(t) {
				entry := kmsg.NewCreateTopicsResponseTopicConfig()
				value := e.Value
				entry.Name, entry.Value = e.Name, &value
				entry.Source = int8(configSource(e))
				topic.Configs = append(topic.Configs, entry)
			}
			if !r.ValidateOnly {
				c.logger.Info("topic created by request", "topic", t.Name, "client_id", c.currentClientID())
			}
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}

func createTopic(cl *cluster.Cluster, rt kmsg.CreateTopicsRequestTopic, validateOnly, duplicate bool) (*cluster.Topic, error) {
	if duplicate {
		return nil, fmt.Errorf("%w: topic %q is named more than once in the request", kerr.InvalidRequest, rt.Topic)
	}
	placement := cluster.Placement{Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor}
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return nil, fmt.Errorf("%w: give either a replica assignment or partitions and replication factor, not both", kerr.InvalidRequest)
		}
		for i, a := range rt.ReplicaAssignment {
			if a.Partition != int32(i) {
				return nil, fmt.Errorf("%w: the assignment names partition %d where partition %d was expected; list partitions 0, 1, ... in order", kerr.InvalidReplicaAssignment, a.Partition, i)
			}
			placement.Assignment = append(placement.Assignment, a.Replicas)
		}
	}
	configs := make(map[string]string, len(rt.Configs))
	for _, kv := range rt.Configs {
		if kv.Value == nil {
			return nil, fmt.Errorf("%w: config %q has no value", kerr.InvalidConfig, kv.Name)
		}
		configs[kv.Name] = *kv.Value
	}
	return cl.CreateTopic(rt.Topic, placement, configs, validateOnly)
}
