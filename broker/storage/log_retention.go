package storage

import (
	"errors"
	"fmt"
)

// Maintain does the log's periodic work, as of the log's clock: an fsync
// when FlushPolicy.Interval has passed with data unflushed, then retention
// by time and by size, then, for a compacted log that is dirty enough, a
// clean in the background (log_compact.go). The broker calls it every few
// seconds for each log.
func (l *Log) Maintain() error {
	l.appendMu.Lock()
	now := l.clock.Now()
	flush := l.config.Flush.Interval > 0 && now.Sub(l.lastFlush) >= l.config.Flush.Interval &&
		l.syncedOffset.Load() < l.logEndOffset.Load()
	if flush {
		l.unflushedMessages = 0
		l.lastFlush = now
	}
	l.producers.expire(now.Add(-ProducerExpiry).UnixMilli())
	l.appendMu.Unlock()
	if flush {
		if err := l.syncTo(l.logEndOffset.Load()); err != nil {
			return err
		}
	}
	_, err := l.EnforceRetention()
	l.startCleaning()
	return err
}

// EnforceRetention deletes the oldest segments that are past the retention
// age (their newest record is older than RetentionAge) or that the size
// limit (RetentionBytes) no longer needs, and returns how many it deleted.
// The active segment is never deleted, and a log whose cleanup policy is
// compact alone keeps everything.
func (l *Log) EnforceRetention() (int, error) {
	l.cleaner.filesMu.Lock()
	defer l.cleaner.filesMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	if !l.config.Cleanup.Deletes() {
		return 0, nil
	}
	nowMillis := l.clock.Now().UnixMilli()
	segments := l.snapshotSegments()
	var total int64
	for _, s := range segments {
		total += s.size.Load()
	}
	deletable := 0
	for _, s := range segments[:len(segments)-1] {
		expired := false
		if age := l.config.RetentionAge; age >= 0 {
			largest, _, err := s.largestTimestamp(l.config.IndexIntervalBytes)
			if err != nil {
				return 0, err
			}
			expired = largest < nowMillis-age.Milliseconds()
		}
		oversized := l.config.RetentionBytes >= 0 && total-s.size.Load() >= l.config.RetentionBytes
		if !expired && !oversized {
			break
		}
		// Never past the high watermark: followers may still need it, and
		// a log start above it would pass it off as replicated.
		if next := segments[deletable+1].baseOffset; next > l.HighWatermark() {
			break
		}
		total -= s.size.Load()
		deletable++
	}
	if deletable == 0 {
		return 0, nil
	}
	return deletable, l.deleteOldestSegmentsLocked(deletable, "retention")
}

// DeleteRecords moves the log start offset up to offset (Kafka's
// DeleteRecords; -1 means the high watermark), makes it durable, and deletes
// the segments that then hold only records below it. It returns the new log
// start offset.
func (l *Log) DeleteRecords(offset int64) (int64, error) {
	l.cleaner.filesMu.Lock()
	defer l.cleaner.filesMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	highWatermark := l.HighWatermark()
	if offset == -1 {
		offset = highWatermark
	}
	if offset < 0 || offset > highWatermark {
		return 0, fmt.Errorf("%w: cannot delete records below %d: the high watermark is %d", ErrOffsetOutOfRange, offset, highWatermark)
	}
	return l.moveLogStartLocked(offset)
}

// FollowLogStart moves a follower's log start up to the leader's (its
// retention or DeleteRecords), as far as this log reaches.
func (l *Log) FollowLogStart(offset int64) (int64, error) {
	l.cleaner.filesMu.Lock()
	defer l.cleaner.filesMu.Unlock()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	return l.moveLogStartLocked(min(offset, l.logEndOffset.Load()))
}

func (l *Log) moveLogStartLocked(offset int64) (int64, error) {
	if offset <= l.logStartOffset.Load() {
		return l.logStartOffset.Load(), nil
	}
	if err := l.writeLogStartOffset(offset); err != nil {
		return 0, err
	}
	l.logStartOffset.Store(offset)
	if l.epochs.truncateFromStart(offset) {
		if err := l.writeLeaderEpochsLocked(); err != nil {
			return 0, err
		}
	}
	segments := l.snapshotSegments()
	deletable := 0
	for i := 0; i+1 < len(segments) && segments[i+1].baseOffset <= offset; i++ {
		deletable++
	}
	if deletable > 0 {
		if err := l.deleteOldestSegmentsLocked(deletable, "delete records"); err != nil {
			return 0, err
		}
	}
	return offset, nil
}

func (l *Log) snapshotSegments() []*segment {
	l.segmentsMu.RLock()
	defer l.segmentsMu.RUnlock()
	return append([]*segment(nil), l.segments...)
}

// deleteOldestSegmentsLocked drops the first n segments (never the active
// one) and advances the log start offset past them. Called under appendMu.
func (l *Log) deleteOldestSegmentsLocked(n int, reason string) error {
	l.segmentsMu.Lock()
	n = min(n, len(l.segments)-1)
	doomed := append([]*segment(nil), l.segments[:n]...)
	l.segments = append(l.segments[:0:0], l.segments[n:]...)
	newStart := l.segments[0].baseOffset
	l.segmentsMu.Unlock()

	var errs []error
	if newStart > l.logStartOffset.Load() {
		l.logStartOffset.Store(newStart)
		if l.epochs.truncateFromStart(newStart) {
			errs = append(errs, l.writeLeaderEpochsLocked())
		}
	}
	for _, s := range doomed {
		l.logger.Info("deleted segment", "reason", reason, "segment", s.name(), "bytes", s.size.Load())
		errs = append(errs, s.remove())
	}
	errs = append(errs, l.fsys.SyncDir(l.dir))
	return errors.Join(errs...)
}
