package cluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/group"
	"github.com/kqstack/kqstack/broker/storage"
)

// offsetsTopicConfigs are __consumer_offsets' configs, Kafka's: compacted
// (the log cleaner keeps the last record of each group's metadata and of
// each committed offset, and drops deleted ones after
// delete.retention.ms), so its size follows the live groups; segments of
// offsets.topic.segment.bytes.
func offsetsTopicConfigs() map[string]string {
	return map[string]string{
		"cleanup.policy": "compact",
		"segment.bytes":  strconv.Itoa(offsetsSegmentBytes),
	}
}

// offsetsTopic is __consumer_offsets as an internal topic: Kafka's
// settings, its partitions' shards the group coordinators.
func (c *Cluster) offsetsTopic() *internalTopic {
	return &internalTopic{
		name:              group.OffsetsTopic,
		partitions:        func(cfg config.Config) int32 { return cfg.OffsetsTopicNumPartitions },
		replicationFactor: func(cfg config.Config) int16 { return cfg.OffsetsTopicReplicationFactor },
		configs:           offsetsTopicConfigs(),
		refusal:           "the brokers keep the consumer groups and their committed offsets there",
		follow:            c.coordinators.follow,
	}
}

// EnsureOffsetsTopic creates __consumer_offsets if it does not exist yet,
// as Kafka does at the first FindCoordinator: offsets_topic_num_partitions
// partitions, min(offsets_topic_replication_factor, brokers in service)
// replicas.
func (c *Cluster) EnsureOffsetsTopic() (*Topic, error) {
	return c.ensureInternal(c.internal[group.OffsetsTopic])
}

// GroupCoordinator is the broker coordinating groupID: the leader of its
// partition of __consumer_offsets (created first if need be), or
// COORDINATOR_NOT_AVAILABLE while that partition has none. A leader this
// broker cannot reach (its fetches from it fail: killed, and not fenced
// yet) is waited on for up to coordinatorLeaderWait, until the partition
// has a new leader: kafka-go, told a dead coordinator or an error, drops
// its member id, so its group waits out the sessions of the members it
// had before it can rebalance.
func (c *Cluster) GroupCoordinator(groupID string) (BrokerAddress, error) {
	t, err := c.EnsureOffsetsTopic()
	if err != nil {
		return BrokerAddress{}, err
	}
	partition := group.PartitionFor(groupID, int32(len(t.Partitions)))
	leader := t.Partitions[partition].State().Leader
	if leader != c.cfg.NodeID && c.fetchers.Unreachable(leader) {
		leader = c.waitReachableLeader(t.Partitions[partition], leader)
		if c.fetchers.Unreachable(leader) {
			return BrokerAddress{}, fmt.Errorf("%w: broker %d leads partition %d of %s but does not answer", kerr.CoordinatorNotAvailable, leader, partition, group.OffsetsTopic)
		}
	}
	for _, b := range c.Brokers() {
		if b.NodeID == leader {
			return b, nil
		}
	}
	return BrokerAddress{}, fmt.Errorf("%w: partition %d of %s has no leader in service", kerr.CoordinatorNotAvailable, partition, group.OffsetsTopic)
}

// coordinatorLeaderWait bounds GroupCoordinator's wait for the partition
// of an unreachable leader to get another: a dead broker is fenced and its
// partitions moved within a few seconds (more when it was the controller).
const coordinatorLeaderWait = 6 * time.Second

// waitReachableLeader waits until p's leader is not leader, or is
// reachable again, or coordinatorLeaderWait has passed, and returns p's
// leader then.
func (c *Cluster) waitReachableLeader(p *Partition, leader int32) int32 {
	deadline := c.clock.Now().Add(coordinatorLeaderWait)
	for c.clock.Now().Before(deadline) {
		if now := p.State().Leader; now != leader || !c.fetchers.Unreachable(now) {
			return now
		}
		timer := c.clock.NewTimer(50 * time.Millisecond)
		select {
		case <-timer.C():
		case <-c.stop:
			timer.Stop()
			return p.State().Leader
		}
	}
	return p.State().Leader
}

// privateOffsetsDir is where a kqbroker before the replicated offsets
// topic kept its groups: a private log named like partition 0 of the
// topic. At start it is moved aside, then taken over (takeOverPrivateOffsets).
const privateOffsetsDir = "__consumer_offsets.private"

// setPrivateOffsetsAside moves an earlier version's private offsets log
// out of the way of the topic's partition 0, before any partition opens.
func (c *Cluster) setPrivateOffsetsAside() error {
	if _, exists := c.quorum.Image().Topic(group.OffsetsTopic); exists {
		return nil // the directory is the topic's partition
	}
	old := filepath.Join(c.cfg.DataDir, consumerOffsetsDir)
	if !storage.Exists(c.fs, old) {
		return nil
	}
	aside := filepath.Join(c.cfg.DataDir, privateOffsetsDir)
	if storage.Exists(c.fs, aside) {
		return fmt.Errorf("%s and %s are both in %s: an earlier takeover was interrupted; keep the .private one and remove the other", old, aside, c.cfg.DataDir)
	}
	if err := c.fs.Rename(old, aside); err != nil {
		return err
	}
	return c.fs.SyncDir(c.cfg.DataDir)
}

// takeOverPrivateOffsets carries the groups and committed offsets of a
// private offsets log (an earlier version's, set aside at start) into
// their partitions of __consumer_offsets, before those load, then removes
// it. A broker alone leads every partition; in a cluster, groups whose
// partition another broker leads stay in the private log, with a warning.
// Interrupted, it runs again at the next start: the same records written
// again change nothing.
func (c *Cluster) takeOverPrivateOffsets() error {
	dir := filepath.Join(c.cfg.DataDir, privateOffsetsDir)
	if !storage.Exists(c.fs, dir) {
		return nil
	}
	private, err := group.OpenOffsetStore(dir, storage.Options{FS: c.fs, Clock: c.clock, Logger: c.logger, Config: settingsFor(nil, c.cfg.Log).log})
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	defer private.Close()
	c.coordinators.hold()
	defer c.coordinators.release()
	t, err := c.EnsureOffsetsTopic()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), quorumStartTimeout)
	defer cancel()
	writers := map[int32]group.Writer{}
	for i, p := range t.Partitions {
		for p.Replica == nil || p.State().Leader != c.cfg.NodeID || p.Replica.State().Leader != c.cfg.NodeID {
			if len(c.brokersInService()) > 1 || ctx.Err() != nil {
				break // another broker's partition
			}
			if err := c.sleep(ctx, 10*time.Millisecond); err != nil {
				break
			}
		}
		if p.Replica != nil && p.Replica.State().Leader == c.cfg.NodeID {
			writers[int32(i)] = replicaWriter{replica: p.Replica, epoch: p.Replica.State().LeaderEpoch, timeout: offsetCommitTimeout, clock: c.clock}
		}
	}
	carried, left, err := private.CarryInto(int32(len(t.Partitions)), writers)
	if err != nil {
		return fmt.Errorf("carrying the groups of %s into %s: %w", dir, group.OffsetsTopic, err)
	}
	if left > 0 {
		c.logger.Warn("groups of the private offsets log whose partition another broker leads were not carried over; the log is kept",
			"dir", dir, "carried", carried, "left", left)
		return nil
	}
	_ = private.Close()
	if err := c.fs.RemoveAll(dir); err != nil {
		return err
	}
	c.logger.Info("took over the groups of an earlier kqbroker into "+group.OffsetsTopic, "groups", carried)
	return c.fs.SyncDir(c.cfg.DataDir)
}
