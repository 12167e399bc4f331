package storage

import (
	"fmt"
	"sort"
)

// Read returns whole batches, starting with the batch that holds offset,
// up to maxBytes in all, but always at least one batch when offset is below
// the high watermark, however large it is. Like Kafka it reads from one
// segment at a time. offset at or past the high watermark gives no bytes;
// ErrOffsetOutOfRange is returned below the log start offset or above the
// log end. The first batch may begin before offset: consumers skip
// the records they did not ask for.
func (l *Log) Read(offset int64, maxBytes int) ([]byte, error) {
	return l.AppendRead(nil, offset, maxBytes)
}

// AppendRead is Read that appends to dst, so callers can reuse buffers.
func (l *Log) AppendRead(dst []byte, offset int64, maxBytes int) ([]byte, error) {
	return l.AppendReadUpTo(dst, offset, maxBytes, l.HighWatermark())
}

// AppendReadUpTo is AppendRead with batches read below upTo instead of the
// high watermark: a follower reads up to the leader's log end.
func (l *Log) AppendReadUpTo(dst []byte, offset int64, maxBytes int, upTo int64) ([]byte, error) {
	l.segmentsMu.RLock()
	defer l.segmentsMu.RUnlock()
	if err := l.checkRange(offset, l.logEndOffset.Load()); err != nil {
		return dst, err
	}
	highWatermark := min(upTo, l.logEndOffset.Load())
	for i := l.segmentIndexLocked(offset); i < len(l.segments) && offset < highWatermark; i++ {
		s := l.segments[i]
		position, h, found, err := l.findBatch(s, offset)
		if err != nil {
			return dst, err
		}
		if found {
			start := len(dst)
			dst, err = l.readBatches(dst, s, position, h, maxBytes, highWatermark)
			read := dst[start:]
			if err != nil || !onlyEmptyBatches(read) {
				return dst, err
			}
			// Only batches a compacted log's cleaner emptied: read on into
			// the next segment, for a batch with records; some clients
			// (segmentio/kafka-go) cannot take an answer of empty batches.
			offset = lastOffsetOf(read) + 1
			maxBytes = max(maxBytes-len(read), 1)
			if position+int64(len(read)) < s.size.Load() {
				i-- // more of this segment first
			}
			continue
		}
		// Past this segment's last batch: read on from the next one.
		if i+1 < len(l.segments) {
			offset = max(offset, l.segments[i+1].baseOffset)
		}
	}
	return dst, nil
}

func (l *Log) checkRange(offset, end int64) error {
	if start := l.logStartOffset.Load(); offset < start || offset > end {
		return fmt.Errorf("%w: offset %d is outside [%d, %d]", ErrOffsetOutOfRange, offset, start, end)
	}
	return nil
}

// segmentIndexLocked returns the index of the segment that holds offset:
// the last one whose base offset is <= offset. Called under segmentsMu.
func (l *Log) segmentIndexLocked(offset int64) int {
	i := sort.Search(len(l.segments), func(i int) bool { return l.segments[i].baseOffset > offset })
	return max(i-1, 0)
}

// findBatch returns the position and header of the batch in s whose last
// offset is the first >= offset, reading at most about one index interval
// of headers. found is false when no such batch is in s.
func (l *Log) findBatch(s *segment, offset int64) (position int64, h BatchHeader, found bool, err error) {
	if err := s.loadIndexes(l.indexInterval()); err != nil {
		return 0, h, false, err
	}
	end := s.size.Load()
	s.mu.RLock()
	entry := floorPosition(s.offsets, uint32(max(offset-s.baseOffset, 0)))
	s.mu.RUnlock()
	var buf [batchHeaderSize]byte
	for position = int64(entry.position); position < end; position += int64(h.Size()) {
		if h, err = s.readHeader(position, end, &buf); err != nil {
			return 0, h, false, fmt.Errorf("%s: reading batch header at byte %d: %w", s.name(), position, err)
		}
		if !h.plausible(position, end) {
			return 0, h, false, &CorruptionError{Segment: s.name(), Position: position, Offset: offset, Reason: "batch header damaged"}
		}
		if h.LastOffset() >= offset {
			return position, h, true, nil
		}
	}
	return 0, h, false, nil
}

// indexInterval is the configured index interval, which lazily rebuilt
// indexes use. An atomic copy, so readers need not take appendMu.
func (l *Log) indexInterval() int { return int(l.indexIntervalBytes.Load()) }

// readBatches reads whole batches from position: as many as fit in maxBytes,
// at least the first, none at or above highWatermark.
func (l *Log) readBatches(dst []byte, s *segment, position int64, first BatchHeader, maxBytes int, highWatermark int64) ([]byte, error) {
	end := s.size.Load()
	want := min(int64(maxBytes), end-position)
	want = max(want, int64(first.Size()))
	start := len(dst)
	dst = growBy(dst, int(want))
	if _, err := s.log.ReadAt(dst[start:], position); err != nil {
		return dst[:start], fmt.Errorf("%s: reading %d bytes at byte %d: %w", s.name(), want, position, err)
	}
	read := dst[start:]
	cut := 0
	for cut+batchHeaderSize <= len(read) {
		h := parseBatchHeader(read[cut:])
		if h.BaseOffset >= highWatermark || cut+h.Size() > len(read) || h.Length < batchHeaderSize-batchLogOverhead {
			break
		}
		cut += h.Size()
	}
	return dst[:start+cut], nil
}

// growBy extends b by n bytes, reallocating only when its capacity is short.
func growBy(b []byte, n int) []byte {
	if len(b)+n <= cap(b) {
		return b[:len(b)+n]
	}
	grown := make([]byte, len(b)+n)
	copy(grown, b)
	return grown
}

// OffsetForTimestamp returns the offset and timestamp of the first record
// whose timestamp is >= ts (Kafka's ListOffsets by timestamp). found is
// false when every record is older.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	l.segmentsMu.RLock()
	defer l.segmentsMu.RUnlock()
	start, highWatermark := l.logStartOffset.Load(), l.HighWatermark()
	interval := l.indexInterval()
	for i := l.segmentIndexLocked(start); i < len(l.segments); i++ {
		s := l.segments[i]
		largest, _, err := s.largestTimestamp(interval)
		if err != nil {
			return 0, 0, false, err
		}
		if largest < ts {
			continue
		}
		if err := s.loadIndexes(interval); err != nil {
			return 0, 0, false, err
		}
		s.mu.RLock()
		from := s.baseOffset
		if relative, ok := lastOffsetBelowTimestamp(s.times, ts); ok {
			from += int64(relative)
		}
		s.mu.RUnlock()
		offset, timestamp, found, err := l.scanForTimestamp(s, max(from, start), start, highWatermark, ts)
		if err != nil || found {
			return offset, timestamp, found, err
		}
	}
	return -1, -1, false, nil
}

// scanForTimestamp walks the batches of s from offset from and refines the
// first one whose max timestamp reaches ts to the record that does.
func (l *Log) scanForTimestamp(s *segment, from, start, highWatermark, ts int64) (offset, timestamp int64, found bool, err error) {
	position, h, ok, err := l.findBatch(s, from)
	if err != nil || !ok {
		return 0, 0, false, err
	}
	end := s.size.Load()
	var buf [batchHeaderSize]byte
	for position < end {
		if h, err = s.readHeader(position, end, &buf); err != nil {
			return 0, 0, false, err
		}
		if h.BaseOffset >= highWatermark {
			break
		}
		if h.MaxTimestamp >= ts && h.LastOffset() >= start {
			offset, timestamp, err := l.refineInBatch(s, position, h, start, ts)
			return offset, timestamp, err == nil, err
		}
		position += int64(h.Size())
	}
	return 0, 0, false, nil
}

func (l *Log) refineInBatch(s *segment, position int64, h BatchHeader, minOffset, ts int64) (int64, int64, error) {
	batch := make([]byte, h.Size())
	if _, err := s.log.ReadAt(batch, position); err != nil {
		return 0, 0, err
	}
	offset, timestamp := firstRecordAtOrAfter(batch, h, minOffset, ts)
	return offset, timestamp, nil
}

// MaxTimestamp returns the largest timestamp in the log and the offset of
// the first record that holds it (ListOffsets with timestamp -3); -1, -1
// for an empty log.
func (l *Log) MaxTimestamp() (offset, timestamp int64, err error) {
	l.segmentsMu.RLock()
	defer l.segmentsMu.RUnlock()
	start := l.logStartOffset.Load()
	interval := l.indexInterval()
	best, bestSegment := int64(noTimestamp), -1
	for i := l.segmentIndexLocked(start); i < len(l.segments); i++ {
		largest, _, err := l.segments[i].largestTimestamp(interval)
		if err != nil {
			return 0, 0, err
		}
		if largest > best {
			best, bestSegment = largest, i
		}
	}
	if bestSegment < 0 || start >= l.HighWatermark() {
		return -1, -1, nil
	}
	s := l.segments[bestSegment]
	s.mu.RLock()
	batchOffset := s.offsetOfMaxTimestamp
	s.mu.RUnlock()
	position, h, ok, err := l.findBatch(s, max(batchOffset, start))
	if err != nil || !ok {
		return -1, -1, err
	}
	return l.refineInBatch(s, position, h, start, best)
}
