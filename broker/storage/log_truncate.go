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
	l.cleaner.filesMu.Lock()
	defer l.cleaner.filesMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if err := l.failed(); err != nil {
		return 0, err
	}
	if end := l.logEndOffset.Load(); offset >= end {
		// Nothing to cut, but an epoch this broker led without writing in
		// it begins at the end: it is dropped, or the follower would ask
		// the leader about it again and again.
		if offset == end && l.epochs.truncateFromEnd(end) {
			if err := l.writeLeaderEpochsLocked(); err != nil {
				return 0, l.fail(err)
			}
		}
		return end, nil
	}
	var newEnd int64
	var err error
	if offset <= l.logStartOffset.Load() {
		newEnd, err = l.truncateFullyLocked()
	} else {
		newEnd, err = l.truncateSegmentsLocked(offset)
	}
	if err != nil {
		return 0, l.fail(err)
	}
	if err := l.truncateProducerSnapshotsLocked(newEnd); err != nil {
		return 0, l.fail(err)
	}
	if err := l.cleanerTruncatedLocked(newEnd); err != nil {
		return 0, l.fail(err)
	}
	if l.epochs.truncateFromEnd(newEnd) {
		if err := l.writeLeaderEpochsLocked(); err != nil {
			return 0, l.fail(err)
		}
	}
	// A saved high watermark past the cut would pass off what is written
	// there next as committed after a restart.
	if l.savedHighWatermark.Load() > newEnd {
		if err := l.writeHighWatermarkLocked(newEnd); err != nil {
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
	if newEnd <= l.logStartOffset.Load() {
		// The batch holding the log start goes: nothing readable is left.
		return l.truncateFullyLocked()
	}
	l.segmentsMu.Lock()
	l.segments = segments[:i+1]
	l.segmentsMu.Unlock()
	// Newest first: a crash midway leaves a shorter log, never a gap.
	for j := len(segments) - 1; j > i; j-- {
		if err := segments[j].remove(); err != nil {
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

// truncateFullyLocked empties the log and starts it again at its log
// start offset (Kafka's truncateFullyAndStartAt): every segment goes, newest
// first, and the epochs with them.
func (l *Log) truncateFullyLocked() (int64, error) {
	return l.truncateFullyAtLocked(l.logStartOffset.Load())
}

// truncateFullyAtLocked is truncateFullyLocked with the log starting
// again at start, recorded once the old segments are gone.
func (l *Log) truncateFullyAtLocked(start int64) (int64, error) {
	l.segmentsMu.RLock()
	segments := append([]*segment(nil), l.segments...)
	l.segmentsMu.RUnlock()
	// Removed before the fresh segment exists: a crash midway leaves a
	// shorter log or none (opened empty at the log start), never a gap.
	for j := len(segments) - 1; j >= 0; j-- {
		if err := segments[j].remove(); err != nil {
			return 0, err
		}
	}
	if start != l.logStartOffset.Load() {
		if err := l.writeLogStartOffset(start); err != nil {
			return 0, err
		}
		l.logStartOffset.Store(start)
	}
	fresh, err := createSegment(l.fsys, l.dir, start)
	if err != nil {
		return 0, err
	}
	fresh.created = l.clock.Now()
	l.segmentsMu.Lock()
	l.segments = []*segment{fresh}
	l.segmentsMu.Unlock()
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return 0, err
	}
	l.logEndOffset.Store(start)
	l.syncedOffset.Store(start)
	l.epochs = leaderEpochs{}
	return start, nil
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

// TruncateFullyAndStartAt empties the log and starts it again at offset:
// a follower that fell below the leader's log start (retention or
// DeleteRecords took what it still needed) or whose log lies past the
// leader's end after an unclean election.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	l.cleaner.filesMu.Lock()
	defer l.cleaner.filesMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.failed(); err != nil {
		return err
	}
	// A crash midway leaves the old log shortened or emptied at its old
	// start, never a gap.
	if _, err := l.truncateFullyAtLocked(offset); err != nil {
		return l.fail(err)
	}
	// Nothing of the old log is left, so neither is its producers' state:
	// a snapshot at or below the new start would bring it back.
	if err := l.truncateProducerSnapshotsLocked(-1); err != nil {
		return l.fail(err)
	}
	if err := l.cleanerTruncatedLocked(offset); err != nil {
		return l.fail(err)
	}
	if err := l.writeLeaderEpochsLocked(); err != nil {
		return l.fail(err)
	}
	l.logger.Info("emptied the log to start again at the leader's log start", "log_start_offset", offset)
	return nil
}
