package storage

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
)

// offsetMap is the cleaner's map from a key to the offset of its last
// record in the part of the log being cleaned (Kafka's SkimpyOffsetMap):
// an open-addressing table of fixed size, so its memory is known before a
// clean starts. A key is stored as 16 bytes of its SHA-256 and the offset
// as 8, 24 bytes a slot. The hash is the same on every broker, so replicas
// cleaning the same records decide alike; two keys sharing 128 bits of
// SHA-256 is not a case to plan for.
//
// Producer ids go into the same table under a different domain byte, with
// the last offset of the producer's last batch: a batch the cleaner
// empties is kept, with no records, when it is its producer's last, so the
// producer's sequence survives a restart that rebuilds producer state from
// the log.
type offsetMap struct {
	slots   []offsetSlot
	used    int
	maxUsed int // the table is full at this many entries (90%, Kafka's load factor)
	hasher  hash.Hash
	sum     [sha256.Size]byte
	scratch [9]byte
}

type offsetSlot struct {
	hi, lo uint64
	offset int64 // offset + 1; 0 marks an empty slot
}

const (
	offsetSlotBytes    = 24
	offsetMapLoadRatio = 0.9

	domainKey      = 0
	domainProducer = 1
)

// newOffsetMap returns a map of at most budget bytes, and no bigger than
// needed for wanted entries.
func newOffsetMap(budget int64, wanted int64) *offsetMap {
	slots := budget / offsetSlotBytes
	if need := int64(float64(wanted)/offsetMapLoadRatio) + 1; need < slots {
		slots = need
	}
	slots = max(slots, 2)
	return &offsetMap{
		slots:   make([]offsetSlot, slots),
		maxUsed: max(int(float64(slots)*offsetMapLoadRatio), 1),
		hasher:  sha256.New(),
	}
}

// room reports whether n more entries surely fit.
func (m *offsetMap) room(n int) bool { return m.used+n <= m.maxUsed }

func (m *offsetMap) hashOf(domain byte, data []byte) (uint64, uint64) {
	m.hasher.Reset()
	m.scratch[0] = domain
	m.hasher.Write(m.scratch[:1])
	m.hasher.Write(data)
	sum := m.hasher.Sum(m.sum[:0])
	return binary.BigEndian.Uint64(sum), binary.BigEndian.Uint64(sum[8:])
}

func (m *offsetMap) producerHash(producerID int64) (uint64, uint64) {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], uint64(producerID))
	return m.hashOf(domainProducer, id[:])
}

// putKey records offset as the last offset of key. The caller checks room
// first; a full table drops the entry.
func (m *offsetMap) putKey(key []byte, offset int64) {
	hi, lo := m.hashOf(domainKey, key)
	m.put(hi, lo, offset)
}

// getKey returns the last offset recorded for key, or -1.
func (m *offsetMap) getKey(key []byte) int64 {
	hi, lo := m.hashOf(domainKey, key)
	return m.get(hi, lo)
}

func (m *offsetMap) putProducer(producerID, lastOffset int64) {
	hi, lo := m.producerHash(producerID)
	m.put(hi, lo, lastOffset)
}

// producerLastOffset returns the last offset of the producer's last batch,
// or -1.
func (m *offsetMap) producerLastOffset(producerID int64) int64 {
	hi, lo := m.producerHash(producerID)
	return m.get(hi, lo)
}

func (m *offsetMap) put(hi, lo uint64, offset int64) {
	n := uint64(len(m.slots))
	for i := hi % n; ; i = (i + 1) % n {
		s := &m.slots[i]
		if s.offset == 0 {
			if m.used >= m.maxUsed {
				return
			}
			*s = offsetSlot{hi: hi, lo: lo, offset: offset + 1}
			m.used++
			return
		}
		if s.hi == hi && s.lo == lo {
			s.offset = offset + 1
			return
		}
	}
}

func (m *offsetMap) get(hi, lo uint64) int64 {
	n := uint64(len(m.slots))
	for i := hi % n; ; i = (i + 1) % n {
		s := &m.slots[i]
		if s.offset == 0 {
			return -1
		}
		if s.hi == hi && s.lo == lo {
			return s.offset - 1
		}
	}
}
