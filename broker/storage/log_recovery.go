package storage

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// crcChunkSize bounds the buffer recovery reads batches through, whatever
// length a damaged header claims.
const crcChunkSize = 256 << 10

// recoverActive loads the active segment: its index entries, and the
// batches after the last of them. After a clean shutdown those batches are
// only walked; otherwise each is checked (see the package doc) and a torn
// tail is cut off.
func (l *Log) recoverActive(s *segment, fileSize int64, clean bool) error {
	scan, err := l.loadActiveIndexes(s, fileSize)
	if err != nil {
		return err
	}
	end, nextOffset, err := l.scanTail(s, scan, fileSize, !clean)
	if err != nil {
		return err
	}
	if end < fileSize {
		if clean {
			l.logger.Warn("log was marked clean but its tail does not parse; recovering it", "segment", s.name(), "byte", end)
			return l.recoverActive(s, fileSize, false)
		}
		l.logger.Warn("cut torn tail after an unclean stop", "segment", s.name(), "bytes_cut", fileSize-end, "at_byte", end, "next_offset", nextOffset)
		if err := s.log.Truncate(end); err != nil {
			return err
		}
	}
	s.size.Store(end)
	s.nextOffset.Store(nextOffset)
	s.indexLoaded = true
	l.logEndOffset.Store(nextOffset)

	// The index files keep their valid prefix; the entries the scan made
	// are written after it.
	if err := s.index.Truncate(int64(s.offsetsWritten) * indexEntrySize); err != nil {
		return err
	}
	if err := s.timeIndex.Truncate(int64(s.timesWritten) * timeIndexEntrySize); err != nil {
		return err
	}
	if clean {
		return s.writeIndexes(false)
	}
	// What recovery kept is made durable before anything is acknowledged
	// on top of it.
	if err := s.log.Sync(); err != nil {
		return err
	}
	return s.writeIndexes(true)
}

// scanStart is where the tail scan begins: the batch of the last index
// entry that points at an intact batch header.
type scanStart struct {
	position int64
	offset   int64
}

// loadActiveIndexes reads the active segment's indexes and keeps the entries
// that can be trusted; it returns where the tail scan starts.
func (l *Log) loadActiveIndexes(s *segment, fileSize int64) (scanStart, error) {
	s.offsets, s.times = nil, nil
	if _, err := readIndexFile(s.index, indexEntrySize, func(b []byte) int {
		s.offsets = decodeOffsetIndex(b, fileSize)
		return len(s.offsets) * indexEntrySize
	}); err != nil {
		return scanStart{}, err
	}
	var buf [batchHeaderSize]byte
	for n := len(s.offsets); n > 0; n-- {
		e := s.offsets[n-1]
		h, err := s.readHeader(int64(e.position), fileSize, &buf)
		if err == nil && h.plausible(int64(e.position), fileSize) && h.BaseOffset == s.baseOffset+int64(e.relativeOffset) {
			break
		}
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return scanStart{}, err
		}
		s.offsets = s.offsets[:n-1]
	}
	start := scanStart{offset: s.baseOffset}
	if n := len(s.offsets); n > 0 {
		start = scanStart{position: int64(s.offsets[n-1].position), offset: s.baseOffset + int64(s.offsets[n-1].relativeOffset)}
	}
	// Time entries for batches before the scan start stay; the scan
	// redoes the rest.
	if _, err := readIndexFile(s.timeIndex, timeIndexEntrySize, func(b []byte) int {
		s.times = decodeTimeIndex(b, start.offset-s.baseOffset)
		return len(s.times) * timeIndexEntrySize
	}); err != nil {
		return scanStart{}, err
	}
	s.offsetsWritten, s.timesWritten = len(s.offsets), len(s.times)
	s.maxTimestamp, s.offsetOfMaxTimestamp = noTimestamp, -1
	if n := len(s.times); n > 0 {
		s.maxTimestamp = s.times[n-1].timestamp
		s.offsetOfMaxTimestamp = s.baseOffset + int64(s.times[n-1].relativeOffset)
	}
	s.firstBatchTimestamp = noTimestamp
	if h, err := s.readHeader(0, fileSize, &buf); err == nil && h.plausible(0, fileSize) && h.BaseOffset == s.baseOffset {
		s.firstBatchTimestamp = h.MaxTimestamp
	}
	s.bytesSinceIndexEntry = 0
	return start, nil
}

// scanTail walks the batches from start and returns the end of the last
// good one and the offset after it. With verify, every batch's CRC-32C is
// checked, and a damaged batch followed by an intact one is a
// *CorruptionError.
func (l *Log) scanTail(s *segment, start scanStart, fileSize int64, verify bool) (end, nextOffset int64, err error) {
	var header [batchHeaderSize]byte
	chunk := make([]byte, crcChunkSize)
	position, expected := start.position, start.offset
	for position < fileSize {
		h, err := s.readHeader(position, fileSize, &header)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		// Offsets in a log written by appends are dense; a compacted
		// follower's may have gaps where the leader's cleaner removed
		// batches (log_compact.go).
		if !h.plausible(position, fileSize) || !l.offsetFollows(h.BaseOffset, expected) || h.LastOffsetDelta < 0 {
			break
		}
		if verify {
			ok, err := batchCRCMatches(s.log, position, h, chunk)
			if err != nil {
				return 0, 0, err
			}
			if !ok {
				if intact, err := l.intactBatchAt(s, position+int64(h.Size()), h.LastOffset()+1, fileSize, chunk); err != nil {
					return 0, 0, err
				} else if intact {
					return 0, 0, &CorruptionError{Segment: s.name(), Position: position, Offset: h.BaseOffset, Reason: "CRC-32C mismatch"}
				}
				break
			}
		}
		s.addBatch(h, position, l.config.IndexIntervalBytes)
		position += int64(h.Size())
		expected = h.LastOffset() + 1
	}
	return position, expected, nil
}

// intactBatchAt reports whether a whole batch with the given base offset and
// a matching CRC-32C starts at position.
func (l *Log) intactBatchAt(s *segment, position, baseOffset, fileSize int64, chunk []byte) (bool, error) {
	var header [batchHeaderSize]byte
	h, err := s.readHeader(position, fileSize, &header)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !h.plausible(position, fileSize) || !l.offsetFollows(h.BaseOffset, baseOffset) {
		return false, nil
	}
	return batchCRCMatches(s.log, position, h, chunk)
}

// batchCRCMatches computes the CRC-32C of the batch at position through a
// fixed-size buffer.
func batchCRCMatches(f File, position int64, h BatchHeader, chunk []byte) (bool, error) {
	crc := uint32(0)
	from, to := position+batchAttributesAt, position+int64(h.Size())
	for from < to {
		n := min(int64(len(chunk)), to-from)
		if _, err := f.ReadAt(chunk[:n], from); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, fmt.Errorf("reading batch at byte %d: %w", position, err)
		}
		crc = crc32.Update(crc, crc32c, chunk[:n])
		from += n
	}
	return crc == h.CRC, nil
}
