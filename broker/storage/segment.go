package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	logFileSuffix       = ".log"
	indexFileSuffix     = ".index"
	timeIndexFileSuffix = ".timeindex"

	// noTimestamp marks a segment that holds no batch yet.
	noTimestamp = -1
)

// segment is one .log file with its two indexes.
//
// Fields are guarded as their comments say. Lock order: Log.appendMu, then
// Log.segmentsMu, then segment.mu.
type segment struct {
	fsys       FS
	dir        string
	baseOffset int64
	log        File
	index      File
	timeIndex  File

	// size is the byte length of the whole batches in log, and nextOffset
	// the offset after the last of them. Written under Log.appendMu (or
	// before the log is shared); read by anyone.
	size       atomic.Int64
	nextOffset atomic.Int64

	// Under Log.appendMu: the append side's bookkeeping.
	bytesSinceIndexEntry int
	firstBatchTimestamp  int64     // max timestamp of the first batch; drives roll by age
	created              time.Time // when the segment was created or opened
	indexSyncedAtSize    int64     // log size covered by the last index fsync

	mu sync.RWMutex // guards the fields below
	// indexLoaded says offsets and times hold the whole index. Older
	// segments load it on first use.
	indexLoaded          bool
	offsets              []indexEntry
	times                []timeIndexEntry
	offsetsWritten       int // entries already written to the .index file
	timesWritten         int // entries already written to the .timeindex file
	maxTimestamp         int64
	offsetOfMaxTimestamp int64
}

func segmentPath(dir string, baseOffset int64, suffix string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", baseOffset, suffix))
}

// parseSegmentName returns the base offset of a NNNNNNNNNNNNNNNNNNNN.log name.
func parseSegmentName(name string) (int64, bool) {
	digits, ok := strings.CutSuffix(name, logFileSuffix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	base, err := strconv.ParseInt(digits, 10, 64)
	return base, err == nil && base >= 0
}

// createSegment creates the files of a new, empty segment. The caller makes
// the new names durable with SyncDir.
func createSegment(fsys FS, dir string, baseOffset int64) (*segment, error) {
	s := &segment{fsys: fsys, dir: dir, baseOffset: baseOffset, indexLoaded: true,
		firstBatchTimestamp: noTimestamp, maxTimestamp: noTimestamp, offsetOfMaxTimestamp: -1}
	s.nextOffset.Store(baseOffset)
	files := []*File{&s.log, &s.index, &s.timeIndex}
	for i, suffix := range []string{logFileSuffix, indexFileSuffix, timeIndexFileSuffix} {
		f, err := fsys.OpenFile(segmentPath(dir, baseOffset, suffix), true)
		if err == nil {
			err = f.Truncate(0) // a leftover of a crash mid-roll
		}
		if err != nil {
			s.close()
			return nil, err
		}
		*files[i] = f
	}
	return s, nil
}

// openSegment opens an existing segment. Missing index files are created
// empty and rebuilt when needed. size and nextOffset are set by the caller.
func openSegment(fsys FS, dir string, baseOffset int64) (*segment, error) {
	s := &segment{fsys: fsys, dir: dir, baseOffset: baseOffset,
		firstBatchTimestamp: noTimestamp, maxTimestamp: noTimestamp, offsetOfMaxTimestamp: -1}
	var err error
	if s.log, err = fsys.OpenFile(segmentPath(dir, baseOffset, logFileSuffix), false); err != nil {
		return nil, err
	}
	if s.index, err = fsys.OpenFile(segmentPath(dir, baseOffset, indexFileSuffix), true); err != nil {
		s.close()
		return nil, err
	}
	if s.timeIndex, err = fsys.OpenFile(segmentPath(dir, baseOffset, timeIndexFileSuffix), true); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *segment) close() error {
	var errs []error
	for _, f := range []File{s.log, s.index, s.timeIndex} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	return errors.Join(errs...)
}

// remove closes and deletes the segment's files.
func (s *segment) remove() error {
	errs := []error{s.close()}
	for _, suffix := range []string{logFileSuffix, indexFileSuffix, timeIndexFileSuffix} {
		if err := s.fsys.Remove(segmentPath(s.dir, s.baseOffset, suffix)); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *segment) name() string { return segmentPath(s.dir, s.baseOffset, logFileSuffix) }

// readHeader reads the batch header at position. A header that does not fit
// in the first limit bytes of the file is reported as io.ErrUnexpectedEOF.
func (s *segment) readHeader(position, limit int64, buf *[batchHeaderSize]byte) (BatchHeader, error) {
	if position+batchHeaderSize > limit {
		return BatchHeader{}, io.ErrUnexpectedEOF
	}
	if _, err := s.log.ReadAt(buf[:], position); err != nil {
		if errors.Is(err, io.EOF) {
			return BatchHeader{}, io.ErrUnexpectedEOF
		}
		return BatchHeader{}, err
	}
	return parseBatchHeader(buf[:]), nil
}

// plausible reports whether h can be a stored batch at position: magic 2 and
// a length that ends within limit.
func (h BatchHeader) plausible(position, limit int64) bool {
	return h.Magic == 2 && h.Length >= batchHeaderSize-batchLogOverhead && position+int64(h.Size()) <= limit
}

// addBatch updates the indexes and timestamps for a batch written at
// position. Called under Log.appendMu (or before the log is shared).
func (s *segment) addBatch(h BatchHeader, position int64, indexInterval int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	relative := uint32(h.BaseOffset - s.baseOffset)
	if s.bytesSinceIndexEntry >= indexInterval {
		s.offsets = append(s.offsets, indexEntry{relativeOffset: relative, position: uint32(position)})
		s.bytesSinceIndexEntry = 0
		s.appendTimeEntryLocked()
	}
	s.bytesSinceIndexEntry += h.Size()
	if s.firstBatchTimestamp == noTimestamp {
		s.firstBatchTimestamp = h.MaxTimestamp
	}
	if h.MaxTimestamp > s.maxTimestamp {
		s.maxTimestamp = h.MaxTimestamp
		s.offsetOfMaxTimestamp = h.BaseOffset
	}
}

// appendTimeEntryLocked records the largest timestamp so far if it grew.
func (s *segment) appendTimeEntryLocked() {
	if s.maxTimestamp == noTimestamp {
		return
	}
	if n := len(s.times); n > 0 && s.times[n-1].timestamp >= s.maxTimestamp {
		return
	}
	s.times = append(s.times, timeIndexEntry{
		timestamp:      s.maxTimestamp,
		relativeOffset: uint32(s.offsetOfMaxTimestamp - s.baseOffset),
	})
}

// writeIndexes writes index entries not yet in the files. With final, it
// first records the segment's largest timestamp in the time index, then
// fsyncs both files. Called under Log.appendMu.
func (s *segment) writeIndexes(final bool) error {
	s.mu.Lock()
	if final {
		s.appendTimeEntryLocked()
	}
	offsetBytes := appendIndexEntries(nil, s.offsets[s.offsetsWritten:])
	timeBytes := appendTimeIndexEntries(nil, s.times[s.timesWritten:])
	offsetsAt, timesAt := int64(s.offsetsWritten)*indexEntrySize, int64(s.timesWritten)*timeIndexEntrySize
	s.offsetsWritten, s.timesWritten = len(s.offsets), len(s.times)
	s.mu.Unlock()

	if len(offsetBytes) > 0 {
		if _, err := s.index.WriteAt(offsetBytes, offsetsAt); err != nil {
			return err
		}
	}
	if len(timeBytes) > 0 {
		if _, err := s.timeIndex.WriteAt(timeBytes, timesAt); err != nil {
			return err
		}
	}
	if !final {
		return nil
	}
	if err := s.index.Sync(); err != nil {
		return err
	}
	if err := s.timeIndex.Sync(); err != nil {
		return err
	}
	s.indexSyncedAtSize = s.size.Load()
	return nil
}

// pendingIndexBytes is how much index data waits to be written.
func (s *segment) pendingIndexBytes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return (len(s.offsets)-s.offsetsWritten)*indexEntrySize + (len(s.times)-s.timesWritten)*timeIndexEntrySize
}

// loadIndexes makes sure the indexes of a segment that is no longer written
// are in memory. An index that is missing, damaged or does not reach the
// end of the log is rebuilt by scanning the segment's batch headers.
func (s *segment) loadIndexes(indexInterval int) error {
	s.mu.RLock()
	loaded := s.indexLoaded
	s.mu.RUnlock()
	if loaded {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.indexLoaded {
		return nil
	}
	size := s.size.Load()
	offsets, err := readIndexFile(s.index, indexEntrySize, func(b []byte) int {
		entries := decodeOffsetIndex(b, size)
		s.offsets = entries
		return len(entries) * indexEntrySize
	})
	if err != nil {
		return err
	}
	limit := s.nextOffset.Load() - s.baseOffset
	times, err := readIndexFile(s.timeIndex, timeIndexEntrySize, func(b []byte) int {
		entries := decodeTimeIndex(b, limit)
		s.times = entries
		return len(entries) * timeIndexEntrySize
	})
	if err != nil {
		return err
	}
	if !offsets.complete || !times.complete || !s.indexReachesEnd(size) {
		return s.rebuildIndexesLocked(indexInterval)
	}
	s.offsetsWritten, s.timesWritten = len(s.offsets), len(s.times)
	if n := len(s.times); n > 0 {
		s.maxTimestamp = s.times[n-1].timestamp
		s.offsetOfMaxTimestamp = s.baseOffset + int64(s.times[n-1].relativeOffset)
	}
	s.indexLoaded = true
	return nil
}

// indexReachesEnd checks that a closed segment's index is plausible at its
// far end: the batch after the last entry's position lies within the file.
// A time index without entries is damaged unless the segment is empty.
func (s *segment) indexReachesEnd(size int64) bool {
	if size > 0 && len(s.times) == 0 {
		return false
	}
	if n := len(s.offsets); n > 0 {
		var buf [batchHeaderSize]byte
		last := s.offsets[n-1]
		h, err := s.readHeader(int64(last.position), size, &buf)
		return err == nil && h.plausible(int64(last.position), size) && h.BaseOffset == s.baseOffset+int64(last.relativeOffset)
	}
	return true
}

type indexFileState struct{ complete bool }

// readIndexFile reads a whole index file and hands it to decode, which
// returns how many bytes were valid.
func readIndexFile(f File, entrySize int, decode func([]byte) int) (indexFileState, error) {
	size, err := f.Size()
	if err != nil {
		return indexFileState{}, err
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return indexFileState{}, err
	}
	valid := decode(buf)
	return indexFileState{complete: valid == len(buf)}, nil
}

// rebuildIndexesLocked scans every batch header of the segment, rebuilds
// both indexes, rewrites and fsyncs their files. Used for older segments
// whose index is missing or damaged. Called with s.mu held.
func (s *segment) rebuildIndexesLocked(indexInterval int) error {
	size := s.size.Load()
	s.offsets, s.times = s.offsets[:0], s.times[:0]
	s.maxTimestamp, s.offsetOfMaxTimestamp = noTimestamp, -1
	var buf [batchHeaderSize]byte
	bytesSinceIndexEntry := 0
	for position := int64(0); position < size; {
		h, err := s.readHeader(position, size, &buf)
		if err != nil {
			return fmt.Errorf("rebuilding the index of %s: %w", s.name(), err)
		}
		if !h.plausible(position, size) {
			return &CorruptionError{Segment: s.name(), Position: position, Offset: h.BaseOffset, Reason: "batch header damaged while rebuilding the index"}
		}
		if bytesSinceIndexEntry >= indexInterval {
			s.offsets = append(s.offsets, indexEntry{relativeOffset: uint32(h.BaseOffset - s.baseOffset), position: uint32(position)})
			bytesSinceIndexEntry = 0
			s.appendTimeEntryLocked()
		}
		bytesSinceIndexEntry += h.Size()
		if h.MaxTimestamp > s.maxTimestamp {
			s.maxTimestamp, s.offsetOfMaxTimestamp = h.MaxTimestamp, h.BaseOffset
		}
		position += int64(h.Size())
	}
	s.appendTimeEntryLocked()
	if err := rewriteFile(s.index, appendIndexEntries(nil, s.offsets)); err != nil {
		return err
	}
	if err := rewriteFile(s.timeIndex, appendTimeIndexEntries(nil, s.times)); err != nil {
		return err
	}
	s.offsetsWritten, s.timesWritten = len(s.offsets), len(s.times)
	s.indexLoaded = true
	return nil
}

// rewriteFile replaces a file's contents in place and fsyncs it. Only for
// index files, which can be rebuilt if this is torn by a crash.
func rewriteFile(f File, data []byte) error {
	if err := f.Truncate(int64(len(data))); err != nil {
		return err
	}
	if len(data) > 0 {
		if _, err := f.WriteAt(data, 0); err != nil {
			return err
		}
	}
	return f.Sync()
}

// readLastTimeIndexEntry reads the largest timestamp of a closed segment
// from the end of its time index without loading the whole index. It
// reports false when the time index is empty or damaged; loadIndexes then
// rebuilds it.
func (s *segment) readLastTimeIndexEntry() (timeIndexEntry, bool) {
	size, err := s.timeIndex.Size()
	if err != nil || size == 0 || size%timeIndexEntrySize != 0 {
		return timeIndexEntry{}, false
	}
	var buf [timeIndexEntrySize]byte
	if _, err := s.timeIndex.ReadAt(buf[:], size-timeIndexEntrySize); err != nil {
		return timeIndexEntry{}, false
	}
	e := timeIndexEntry{timestamp: int64(binary.BigEndian.Uint64(buf[:])), relativeOffset: binary.BigEndian.Uint32(buf[8:])}
	if int64(e.relativeOffset) >= s.nextOffset.Load()-s.baseOffset {
		return timeIndexEntry{}, false
	}
	return e, true
}

// largestTimestamp returns the segment's largest timestamp and the base
// offset of the batch holding it, loading the indexes if needed.
func (s *segment) largestTimestamp(indexInterval int) (timestamp, offset int64, err error) {
	s.mu.RLock()
	timestamp, offset, loaded := s.maxTimestamp, s.offsetOfMaxTimestamp, s.indexLoaded
	s.mu.RUnlock()
	if loaded || timestamp != noTimestamp {
		return timestamp, offset, nil
	}
	if err := s.loadIndexes(indexInterval); err != nil {
		return 0, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.maxTimestamp, s.offsetOfMaxTimestamp, nil
}
