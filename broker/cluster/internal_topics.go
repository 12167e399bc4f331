package cluster

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/metadata"
)

// internalTopic is a topic the brokers keep for themselves, as Kafka keeps
// __consumer_offsets (and will keep __transaction_state and share-group
// state): created with its own settings by the controller once enough
// brokers are in service, or by the first request that needs it; refused
// to clients' CreateTopics, DeleteTopics and Produce; listed as internal;
// configured as its spec says even when an older version created it.
// Each partition's leader owns the state of the keys placed on it and
// keeps it as shards (internalShards), which follow calls with every
// change of the topic's partitions.
type internalTopic struct {
	name string
	// partitions and replicationFactor are read from the broker's config
	// (Kafka's offsets.topic.num.partitions and
	// offsets.topic.replication.factor); the factor is capped by the
	// brokers in service.
	partitions        func(config.Config) int32
	replicationFactor func(config.Config) int16
	// configs are the topic's own (read only: callers get copies); a
	// topic missing one gets them all.
	configs map[string]string
	// refusal says why a client may not create or delete it.
	refusal string
	// follow hears of each partition's new state on this broker.
	follow func(p *Partition, state metadata.Partition)

	// mu makes this broker's concurrent first requests create it once
	// (another broker's at the same time is refused as existing);
	// creating is set while the controller creates or configures it.
	mu       sync.Mutex
	creating atomic.Bool
}

// IsInternal reports whether name is one of the brokers' own topics.
func (c *Cluster) IsInternal(name string) bool { return c.internal[name] != nil }

// internalRefusal is the error for a client's CreateTopics or
// DeleteTopics of an internal topic, nil for any other.
func (c *Cluster) internalRefusal(name string) error {
	if it := c.internal[name]; it != nil {
		return fmt.Errorf("%w: %s is an internal topic: %s", kerr.InvalidTopicException, name, it.refusal)
	}
	return nil
}

// ensureInternal returns the internal topic, creating it first if it does
// not exist yet.
func (c *Cluster) ensureInternal(it *internalTopic) (*Topic, error) {
	if t, ok := c.Topic(it.name); ok {
		c.maybeConfigureInternal(it, t.Configs)
		return t, nil
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	if t, ok := c.Topic(it.name); ok {
		return t, nil
	}
	rf := min(int(it.replicationFactor(c.cfg)), len(c.brokersInService()))
	t, err := c.createTopic(it.name, Placement{Partitions: it.partitions(c.cfg), ReplicationFactor: int16(rf)}, maps.Clone(it.configs), false)
	if errors.Is(err, kerr.TopicAlreadyExists) {
		if t, ok := c.Topic(it.name); ok {
			return t, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: creating %s: %v", kerr.CoordinatorNotAvailable, it.name, err)
	}
	return t, nil
}

// maybeCreateInternalTopics is the controller creating the internal
// topics with the cluster, each once as many brokers are in service as it
// wants replicas (or as there are voters), so the first user of a new
// cluster does not wait for their partitions to be created, replicated
// and loaded. In the background: the controller loop goes on meanwhile.
func (c *Cluster) maybeCreateInternalTopics() {
	for _, it := range c.internal {
		if t, exists := c.quorum.Image().Topic(it.name); exists {
			c.maybeConfigureInternal(it, t.Configs)
			continue
		}
		wanted := min(int(it.replicationFactor(c.cfg)), strings.Count(c.cfg.ControllerQuorumVoters, ",")+1)
		if len(c.Brokers()) < wanted || !it.creating.CompareAndSwap(false, true) {
			continue
		}
		go func() {
			defer it.creating.Store(false)
			if _, err := c.ensureInternal(it); err != nil {
				c.logger.Warn("creating "+it.name+"; the next tick tries again", "err", err)
			}
		}()
	}
}

// maybeConfigureInternal gives an internal topic that lacks one of its
// configs (created by an older version) all of them, in the background:
// at the controller's tick, and when a request needs the topic (a broker
// alone has no controller loop).
func (c *Cluster) maybeConfigureInternal(it *internalTopic, configs map[string]string) {
	missing := false
	for key := range it.configs {
		_, set := configs[key]
		missing = missing || !set
	}
	if !missing || !it.creating.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer it.creating.Store(false)
		if err := c.SetTopicConfigs(it.name, maps.Clone(it.configs), false); err != nil {
			c.logger.Warn("configuring "+it.name+"; the next tick tries again", "err", err)
		}
	}()
}

// EnsureInternalTopic creates the internal topic name if it does not exist
// yet, as Kafka does when a Metadata request names it.
func (c *Cluster) EnsureInternalTopic(name string) (*Topic, error) {
	it := c.internal[name]
	if it == nil {
		return nil, fmt.Errorf("%w: %s is not an internal topic", kerr.UnknownTopicOrPartition, name)
	}
	return c.ensureInternal(it)
}
