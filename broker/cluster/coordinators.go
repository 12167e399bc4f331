package cluster

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/group"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/replica"
	"github.com/kqstack/kqstack/broker/storage"
)

// Coordinators are the group coordinators of this broker: one for each
// partition of __consumer_offsets it leads, as in Kafka. A group lives on
// partition group.PartitionFor(id); the leader of that partition
// coordinates it, writing its metadata and committed offsets to the
// partition through the leader's replica, so they are answered once the
// in-sync replicas have them and survive the leader.
//
//	leadership gained (apply hook) ──► load: replay the partition to its
//	                                   log end, in the background
//	                                   (COORDINATOR_LOAD_IN_PROGRESS)
//	loaded                         ──► serve its groups
//	leadership lost                ──► unload: waiting members are told
//	                                   NOT_COORDINATOR, the state dropped
//
// Safe for concurrent use; mu guards shards and is never held across I/O.
type Coordinators struct {
	c *Cluster

	mu     sync.Mutex
	shards map[int32]*coordinatorShard
	// held: loading waits until release (the takeover of a private
	// offsets log writes into the partitions first).
	held chan struct{}
}

// coordinatorShard is the coordinator of one partition, at one leader
// epoch.
type coordinatorShard struct {
	partition int32
	epoch     int32
	ready     chan struct{} // closed once loaded, or failed
	// set before ready closes
	coordinator *group.Coordinator
	store       *group.OffsetStore
	err         error
}

func newCoordinators(c *Cluster) *Coordinators {
	return &Coordinators{c: c, shards: map[int32]*coordinatorShard{}}
}

// follow is called from the apply hook with a partition of the offsets
// topic and its new state: a new leadership (or epoch) loads, a lost one
// unloads.
func (cs *Coordinators) follow(p *Partition, state metadata.Partition) {
	leading := state.Leader == cs.c.cfg.NodeID && p.Replica != nil
	cs.mu.Lock()
	defer cs.mu.Unlock()
	old := cs.shards[p.Index]
	if old != nil && leading && old.epoch == state.LeaderEpoch {
		return
	}
	if old != nil {
		delete(cs.shards, p.Index)
		go old.unload()
	}
	if !leading {
		return
	}
	shard := &coordinatorShard{partition: p.Index, epoch: state.LeaderEpoch, ready: make(chan struct{})}
	cs.shards[p.Index] = shard
	held := cs.held
	go func() {
		if held != nil {
			<-held
		}
		cs.load(shard, p)
	}()
}

// hold makes loads wait until release.
func (cs *Coordinators) hold() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.held == nil {
		cs.held = make(chan struct{})
	}
}

// release lets the held loads go.
func (cs *Coordinators) release() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.held != nil {
		close(cs.held)
		cs.held = nil
	}
}

// load replays the partition and starts its coordinator.
func (cs *Coordinators) load(shard *coordinatorShard, p *Partition) {
	defer close(shard.ready)
	c := cs.c
	began := c.clock.Now()
	writer := replicaWriter{replica: p.Replica, epoch: shard.epoch, timeout: offsetCommitTimeout, clock: c.clock}
	store, err := group.LoadOffsetStore(p.Log, writer, p.Log.LogEndOffset(), c.clock, c.logger)
	if err != nil {
		shard.err = fmt.Errorf("%w: loading %s-%d: %v", kerr.CoordinatorNotAvailable, group.OffsetsTopic, p.Index, err)
		c.logger.Error("loading the groups of a partition", "partition", p.Index, "err", err)
		return
	}
	shard.store = store
	shard.coordinator = group.NewCoordinator(c.clock, time.Duration(c.cfg.GroupInitialRebalanceDelayMs)*time.Millisecond,
		time.Duration(c.cfg.OffsetsRetentionMinutes)*time.Minute, store)
	c.logger.Debug("loaded the groups of a partition", "topic", group.OffsetsTopic, "partition", p.Index, "leader_epoch", shard.epoch,
		"groups", len(shard.coordinator.List(nil)), "took", c.clock.Now().Sub(began))
}

func (s *coordinatorShard) unload() {
	<-s.ready
	if s.coordinator != nil {
		s.coordinator.Unload()
	}
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
// loadWait),
// COORDINATOR_NOT_AVAILABLE before the offsets topic exists (FindCoordinator
// creates it).
func (cs *Coordinators) For(groupID string) (*group.Coordinator, error) {
	n := cs.partitions()
	if n == 0 {
		return nil, fmt.Errorf("%w: %s does not exist yet; FindCoordinator creates it", kerr.CoordinatorNotAvailable, group.OffsetsTopic)
	}
	partition := group.PartitionFor(groupID, n)
	cs.mu.Lock()
	shard := cs.shards[partition]
	cs.mu.Unlock()
	if shard == nil {
		return nil, fmt.Errorf("%w: group %q is on partition %d of %s, which broker %d does not lead", kerr.NotCoordinator, groupID, partition, group.OffsetsTopic, cs.c.cfg.NodeID)
	}
	if !cs.waitReady(shard) {
		return nil, fmt.Errorf("%w: partition %d of %s is being loaded", kerr.CoordinatorLoadInProgress, partition, group.OffsetsTopic)
	}
	if shard.err != nil {
		return nil, shard.err
	}
	return shard.coordinator, nil
}

// loadWait is how long a request waits for its group's partition to
// load before it is answered COORDINATOR_LOAD_IN_PROGRESS. Kafka answers at
// once; but kafka-go waits 5 s (JoinGroupBackoff) before it joins again
// after that error, while a load after a failover takes milliseconds.
const loadWait = 2 * time.Second

// waitReady reports whether shard is loaded (or failed to load), waiting
// up to loadWait for it.
func (cs *Coordinators) waitReady(shard *coordinatorShard) bool {
	select {
	case <-shard.ready:
		return true
	default:
	}
	timer := cs.c.clock.NewTimer(loadWait)
	defer timer.Stop()
	select {
	case <-shard.ready:
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

// loaded are the coordinators that serve now, by partition.
func (cs *Coordinators) loaded() []*coordinatorShard {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var shards []*coordinatorShard
	for _, s := range cs.shards {
		select {
		case <-s.ready:
			if s.coordinator != nil {
				shards = append(shards, s)
			}
		default:
		}
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i].partition < shards[j].partition })
	return shards
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
	for _, s := range cs.loaded() {
		all = append(all, s.coordinator.List(states)...)
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
	for _, s := range cs.loaded() {
		errs = append(errs, s.coordinator.TopicDeleted(topic))
	}
	return errors.Join(errs...)
}

// tick runs each loaded coordinator's timers.
func (cs *Coordinators) tick() error {
	var errs []error
	for _, s := range cs.loaded() {
		errs = append(errs, s.coordinator.Tick())
	}
	return errors.Join(errs...)
}

// close unloads every coordinator (the broker stops).
func (cs *Coordinators) close() {
	cs.mu.Lock()
	shards := cs.shards
	cs.shards = map[int32]*coordinatorShard{}
	cs.mu.Unlock()
	for _, s := range shards {
		s.unload()
	}
}
