package cluster

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/group"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/replica"
	"github.com/kqstack/kqstack/broker/storage"
)

// Coordinators are the group coordinators of this broker: one for each
// partition of __consumer_offsets it leads, as in Kafka, kept as that
// internal topic's shards (internal_shards.go: loaded when the leadership
// is gained, dropped when it is lost). A group lives on partition
// group.PartitionFor(id); the leader of that partition coordinates it,
// writing its metadata and committed offsets to the partition through the
// leader's replica, so they are answered once the in-sync replicas have
// them and survive the leader.
type Coordinators struct {
	c      *Cluster
	shards *internalShards[*group.Coordinator]
}

func newCoordinators(c *Cluster) *Coordinators {
	cs := &Coordinators{c: c}
	cs.shards = newInternalShards(c.cfg.NodeID, cs.load, (*group.Coordinator).Unload, c.waitClosed)
	return cs
}

// follow is the apply hook's news of a partition of the offsets topic.
func (cs *Coordinators) follow(p *Partition, state metadata.Partition) { cs.shards.follow(p, state) }

// hold makes loads wait until release.
func (cs *Coordinators) hold() { cs.shards.hold() }

// release lets the held loads go.
func (cs *Coordinators) release() { cs.shards.release() }

// load replays the partition and starts its coordinator.
func (cs *Coordinators) load(p *Partition, epoch int32) (*group.Coordinator, error) {
	c := cs.c
	began := c.clock.Now()
	writer := replicaWriter{replica: p.Replica, epoch: epoch, timeout: offsetCommitTimeout, clock: c.clock}
	store, err := group.LoadOffsetStore(p.Log, writer, p.Log.LogEndOffset(), c.clock, c.logger)
	if err != nil {
		c.logger.Error("loading the groups of a partition", "partition", p.Index, "err", err)
		return nil, fmt.Errorf("%w: loading %s-%d: %v", kerr.CoordinatorNotAvailable, group.OffsetsTopic, p.Index, err)
	}
	coordinator := group.NewCoordinator(c.clock, time.Duration(c.cfg.GroupInitialRebalanceDelayMs)*time.Millisecond,
		time.Duration(c.cfg.OffsetsRetentionMinutes)*time.Minute, store)
	c.logger.Debug("loaded the groups of a partition", "topic", group.OffsetsTopic, "partition", p.Index, "leader_epoch", epoch,
		"groups", len(coordinator.List(nil)), "took", c.clock.Now().Sub(began))
	return coordinator, nil
}

// offsetCommitTimeout bounds the wait for the in-sync replicas (Kafka's
// offsets.commit.timeout.ms).
const offsetCommitTimeout = 5 * time.Second

// replicaWriter writes a coordinator's records as the partition's leader
// at the epoch it loaded at: NOT_ENOUGH_REPLICAS before anything is
// written when the ISR is below min.insync.replicas, and a wait until the
// high watermark passes them (Kafka's offsets.commit.required.acks=-1).
type replicaWriter struct {
	replica *replica.Replica
	epoch   int32
	timeout time.Duration
	clock   interface{ Now() time.Time }
}

func (w replicaWriter) Append(batches []byte, durable bool) (int64, func() error, error) {
	if state := w.replica.State(); state.LeaderEpoch != w.epoch {
		return 0, nil, fmt.Errorf("%w: the leader epoch moved from %d to %d", kerr.NotLeaderForPartition, w.epoch, state.LeaderEpoch)
	}
	result, epoch, err := w.replica.Append(batches, -1, storage.AppendOptions{Durable: true, DeferDurability: true})
	if err != nil {
		return 0, nil, err
	}
	if epoch != w.epoch {
		return 0, nil, fmt.Errorf("%w: written at leader epoch %d, loaded at %d", kerr.NotLeaderForPartition, epoch, w.epoch)
	}
	wait := func() error {
		if result.DurableAt > 0 {
			if err := w.replica.Log().WaitDurable(result.DurableAt); err != nil {
				return err
			}
		}
		return w.replica.WaitReplicated(result.LastOffset+1, epoch, w.clock.Now().Add(w.timeout))
	}
	return result.BaseOffset, wait, nil
}

// partitions is the offsets topic's partition count, 0 before it exists.
func (cs *Coordinators) partitions() int32 {
	if t, ok := cs.c.Topic(group.OffsetsTopic); ok {
		return int32(len(t.Partitions))
	}
	return 0
}

// For is the coordinator of groupID: NOT_COORDINATOR when another broker
// leads its partition, COORDINATOR_LOAD_IN_PROGRESS while it loads (past
// loadWait), COORDINATOR_NOT_AVAILABLE before the offsets topic exists
// (FindCoordinator creates it).
func (cs *Coordinators) For(groupID string) (*group.Coordinator, error) {
	n := cs.partitions()
	if n == 0 {
		return nil, fmt.Errorf("%w: %s does not exist yet; FindCoordinator creates it", kerr.CoordinatorNotAvailable, group.OffsetsTopic)
	}
	partition := group.PartitionFor(groupID, n)
	coordinator, found, err := cs.shards.get(partition)
	switch {
	case found == shardNotLed:
		return nil, fmt.Errorf("%w: group %q is on partition %d of %s, which broker %d does not lead", kerr.NotCoordinator, groupID, partition, group.OffsetsTopic, cs.c.cfg.NodeID)
	case found == shardLoading:
		return nil, fmt.Errorf("%w: partition %d of %s is being loaded", kerr.CoordinatorLoadInProgress, partition, group.OffsetsTopic)
	case err != nil:
		return nil, err
	}
	return coordinator, nil
}

// loadWait is how long a request waits for its shard of an internal topic
// to load before it is answered that it is loading
// (COORDINATOR_LOAD_IN_PROGRESS). Kafka answers at once; but kafka-go
// waits 5 s (JoinGroupBackoff) before it joins again after that error,
// while a load after a failover takes milliseconds.
const loadWait = 2 * time.Second

// waitClosed reports whether ready is closed, or closes within d on the
// cluster's clock.
func (c *Cluster) waitClosed(d time.Duration, ready <-chan struct{}) bool {
	select {
	case <-ready:
		return true
	default:
	}
	timer := c.clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ready:
		return true
	case <-timer.C():
		return false
	}
}

// Check is nil when this broker coordinates groupID now (see For).
func (cs *Coordinators) Check(groupID string) error {
	_, err := cs.For(groupID)
	return err
}

// The group handlers' API: each call goes to the group's coordinator;
// the handlers check For first, so an error here means the leadership
// moved in between.

func (cs *Coordinators) Join(req group.JoinRequest) <-chan group.JoinResult {
	c, err := cs.For(req.Group)
	if err != nil {
		answer := make(chan group.JoinResult, 1)
		answer <- group.JoinResult{Err: err, MemberID: req.MemberID, Generation: -1}
		return answer
	}
	return c.Join(req)
}

func (cs *Coordinators) Sync(req group.SyncRequest) <-chan group.SyncResult {
	c, err := cs.For(req.Group)
	if err != nil {
		answer := make(chan group.SyncResult, 1)
		answer <- group.SyncResult{Err: err}
		return answer
	}
	return c.Sync(req)
}

func (cs *Coordinators) Heartbeat(groupID, memberID string, instanceID *string, generation int32) error {
	c, err := cs.For(groupID)
	if err != nil {
		return err
	}
	return c.Heartbeat(groupID, memberID, instanceID, generation)
}

func (cs *Coordinators) Leave(groupID string, leaving []group.LeaveMember) ([]error, error) {
	c, err := cs.For(groupID)
	if err != nil {
		return nil, err
	}
	return c.Leave(groupID, leaving)
}

func (cs *Coordinators) Describe(groupID string) (group.GroupDescription, bool) {
	c, err := cs.For(groupID)
	if err != nil {
		return group.GroupDescription{}, false
	}
	return c.Describe(groupID)
}

// List lists the groups of every loaded partition.
func (cs *Coordinators) List(states []string) []group.GroupListing {
	var all []group.GroupListing
	for _, s := range cs.shards.loaded() {
		all = append(all, s.List(states)...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Group < all[j].Group })
	return all
}

func (cs *Coordinators) Delete(groupID string) error {
	c, err := cs.For(groupID)
	if err != nil {
		return err
	}
	return c.Delete(groupID)
}

func (cs *Coordinators) CommitOffsets(groupID, memberID string, instanceID *string, generation int32, commits []group.OffsetCommit) (func() error, error) {
	c, err := cs.For(groupID)
	if err != nil {
		return nil, err
	}
	return c.CommitOffsets(groupID, memberID, instanceID, generation, commits)
}

func (cs *Coordinators) DeleteOffsets(groupID string, tps []group.TopicPartition) error {
	c, err := cs.For(groupID)
	if err != nil {
		return err
	}
	return c.DeleteOffsets(groupID, tps)
}

func (cs *Coordinators) FetchOffset(groupID string, tp group.TopicPartition) group.Offset {
	c, err := cs.For(groupID)
	if err != nil {
		return group.Offset{Offset: -1, LeaderEpoch: -1}
	}
	return c.FetchOffset(groupID, tp)
}

func (cs *Coordinators) GroupOffsets(groupID string) map[group.TopicPartition]group.Offset {
	c, err := cs.For(groupID)
	if err != nil {
		return nil
	}
	return c.GroupOffsets(groupID)
}

// TopicDeleted removes the committed offsets of a deleted topic from the
// groups of every loaded partition.
func (cs *Coordinators) TopicDeleted(topic string) error {
	var errs []error
	for _, s := range cs.shards.loaded() {
		errs = append(errs, s.TopicDeleted(topic))
	}
	return errors.Join(errs...)
}

// tick runs each loaded coordinator's timers.
func (cs *Coordinators) tick() error {
	var errs []error
	for _, s := range cs.shards.loaded() {
		errs = append(errs, s.Tick())
	}
	return errors.Join(errs...)
}

// close unloads every coordinator (the broker stops).
func (cs *Coordinators) close() { cs.shards.close() }
