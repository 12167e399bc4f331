package group

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// OffsetCommit is one partition of an OffsetCommit request.
type OffsetCommit struct {
	TopicPartition
	Offset
}

// offsetWrite is a change of a group's offsets queued for the log:
// values[i] for keys[i], nil deleting it. The coordinator applies it once
// durable, unless the group was deleted meanwhile: the deletion is then
// later in the log, so the change is gone there too.
type offsetWrite struct {
	group     *group
	keys      []TopicPartition
	values    []*Offset
	timestamp int64
	write     *pendingWrite
}

// CommitOffsets handles OffsetCommit with Kafka's rules: a commit with
// generation -1 and no member id is a standalone consumer's, allowed while
// the group has no members, and creates the group if there is none;
// otherwise the member must be in the group and in its generation, and a
// group that does not exist is GROUP_ID_NOT_FOUND. During a join phase the
// current generation may still commit (kafka-go commits at the end of
// every generation); while the leader's assignment is awaited,
// REBALANCE_IN_PROGRESS; while the group is being deleted,
// COORDINATOR_NOT_AVAILABLE (a retry creates a new group).
//
// The offsets are written before it returns; the returned step, which the
// caller must run, waits until they are durable and makes them visible,
// and its error is the commit's.
func (c *Coordinator) CommitOffsets(groupID, memberID string, instanceID *string, generation int32, commits []OffsetCommit) (func() error, error) {
	if groupID == "" {
		return nil, fmt.Errorf("%w: the group id is empty", kerr.InvalidGroupID)
	}
	keys, values := offsetChanges(commits)
	now := c.clock.Now()
	c.mu.Lock()
	g, err := c.commitTargetLocked(groupID, memberID, instanceID, generation, now)
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	g.lastCommit = now
	if len(keys) == 0 {
		if g.unused() {
			delete(c.groups, groupID)
		}
		c.mu.Unlock()
		return func() error { return nil }, nil
	}
	w := c.writeOffsetsLocked(g, keys, values, now)
	c.mu.Unlock()
	c.offsets.flush()
	if err := c.offsets.appended(w.write); err != nil {
		return nil, c.offsetsFailed(w, "writing committed offsets", err)
	}
	return func() error { return c.finishOffsetWrite(w, "making committed offsets durable") }, nil
}

// commitTargetLocked checks a commit against the group's state and returns
// the group it goes to.
func (c *Coordinator) commitTargetLocked(groupID, memberID string, instanceID *string, generation int32, now time.Time) (*group, error) {
	standalone := generation < 0 && memberID == ""
	g, ok := c.groups[groupID]
	switch {
	case !ok && standalone:
		// A consumer that does not use group management: Kafka creates
		// an empty group for its offsets.
		g = c.newGroup(groupID)
		c.groups[groupID] = g
		return g, nil
	case !ok:
		return nil, fmt.Errorf("%w: group %q does not exist; join it before committing as member %q", kerr.GroupIDNotFound, groupID, memberID)
	case g.state == StateDead:
		return nil, fmt.Errorf("%w: group %q is being deleted; retry", kerr.CoordinatorNotAvailable, groupID)
	case standalone && len(g.members) == 0:
		return g, nil
	case standalone:
		return nil, fmt.Errorf("%w: group %q has active members; a standalone commit would race them", kerr.UnknownMemberID, groupID)
	case g.state == StateCompletingRebalance:
		return nil, kerr.RebalanceInProgress
	}
	_, m, err := c.memberLocked(groupID, memberID, instanceID, generation)
	if err != nil {
		return nil, err
	}
	m.lastHeartbeat = now
	return g, nil
}

// offsetChanges sorts the partitions of a commit, the last commit of a
// partition winning, and copies the offsets.
func offsetChanges(commits []OffsetCommit) ([]TopicPartition, []*Offset) {
	latest := make(map[TopicPartition]Offset, len(commits))
	for _, commit := range commits {
		latest[commit.TopicPartition] = commit.Offset
	}
	keys := make([]TopicPartition, 0, len(latest))
	for tp := range latest {
		keys = append(keys, tp)
	}
	sortPartitions(keys)
	values := make([]*Offset, len(keys))
	for i, tp := range keys {
		o := latest[tp]
		values[i] = &o
	}
	return keys, values
}

func sortPartitions(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		return tps[i].Topic < tps[j].Topic || (tps[i].Topic == tps[j].Topic && tps[i].Partition < tps[j].Partition)
	})
}

// writeOffsetsLocked queues a change of g's offsets, durable.
func (c *Coordinator) writeOffsetsLocked(g *group, keys []TopicPartition, values []*Offset, now time.Time) *offsetWrite {
	timestamp := now.UnixMilli()
	records := make([]record, len(keys))
	for i, tp := range keys {
		records[i] = offsetRecord(g.name, tp, values[i], timestamp)
		g.inFlight[tp]++
	}
	return &offsetWrite{group: g, keys: keys, values: values, timestamp: timestamp, write: c.offsets.enqueue(records, timestamp, true)}
}

// finishOffsetWrite waits until w is durable and applies it.
func (c *Coordinator) finishOffsetWrite(w *offsetWrite, what string) error {
	if err := c.offsets.durable(w.write); err != nil {
		return c.offsetsFailed(w, what, err)
	}
	c.offsetsWritten(w, nil)
	return nil
}

// offsetsFailed forgets a write that failed, logs it and says so.
func (c *Coordinator) offsetsFailed(w *offsetWrite, what string, err error) error {
	c.offsetsWritten(w, err)
	c.logWriteFailure(what+" failed", w.group.name, err)
	return fmt.Errorf("%w: %s of group %q: %v", writeFailure(err), what, w.group.name, err)
}

// offsetsWritten applies a durable write (err nil) to its group, or
// forgets a failed one. A later record of a partition wins even when
// applied first; a deletion applied before an older commit of the same
// partition stays as a marker until that commit is applied.
func (c *Coordinator) offsetsWritten(w *offsetWrite, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := w.group
	if c.groups[g.name] != g {
		return // deleted since, later in the log
	}
	for i, tp := range w.keys {
		if err == nil {
			e := offsetEntry{logOffset: w.write.baseOffset + int64(i), deleted: w.values[i] == nil}
			if !e.deleted {
				e.Offset = *w.values[i]
				e.CommitTimestamp = w.timestamp
			}
			if current, ok := g.offsets[tp]; !ok || current.logOffset < e.logOffset {
				g.offsets[tp] = e
			}
		}
		if g.inFlight[tp]--; g.inFlight[tp] <= 0 {
			delete(g.inFlight, tp)
			if g.offsets[tp].deleted {
				delete(g.offsets, tp)
			}
		}
	}
	if err != nil && g.unused() {
		delete(c.groups, g.name) // created by this commit: nothing of it is in the log
	}
}

// unused reports whether a group holds nothing: no members, no offsets,
// no generation. Such a group leaves no trace in the log.
func (g *group) unused() bool {
	return g.state == StateEmpty && len(g.members) == 0 && len(g.pending) == 0 && g.generation == 0 && len(g.offsets) == 0 && len(g.inFlight) == 0
}

// writtenPartitions lists the partitions of g, sorted, that have an offset
// or an offset write under way, those of topic only when topic is not "".
func (g *group) writtenPartitions(topic string) []TopicPartition {
	var tps []TopicPartition
	for tp := range g.offsets {
		if topic == "" || tp.Topic == topic {
			tps = append(tps, tp)
		}
	}
	for tp := range g.inFlight {
		if _, ok := g.offsets[tp]; !ok && (topic == "" || tp.Topic == topic) {
			tps = append(tps, tp)
		}
	}
	sortPartitions(tps)
	return tps
}

// FetchOffset returns a group's committed offset for a partition; -1 with
// no error when nothing is committed, as clients expect.
func (c *Coordinator) FetchOffset(groupID string, tp TopicPartition) Offset {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if g, ok := c.groups[groupID]; ok {
		if e, ok := g.offsets[tp]; ok && !e.deleted {
			return e.Offset
		}
	}
	return Offset{Offset: -1, LeaderEpoch: -1}
}

// GroupOffsets returns every committed offset of a group.
func (c *Coordinator) GroupOffsets(groupID string) map[TopicPartition]Offset {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make(map[TopicPartition]Offset)
	if g, ok := c.groups[groupID]; ok {
		for tp, e := range g.offsets {
			if !e.deleted {
				out[tp] = e.Offset
			}
		}
	}
	return out
}

// TopicDeleted removes every group's committed offsets for a deleted topic
// (tombstones in __consumer_offsets), whatever the group's state.
func (c *Coordinator) TopicDeleted(topic string) error {
	now := c.clock.Now()
	c.mu.Lock()
	var writes []*offsetWrite
	for _, g := range c.groups {
		if tps := g.writtenPartitions(topic); len(tps) > 0 {
			writes = append(writes, c.writeOffsetsLocked(g, tps, make([]*Offset, len(tps)), now))
		}
	}
	c.mu.Unlock()
	c.offsets.flush()
	var errs []error
	for _, w := range writes {
		errs = append(errs, c.finishOffsetWrite(w, "deleting the offsets of a deleted topic"))
	}
	return errors.Join(errs...)
}

// DeleteOffsets deletes a group's committed offsets for partitions the
// group is not consuming (OffsetDelete).
func (c *Coordinator) DeleteOffsets(groupID string, tps []TopicPartition) error {
	now := c.clock.Now()
	c.mu.Lock()
	g, err := c.emptyGroupLocked(groupID, kerr.GroupSubscribedToTopic)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	deletes := make([]OffsetCommit, len(tps))
	for i, tp := range tps {
		deletes[i].TopicPartition = tp
	}
	keys, _ := offsetChanges(deletes)
	if len(keys) == 0 {
		c.mu.Unlock()
		return nil
	}
	w := c.writeOffsetsLocked(g, keys, make([]*Offset, len(keys)), now)
	c.mu.Unlock()
	c.offsets.flush()
	return c.finishOffsetWrite(w, "deleting offsets")
}
