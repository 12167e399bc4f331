package storage

import (
	"encoding/binary"
	"sort"
)

const (
	indexEntrySize     = 8  // relative offset uint32, position uint32
	timeIndexEntrySize = 12 // timestamp int64, relative offset uint32
)

// indexEntry maps a batch's base offset, relative to the segment's base
// offset, to the batch's byte position in the segment's .log file.
type indexEntry struct {
	relativeOffset uint32
	position       uint32
}

// timeIndexEntry records that the segment's largest timestamp up to some
// point was timestamp, held by the batch whose base offset is relativeOffset.
type timeIndexEntry struct {
	timestamp      int64
	relativeOffset uint32
}

// decodeOffsetIndex returns the longest prefix of b that is a valid offset
// index: whole entries, both fields strictly increasing, positions below
// logSize. A torn or damaged index loses only its tail.
func decodeOffsetIndex(b []byte, logSize int64) []indexEntry {
	entries := make([]indexEntry, 0, len(b)/indexEntrySize)
	for ; len(b) >= indexEntrySize; b = b[indexEntrySize:] {
		e := indexEntry{
			relativeOffset: binary.BigEndian.Uint32(b),
			position:       binary.BigEndian.Uint32(b[4:]),
		}
		if int64(e.position) >= logSize {
			break
		}
		if n := len(entries); n > 0 && (e.relativeOffset <= entries[n-1].relativeOffset || e.position <= entries[n-1].position) {
			break
		}
		entries = append(entries, e)
	}
	return entries
}

// decodeTimeIndex returns the longest prefix of b that is a valid time
// index: whole entries, timestamps strictly increasing, relative offsets not
// decreasing and below offsetLimit.
func decodeTimeIndex(b []byte, offsetLimit int64) []timeIndexEntry {
	entries := make([]timeIndexEntry, 0, len(b)/timeIndexEntrySize)
	for ; len(b) >= timeIndexEntrySize; b = b[timeIndexEntrySize:] {
		e := timeIndexEntry{
			timestamp:      int64(binary.BigEndian.Uint64(b)),
			relativeOffset: binary.BigEndian.Uint32(b[8:]),
		}
		if int64(e.relativeOffset) >= offsetLimit {
			break
		}
		if n := len(entries); n > 0 && (e.timestamp <= entries[n-1].timestamp || e.relativeOffset < entries[n-1].relativeOffset) {
			break
		}
		entries = append(entries, e)
	}
	return entries
}

func appendIndexEntries(dst []byte, entries []indexEntry) []byte {
	for _, e := range entries {
		dst = binary.BigEndian.AppendUint32(dst, e.relativeOffset)
		dst = binary.BigEndian.AppendUint32(dst, e.position)
	}
	return dst
}

func appendTimeIndexEntries(dst []byte, entries []timeIndexEntry) []byte {
	for _, e := range entries {
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.timestamp))
		dst = binary.BigEndian.AppendUint32(dst, e.relativeOffset)
	}
	return dst
}

// floorPosition returns the entry with the largest relative offset <= target,
// or the zero entry (the segment's start) when there is none.
func floorPosition(entries []indexEntry, target uint32) indexEntry {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].relativeOffset > target })
	if i == 0 {
		return indexEntry{}
	}
	return entries[i-1]
}

// lastOffsetBelowTimestamp returns the relative offset of the last entry
// whose timestamp is below ts: every record up to that batch is older than
// ts, so a search for the first record at or after ts can start there.
func lastOffsetBelowTimestamp(entries []timeIndexEntry, ts int64) (uint32, bool) {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].timestamp >= ts })
	if i == 0 {
		return 0, false
	}
	return entries[i-1].relativeOffset, true
}
