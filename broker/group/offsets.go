package group

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/storage"
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is a committed offset.
type Offset struct {
	Offset          int64
	LeaderEpoch     int32
	Metadata        string
	CommitTimestamp int64
}

// OffsetStore keeps committed offsets in memory and in an internal log,
// __consumer_offsets, in Kafka's own record format: the key is an
// OffsetCommitKey (version 1: group, topic, partition), the value an
// OffsetCommitValue (version 3), a null value deletes. Tools that read that
// topic directly understand it. A commit is acknowledged once its batch is
// durable under the log's flush policy. At start the log is replayed; the
// last record of each key wins.
type OffsetStore struct {
	log   *storage.Log
	clock clock.Clock
	// writeMu orders appends against Compact, which must see every
	// appended record in the log.
	writeMu sync.Mutex

	mu     sync.RWMutex
	groups map[string]map[TopicPartition]offsetEntry
	// metadata is the last group metadata record of each group.
	metadata map[string]GroupRecord
}

// GroupRecord is a group's metadata as the offsets log keeps it (Kafka's
// GroupMetadataValue), written at each new generation.
type GroupRecord struct {
	ProtocolType string
	Generation   int32
	Protocol     string
	Leader       string
	Members      []MemberRecord
}

// MemberRecord is one member in a GroupRecord.
type MemberRecord struct {
	MemberID         string
	InstanceID       *string
	ClientID         string
	ClientHost       string
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	Subscription     []byte
	Assignment       []byte
}

type offsetEntry struct {
	Offset
	logOffset int64 // where the commit is in the log: a later one wins
}

// OpenOffsetStore opens (or creates) the offsets log in dir and replays it.
func OpenOffsetStore(dir string, opts storage.Options) (*OffsetStore, error) {
	log, err := storage.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.System{}
	}
	s := &OffsetStore{log: log, clock: clk, groups: make(map[string]map[TopicPartition]offsetEntry), metadata: make(map[string]GroupRecord)}
	if err := s.replay(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("replaying %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the offsets log.
func (s *OffsetStore) Close() error { return s.log.Close() }

// Log is the offsets log, for maintenance.
func (s *OffsetStore) Log() *storage.Log { return s.log }

func (s *OffsetStore) replay() error {
	return s.replayInto(s.log.HighWatermark())
}

// replayInto applies the log from its start up to end.
func (s *OffsetStore) replayInto(end int64) error {
	for offset := s.log.LogStartOffset(); offset < end; {
		data, err := s.log.Read(offset, 1<<20)
		if err != nil {
			return err
		}
		for len(data) > 0 {
			var batch kmsg.RecordBatch
			if err := batch.ReadFrom(data); err != nil {
				return err
			}
			size := 12 + int(batch.Length)
			records, err := readRecords(batch.Records, int(batch.NumRecords))
			if err != nil {
				return err
			}
			for _, r := range records {
				s.applyRecord(r, batch.FirstOffset+int64(r.OffsetDelta))
			}
			offset = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
			data = data[size:]
		}
	}
	return nil
}

func readRecords(b []byte, n int) ([]kmsg.Record, error) {
	records := make([]kmsg.Record, 0, n)
	for i := 0; i < n; i++ {
		length, used := binary.Varint(b)
		if used <= 0 || length < 0 || int64(len(b)-used) < length {
			return nil, errors.New("damaged record in the offsets log")
		}
		var r kmsg.Record
		if err := r.ReadFrom(b[:used+int(length)]); err != nil {
			return nil, err
		}
		records = append(records, r)
		b = b[used+int(length):]
	}
	return records, nil
}

// applyRecord applies one record of the offsets log; other record kinds
// (group metadata) are skipped.
func (s *OffsetStore) applyRecord(r kmsg.Record, logOffset int64) {
	if len(r.Key) < 2 {
		return
	}
	version := int16(binary.BigEndian.Uint16(r.Key))
	if version == 2 {
		s.applyGroupRecord(r)
		return
	}
	if version > 2 {
		return
	}
	var key kmsg.OffsetCommitKey
	if err := key.ReadFrom(r.Key); err != nil {
		return
	}
	tp := TopicPartition{Topic: key.Topic, Partition: key.Partition}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Value == nil {
		delete(s.groups[key.Group], tp)
		if len(s.groups[key.Group]) == 0 {
			delete(s.groups, key.Group)
		}
		return
	}
	var value kmsg.OffsetCommitValue
	if err := value.ReadFrom(r.Value); err != nil {
		return
	}
	s.setLocked(key.Group, tp, offsetEntry{Offset: Offset{Offset: value.Offset, LeaderEpoch: value.LeaderEpoch, Metadata: value.Metadata, CommitTimestamp: value.CommitTimestamp}, logOffset: logOffset})
}

func (s *OffsetStore) applyGroupRecord(r kmsg.Record) {
	var key kmsg.GroupMetadataKey
	if err := key.ReadFrom(r.Key); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Value == nil {
		delete(s.metadata, key.Group)
		return
	}
	var value kmsg.GroupMetadataValue
	if err := value.ReadFrom(r.Value); err != nil {
		return
	}
	rec := GroupRecord{ProtocolType: value.ProtocolType, Generation: value.Generation}
	if value.Protocol != nil {
		rec.Protocol = *value.Protocol
	}
	if value.Leader != nil {
		rec.Leader = *value.Leader
	}
	for _, m := range value.Members {
		rec.Members = append(rec.Members, MemberRecord{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost,
			SessionTimeout: time.Duration(m.SessionTimeoutMillis) * time.Millisecond, RebalanceTimeout: time.Duration(m.RebalanceTimeoutMillis) * time.Millisecond,
			Subscription: m.Subscription, Assignment: m.Assignment})
	}
	s.metadata[key.Group] = rec
}

// GroupRecords returns the last metadata record of every group.
func (s *OffsetStore) GroupRecords() map[string]GroupRecord {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]GroupRecord, len(s.metadata))
	for name, rec := range s.metadata {
		out[name] = rec
	}
	return out
}

// WriteGroup appends a group's metadata (nil: delete it) without waiting
// for an fsync: it records the generation for tools and restarts, and a
// lost record only means the group starts from an older generation.
func (s *OffsetStore) WriteGroup(name string, rec *GroupRecord) error {
	key := kmsg.GroupMetadataKey{Version: 2, Group: name}
	r := kmsg.Record{Key: key.AppendTo(nil)}
	now := s.clock.Now().UnixMilli()
	if rec != nil {
		value := kmsg.NewGroupMetadataValue()
		value.Version, value.ProtocolType, value.Generation, value.CurrentStateTimestamp = 3, rec.ProtocolType, rec.Generation, now
		value.Protocol, value.Leader = &rec.Protocol, &rec.Leader
		for _, m := range rec.Members {
			member := kmsg.NewGroupMetadataValueMember()
			member.MemberID, member.InstanceID, member.ClientID, member.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
			member.SessionTimeoutMillis, member.RebalanceTimeoutMillis = int32(m.SessionTimeout.Milliseconds()), int32(m.RebalanceTimeout.Milliseconds())
			member.Subscription, member.Assignment = m.Subscription, m.Assignment
			value.Members = append(value.Members, member)
		}
		r.Value = value.AppendTo(nil)
	}
	s.writeMu.Lock()
	_, err := s.log.Append(encodeBatch([]kmsg.Record{r}, now), storage.AppendOptions{})
	s.writeMu.Unlock()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec == nil {
		delete(s.metadata, name)
	} else {
		s.metadata[name] = *rec
	}
	return nil
}

func (s *OffsetStore) setLocked(group string, tp TopicPartition, e offsetEntry) {
	offsets := s.groups[group]
	if offsets == nil {
		offsets = make(map[TopicPartition]offsetEntry)
		s.groups[group] = offsets
	}
	if current, ok := offsets[tp]; ok && current.logOffset > e.logOffset {
		return // a later commit is already applied
	}
	offsets[tp] = e
}

// commit writes offsets (nil entries delete) durably, then applies them.
func (s *OffsetStore) commit(group string, offsets map[TopicPartition]*Offset) error {
	finish, err := s.write(group, offsets)
	if err != nil {
		return err
	}
	return finish()
}

// write appends offsets (nil entries delete) to the log and returns the
// step that waits until they are durable and then applies them. Callers
// may append more meanwhile; the fsync is shared.
func (s *OffsetStore) write(group string, offsets map[TopicPartition]*Offset) (func() error, error) {
	if len(offsets) == 0 {
		return func() error { return nil }, nil
	}
	now := s.clock.Now().UnixMilli()
	keys := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		keys = append(keys, tp)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].Topic < keys[j].Topic || (keys[i].Topic == keys[j].Topic && keys[i].Partition < keys[j].Partition)
	})
	records := make([]kmsg.Record, 0, len(keys))
	for _, tp := range keys {
		key := kmsg.OffsetCommitKey{Version: 1, Group: group, Topic: tp.Topic, Partition: tp.Partition}
		r := kmsg.Record{Key: key.AppendTo(nil)}
		if o := offsets[tp]; o != nil {
			value := kmsg.NewOffsetCommitValue()
			value.Version, value.Offset, value.LeaderEpoch, value.Metadata, value.CommitTimestamp = 3, o.Offset, o.LeaderEpoch, o.Metadata, now
			r.Value = value.AppendTo(nil)
		}
		records = append(records, r)
	}
	s.writeMu.Lock()
	result, err := s.log.Append(encodeBatch(records, now), storage.AppendOptions{Durable: true, DeferDurability: true})
	s.writeMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%w: writing committed offsets: %v", kerr.CoordinatorNotAvailable, err)
	}
	return func() error {
		if result.DurableAt > 0 {
			if err := s.log.WaitDurable(result.DurableAt); err != nil {
				return fmt.Errorf("%w: making committed offsets durable: %v", kerr.CoordinatorNotAvailable, err)
			}
		}
		s.apply(group, keys, offsets, result.BaseOffset, now)
		return nil
	}, nil
}

// apply records written offsets in memory; a later commit of the same
// partition wins even when applied first.
func (s *OffsetStore) apply(group string, keys []TopicPartition, offsets map[TopicPartition]*Offset, baseOffset, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, tp := range keys {
		if o := offsets[tp]; o != nil {
			o.CommitTimestamp = now
			s.setLocked(group, tp, offsetEntry{Offset: *o, logOffset: baseOffset + int64(i)})
		} else {
			delete(s.groups[group], tp)
		}
	}
	if len(s.groups[group]) == 0 {
		delete(s.groups, group)
	}
}

// compactionMinBytes: the log is not compacted below this size.
const compactionMinBytes = 64 << 20

// MaybeCompact compacts the log once it is large and mostly superseded
// records.
func (s *OffsetStore) MaybeCompact() error {
	s.mu.RLock()
	live := len(s.metadata)
	for _, offsets := range s.groups {
		live += len(offsets)
	}
	s.mu.RUnlock()
	if size := s.log.Size(); size < compactionMinBytes || int64(live)*256 > size/4 {
		return nil
	}
	return s.Compact()
}

// Compact rewrites the live records (the last one of each key) at the end
// of the log, durably, then moves the log start to them so that the
// segments before are deleted. It reads the state from the log itself,
// holding writes back meanwhile: a commit appended but not yet applied in
// memory is in the log and so in the rewrite.
func (s *OffsetStore) Compact() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	fresh := &OffsetStore{log: s.log, clock: s.clock, groups: make(map[string]map[TopicPartition]offsetEntry), metadata: make(map[string]GroupRecord)}
	if err := fresh.replayInto(s.log.HighWatermark()); err != nil {
		return err
	}
	now := s.clock.Now().UnixMilli()
	var records []kmsg.Record
	for name, rec := range fresh.metadata {
		key := kmsg.GroupMetadataKey{Version: 2, Group: name}
		value := kmsg.NewGroupMetadataValue()
		value.Version, value.ProtocolType, value.Generation, value.CurrentStateTimestamp = 3, rec.ProtocolType, rec.Generation, now
		value.Protocol, value.Leader = &rec.Protocol, &rec.Leader
		records = append(records, kmsg.Record{Key: key.AppendTo(nil), Value: value.AppendTo(nil)})
	}
	for name, offsets := range fresh.groups {
		for tp, e := range offsets {
			key := kmsg.OffsetCommitKey{Version: 1, Group: name, Topic: tp.Topic, Partition: tp.Partition}
			value := kmsg.NewOffsetCommitValue()
			value.Version, value.Offset, value.LeaderEpoch, value.Metadata, value.CommitTimestamp = 3, e.Offset.Offset, e.LeaderEpoch, e.Metadata, e.CommitTimestamp
			records = append(records, kmsg.Record{Key: key.AppendTo(nil), Value: value.AppendTo(nil)})
		}
	}
	start := s.log.LogEndOffset()
	for len(records) > 0 {
		n := min(len(records), 1000)
		if _, err := s.log.Append(encodeBatch(records[:n], now), storage.AppendOptions{Durable: true}); err != nil {
			return err
		}
		records = records[n:]
	}
	_, err := s.log.DeleteRecords(start)
	return err
}

// encodeBatch encodes records as one uncompressed magic-v2 batch with kmsg.
func encodeBatch(records []kmsg.Record, timestamp int64) []byte {
	var body []byte
	for i := range records {
		r := &records[i]
		r.OffsetDelta = int32(i)
		r.Length = int32(len(r.AppendTo(nil)) - 1) // the placeholder length 0 took one byte
		body = r.AppendTo(body)
	}
	batch := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(len(records) - 1), FirstTimestamp: timestamp, MaxTimestamp: timestamp,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(len(records)), Records: body}
	out := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// Fetch returns a group's committed offset for a partition.
func (s *OffsetStore) Fetch(group string, tp TopicPartition) (Offset, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.groups[group][tp]
	return e.Offset, ok
}

// GroupOffsets returns every committed offset of a group.
func (s *OffsetStore) GroupOffsets(group string) map[TopicPartition]Offset {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[TopicPartition]Offset, len(s.groups[group]))
	for tp, e := range s.groups[group] {
		out[tp] = e.Offset
	}
	return out
}

// Groups lists the groups with committed offsets.
func (s *OffsetStore) Groups() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.groups))
	for name := range s.groups {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// DeleteGroup deletes every committed offset of a group, and its metadata.
func (s *OffsetStore) DeleteGroup(group string) error {
	deletes := make(map[TopicPartition]*Offset)
	for tp := range s.GroupOffsets(group) {
		deletes[tp] = nil
	}
	if err := s.commit(group, deletes); err != nil {
		return err
	}
	return s.WriteGroup(group, nil)
}

// OffsetCommit is one partition of an OffsetCommit request.
type OffsetCommit struct {
	TopicPartition
	Offset
}

// CommitOffsets handles OffsetCommit with Kafka's rules: a commit with
// generation -1 and no member id is a standalone consumer's, allowed while
// the group has no members; otherwise the member must be in the group and
// in its generation. During a join phase the current generation may still
// commit (kafka-go commits at the end of every generation); while the
// leader's assignment is awaited, REBALANCE_IN_PROGRESS.
//
// The offsets are written before it returns; the returned step waits until
// they are durable and makes them visible, and its error is the commit's.
func (c *Coordinator) CommitOffsets(groupID, memberID string, instanceID *string, generation int32, commits []OffsetCommit) (func() error, error) {
	if groupID == "" {
		return nil, fmt.Errorf("%w: the group id is empty", kerr.InvalidGroupID)
	}
	now := c.clock.Now()
	c.mu.Lock()
	g, ok := c.groups[groupID]
	if !ok {
		g = c.newGroup(groupID)
		c.groups[groupID] = g
	}
	var err error
	switch {
	case generation < 0 && memberID == "" && len(g.members) == 0:
	case generation < 0 && memberID == "":
		err = fmt.Errorf("%w: group %q has active members; a standalone commit would race them", kerr.UnknownMemberID, groupID)
	case g.state == StateCompletingRebalance:
		err = kerr.RebalanceInProgress
	default:
		var m *member
		_, m, err = c.memberLocked(groupID, memberID, instanceID, generation)
		if err == nil {
			m.lastHeartbeat = now
		}
	}
	if err == nil {
		g.lastCommit = now
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	offsets := make(map[TopicPartition]*Offset, len(commits))
	for i := range commits {
		offsets[commits[i].TopicPartition] = &commits[i].Offset
	}
	return c.offsets.write(groupID, offsets)
}

// FetchOffset returns a group's committed offset for a partition; -1 with
// no error when nothing is committed, as clients expect.
func (c *Coordinator) FetchOffset(groupID string, tp TopicPartition) Offset {
	if o, ok := c.offsets.Fetch(groupID, tp); ok {
		return o
	}
	return Offset{Offset: -1, LeaderEpoch: -1}
}

// GroupOffsets returns every committed offset of a group.
func (c *Coordinator) GroupOffsets(groupID string) map[TopicPartition]Offset {
	return c.offsets.GroupOffsets(groupID)
}

// TopicDeleted removes every group's committed offsets for a deleted topic
// (tombstones in __consumer_offsets), whatever the group's state.
func (c *Coordinator) TopicDeleted(topic string) error {
	var errs []error
	for _, listing := range c.List(nil) {
		deletes := map[TopicPartition]*Offset{}
		for tp := range c.offsets.GroupOffsets(listing.Group) {
			if tp.Topic == topic {
				deletes[tp] = nil
			}
		}
		if len(deletes) > 0 {
			errs = append(errs, c.offsets.commit(listing.Group, deletes))
		}
	}
	return errors.Join(errs...)
}

// DeleteOffsets deletes a group's committed offsets for partitions the
// group is not consuming (OffsetDelete).
func (c *Coordinator) DeleteOffsets(groupID string, tps []TopicPartition) error {
	c.mu.Lock()
	g, ok := c.groups[groupID]
	busy := ok && g.state != StateEmpty && g.state != StateDead
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: group %q does not exist", kerr.GroupIDNotFound, groupID)
	}
	if busy {
		return fmt.Errorf("%w: group %q has members; stop its consumers first", kerr.GroupSubscribedToTopic, groupID)
	}
	deletes := make(map[TopicPartition]*Offset, len(tps))
	for _, tp := range tps {
		deletes[tp] = nil
	}
	return c.offsets.commit(groupID, deletes)
}
