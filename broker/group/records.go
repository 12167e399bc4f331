package group

// The offsets log holds magic-v2 record batches (uncompressed, producer
// id -1) of two kinds of record, told apart by the key's version, as
// Kafka's __consumer_offsets; tools that read that topic understand it:
//
//	key version 0, 1: OffsetCommitKey    | group | topic | partition |  value: OffsetCommitValue v3
//	key version 2:    GroupMetadataKey   | group |                      value: GroupMetadataValue v3
//
// A null value deletes the key; the last record of each key wins. Group
// metadata is written at each generation, with the members and their
// assignments.

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
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

// offsetEntry is a committed offset as the coordinator holds it, with where
// it is in the log: a later record of the same partition wins, even when
// applied first. deleted marks a deletion whose record is in the log while
// an older commit of the partition is still to be applied.
type offsetEntry struct {
	Offset
	logOffset int64
	deleted   bool
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

// record is a key and a value (nil: a deletion) for the offsets log.
type record struct {
	key, value []byte
}

func offsetRecord(group string, tp TopicPartition, o *Offset, now int64) record {
	key := kmsg.OffsetCommitKey{Version: 1, Group: group, Topic: tp.Topic, Partition: tp.Partition}
	r := record{key: key.AppendTo(nil)}
	if o != nil {
		value := kmsg.NewOffsetCommitValue()
		value.Version, value.Offset, value.LeaderEpoch, value.Metadata, value.CommitTimestamp = 3, o.Offset, o.LeaderEpoch, o.Metadata, now
		r.value = value.AppendTo(nil)
	}
	return r
}

func groupMetadataRecord(group string, rec *GroupRecord, now int64) record {
	key := kmsg.GroupMetadataKey{Version: 2, Group: group}
	r := record{key: key.AppendTo(nil)}
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
		r.value = value.AppendTo(nil)
	}
	return r
}

// encodeBatch encodes records as one uncompressed magic-v2 batch with kmsg.
func encodeBatch(records []record, timestamp int64) []byte {
	var body []byte
	for i, rec := range records {
		r := kmsg.Record{Key: rec.key, Value: rec.value, OffsetDelta: int32(i)}
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

// recordKey is what a record is about: a group's offset for a partition,
// the group's metadata, or (for a key this version does not read) the raw
// key.
type recordKey struct {
	group     string
	metadata  bool
	topic     string
	partition int32
	raw       string
}

func parseKey(key []byte) recordKey {
	if len(key) >= 2 {
		switch binary.BigEndian.Uint16(key) {
		case 0, 1:
			var k kmsg.OffsetCommitKey
			if k.ReadFrom(key) == nil {
				return recordKey{group: k.Group, topic: k.Topic, partition: k.Partition}
			}
		case 2:
			var k kmsg.GroupMetadataKey
			if k.ReadFrom(key) == nil {
				return recordKey{group: k.Group, metadata: true}
			}
		}
	}
	return recordKey{raw: string(key)}
}

// liveRecord is the last record of a key, as written.
type liveRecord struct {
	key, value []byte
	logOffset  int64
}

type liveRecords map[recordKey]liveRecord

// liveRecords reads the log from its start up to end and returns the last
// record of each key, deletions left out.
func (s *OffsetStore) liveRecords(end int64) (liveRecords, error) {
	live := make(liveRecords)
	for offset := s.log.LogStartOffset(); offset < end; {
		data, err := s.log.Read(offset, 1<<20)
		if err != nil {
			return nil, err
		}
		if len(data) == 0 {
			break
		}
		for len(data) > 0 {
			var batch kmsg.RecordBatch
			if err := batch.ReadFrom(data); err != nil {
				return nil, err
			}
			records, err := readRecords(batch.Records, int(batch.NumRecords))
			if err != nil {
				return nil, err
			}
			for _, r := range records {
				key := parseKey(r.Key)
				if r.Value == nil {
					delete(live, key)
				} else {
					live[key] = liveRecord{key: r.Key, value: r.Value, logOffset: batch.FirstOffset + int64(r.OffsetDelta)}
				}
			}
			offset = batch.FirstOffset + int64(batch.LastOffsetDelta) + 1
			data = data[12+int(batch.Length):]
		}
	}
	return live, nil
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

// loadGroups reads the groups out of the live records. Values that do not
// decode, and kinds of record this version does not know, are skipped.
func loadGroups(live liveRecords) map[string]*storedGroup {
	groups := make(map[string]*storedGroup)
	stored := func(name string) *storedGroup {
		g := groups[name]
		if g == nil {
			g = &storedGroup{offsets: make(map[TopicPartition]offsetEntry)}
			groups[name] = g
		}
		return g
	}
	for key, r := range live {
		switch {
		case key.raw != "":
		case key.metadata:
			if rec, ok := decodeGroupRecord(r.value); ok {
				stored(key.group).metadata = rec
			}
		default:
			var value kmsg.OffsetCommitValue
			if value.ReadFrom(r.value) != nil {
				continue
			}
			stored(key.group).offsets[TopicPartition{key.topic, key.partition}] = offsetEntry{
				Offset:    Offset{Offset: value.Offset, LeaderEpoch: value.LeaderEpoch, Metadata: value.Metadata, CommitTimestamp: value.CommitTimestamp},
				logOffset: r.logOffset}
		}
	}
	return groups
}

func decodeGroupRecord(b []byte) (*GroupRecord, bool) {
	var value kmsg.GroupMetadataValue
	if value.ReadFrom(b) != nil {
		return nil, false
	}
	rec := &GroupRecord{ProtocolType: value.ProtocolType, Generation: value.Generation}
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
	return rec, true
}
