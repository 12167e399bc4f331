package server

// Metadata (key 3), v0–v12.
//   v0: brokers, topics, partitions with leader, replicas, ISR.
//   v1: controller id, rack, is-internal; a null topic list means all topics.
//   v2: cluster id.
//   v3: throttle time.
//   v4: allow_auto_topic_creation (before v4 the broker setting decides).
//   v5: offline replicas.
//   v7: leader epoch.
//   v8: authorized operations.
//   v9: flexible.
//   v10: topic ids.
//   v11: no cluster authorized operations.
//   v12: topics may be asked for by id; topic name nullable.

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
)

func init() { register(3, 0, 12, handleMetadata) }

func handleMetadata(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	cl := c.server.cluster
	cfg := cl.Config()

	inService := map[int32]bool{}
	for _, b := range cl.Brokers() {
		inService[b.NodeID] = true
		broker := kmsg.NewMetadataResponseBroker()
		broker.NodeID, broker.Host, broker.Port = b.NodeID, b.Host, b.Port
		resp.Brokers = append(resp.Brokers, broker)
	}
	clusterID := cl.ClusterID()
	resp.ClusterID = &clusterID
	resp.ControllerID = cl.ControllerID()

	// v0 has no null list: an empty list there means all topics.
	if r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0) {
		for _, t := range cl.Topics() {
			resp.Topics = append(resp.Topics, metadataTopic(t, cl.IsInternal(t.Name), inService))
		}
		return resp, nil
	}
	autoCreate := cfg.AutoCreateTopics && (r.Version < 4 || r.AllowAutoTopicCreation)
	for _, requested := range r.Topics {
		if requested.Topic == nil { // v12: by id
			if t, ok := cl.TopicByID(requested.TopicID); ok {
				resp.Topics = append(resp.Topics, metadataTopic(t, cl.IsInternal(t.Name), inService))
				continue
			}
			missing := kmsg.NewMetadataResponseTopic()
			missing.TopicID = requested.TopicID
			missing.ErrorCode = kerr.UnknownTopicID.Code
			resp.Topics = append(resp.Topics, missing)
			continue
		}
		name := *requested.Topic
		t, ok := cl.Topic(name)
		var err error
		if !ok && autoCreate && cl.IsInternal(name) {
			// Created with its own settings, as Kafka does when a Metadata
			// request names it (CreateTopic refuses the name): Burrow asks
			// for it at its start, on a broker where no group has made
			// FindCoordinator create it yet.
			t, err = cl.EnsureInternalTopic(name)
			if err != nil {
				err = fmt.Errorf("%w: %v", kerr.LeaderNotAvailable, err)
			}
		} else if !ok && autoCreate {
			t, err = createIfMissing(cl, name)
		} else if !ok {
			err = kerr.UnknownTopicOrPartition
		}
		if err != nil {
			missing := kmsg.NewMetadataResponseTopic()
			missing.Topic = &name
			missing.ErrorCode = errorCode(err)
			resp.Topics = append(resp.Topics, missing)
			continue
		}
		resp.Topics = append(resp.Topics, metadataTopic(t, cl.IsInternal(t.Name), inService))
	}
	return resp, nil
}

// createIfMissing auto-creates a topic with the broker defaults; a topic
// created meanwhile by someone else is fine. One the quorum has but this
// broker has not applied yet (created through another broker a moment
// ago) is LEADER_NOT_AVAILABLE, as Kafka answers for a topic being
// created: clients ask again, never see TOPIC_ALREADY_EXISTS.
func createIfMissing(cl *cluster.Cluster, name string) (*cluster.Topic, error) {
	t, err := cl.CreateTopic(name, cluster.Placement{Partitions: -1, ReplicationFactor: -1}, nil, false)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		if existing, ok := cl.Topic(name); ok {
			return existing, nil
		}
		return nil, fmt.Errorf("%w: topic %q is being created", kerr.LeaderNotAvailable, name)
	}
	return t, err
}

func metadataTopic(t *cluster.Topic, isInternal bool, inService map[int32]bool) kmsg.MetadataResponseTopic {
	topic := kmsg.NewMetadataResponseTopic()
	name := t.Name
	topic.Topic = &name
	topic.TopicID = t.ID
	topic.IsInternal = isInternal
	for _, p := range t.Partitions {
		partition := kmsg.NewMetadataResponseTopicPartition()
		partition.Partition = p.Index
		state := p.State()
		partition.Leader = state.Leader
		partition.LeaderEpoch = state.LeaderEpoch
		partition.Replicas = state.Replicas
		partition.ISR = state.ISR
		partition.OfflineReplicas = []int32{}
		for _, r := range state.Replicas {
			if !inService[r] {
				partition.OfflineReplicas = append(partition.OfflineReplicas, r)
			}
		}
		if state.Leader == -1 {
			// every replica in sync is down: clients wait and ask again
			partition.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		topic.Partitions = append(topic.Partitions, partition)
	}
	return topic
}
