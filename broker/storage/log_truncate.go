package storage

import (
	"fmt"
	"path/filepath"
)

// TruncateTo removes every batch whose last offset is at or past offset,
// as a follower does when its log diverged from the leader's: it cuts
// back to where the leader's log and its own last agree, then fetches from
// there. Batches are whole, so the new log end is the base offset of the
// first batch removed (offset itself if none straddles it). The producer
// states, the indexes and the leader epochs follow; it is fsynced before
// it returns. offset below the log start empties the log down to its
// start. Only a follower truncates: nothing may read the range being cut.
func (l *Log) TruncateTo(offset int64) (int64, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if err := l.failed(); err != nil {
		return 0, err
	}
	if offset >= l.logEndOffset.Load() {
		return l.logEndOffset.Load(), nil
	}
	offset = max(offset, l.logStartOffset.Load())
	newEnd, err := l.truncateSegmentsLocked(offset)
	if err != nil {
		return 0, l.fail(err)
	}
	if err := l.truncateProducerSnapshotsLocked(newEnd); err != nil {
		return 0, l.fail(err)
	}
	if l.epochs.truncateFromEnd(newEnd) {
		if err := l.writeLeaderEpochsLocked(); err != nil {
			return 0, l.fail(err)
		}
	}
	l.logger.Info("truncated the log", "to_offset", offset, "log_end_offset", newEnd)
	return newEnd, nil
}

// truncateSegmentsLocked drops the segments wholly past offset and cuts
// the one holding it at the batch that reaches offset.
func (l *Log) truncateSegmentsLocked(offset int64) (int64, error) {
	l.segmentsMu.RLock()
	i := l.segmentIndexLocked(offset)
	segments := append([]*segment(nil), l.segments...)
	l.segmentsMu.RUnlock()

	s := segments[i]
	position, h, found, err := l.findBatch(s, offset)
	if err != nil {
		return 0, err
	}
	cutAt, newEnd := s.size.Load(), s.nextOffset.Load()
	if found {
		cutAt, newEnd = position, h.BaseOffset
	}
	l.segmentsMu.Lock()
	l.segments = segments[:i+1]
	l.segmentsMu.Unlock()
	for _, doomed := range segments[i+1:] {
		if err := doomed.remove(); err != nil {
			return 0, err
		}
	}
	if err := s.log.Truncate(cutAt); err != nil {
		return 0, err
	}
	if err := s.log.Sync(); err != nil {
		return 0, err
	}
	s.size.Store(cutAt)
	s.nextOffset.Store(newEnd)
	s.mu.Lock()
	err = s.rebuildIndexesLocked(l.config.IndexIntervalBytes)
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	s.bytesSinceIndexEntry, s.indexSyncedAtSize = 0, cutAt
	if cutAt == 0 {
		s.firstBatchTimestamp = noTimestamp
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return 0, err
	}
	l.logEndOffset.Store(newEnd)
	if l.syncedOffset.Load() > newEnd {
		l.syncedOffset.Store(newEnd)
	}
	return newEnd, nil
}

// truncateProducerSnapshotsLocked removes snapshots taken past the new end
// and rebuilds the producer states from what is left.
func (l *Log) truncateProducerSnapshotsLocked(newEnd int64) error {
	offsets, err := l.producerSnapshotOffsets()
	if err != nil {
		return err
	}
	for _, offset := range offsets {
		if offset > newEnd {
			if err := l.fsys.Remove(filepath.Join(l.dir, fmt.Sprintf("%020d%s", offset, producerSnapshotSuffix))); err != nil && !isNotExist(err) {
				return err
			}
		}
	}
	return l.loadProducerStates()
}
