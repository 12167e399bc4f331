package storage

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// AppendOptions are the caller's choices for one append.
type AppendOptions struct {
	// LeaderEpoch is written into every batch's partition leader epoch.
	LeaderEpoch int32
	// Durable asks that Append return only after the batches are fsynced
	// (acks=all under FlushOnDurable).
	Durable bool
	// LogAppendTime stamps the batches with the broker's clock
	// (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
	// DeferDurability: with Durable, return once written instead of once
	// durable; the caller waits with WaitDurable(result.DurableAt). A
	// connection can then append its next requests while the fsync runs.
	DeferDurability bool
	// FromLeader: the batches come from the partition's leader with their
	// offsets and leader epochs set (a follower's fetch); they are written
	// as they are, the first must start at the log end, and the producer
	// states take them without checks. LeaderEpoch and LogAppendTime are
	// ignored; each batch's epoch enters the epoch cache.
	FromLeader bool
}

// AppendResult tells where the batches went.
type AppendResult struct {
	BaseOffset int64
	LastOffset int64
	// Duplicate: an idempotent producer sent a batch the log already has;
	// the offsets are the original ones and nothing was appended.
	Duplicate bool
	// DurableAt is the offset WaitDurable must reach before the append
	// counts as durable; 0 when the append needs no fsync (not Durable, or
	// the flush policy acknowledges without one).
	DurableAt      int64
	LogAppendTime  int64 // milliseconds; -1 unless AppendOptions.LogAppendTime
	LogStartOffset int64
}

// Append validates records, one or more magic-v2 record batches as a
// producer sent them, assigns their offsets by rewriting them in place, and
// writes them at the end of the log with one write. The caller hands over
// records: the log does not keep it, but it is modified.
//
// A batch that fails validation is a *BatchError (wrapping
// ErrCorruptMessage, ErrInvalidRecord or ErrUnsupportedCompression) and
// nothing is appended.
func (l *Log) Append(records []byte, opts AppendOptions) (AppendResult, error) {
	recordCount, err := l.validateAppend(records, opts)
	if err != nil {
		return AppendResult{}, err
	}
	if len(records) > maxSegmentBytes {
		return AppendResult{}, &BatchError{Reason: fmt.Sprintf("%d bytes of batches exceed the largest segment", len(records)), kind: ErrInvalidRecord}
	}

	if opts.Durable {
		l.durableWrites.begin()
	}
	l.appendMu.Lock()
	result, mustSync, err := l.appendLocked(records, recordCount, opts)
	l.appendMu.Unlock()
	if opts.Durable {
		l.durableWrites.finish()
	}
	if err != nil {
		return AppendResult{}, err
	}
	l.notifyAppended()

	if mustSync {
		result.DurableAt = result.LastOffset + 1
		if !opts.DeferDurability {
			if err := l.syncTo(result.DurableAt); err != nil {
				return AppendResult{}, err
			}
		}
	}
	return result, nil
}

// WaitDurable returns once every offset below offset is fsynced, sharing
// fsyncs with other waiters (group commit). An error means the data may
// not be durable; the log is then offline.
func (l *Log) WaitDurable(offset int64) error { return l.syncTo(offset) }

// appendLocked writes the batches and reports whether the caller must wait
// for an fsync before answering.
func (l *Log) appendLocked(records []byte, recordCount int, opts AppendOptions) (AppendResult, bool, error) {
	if l.closed {
		return AppendResult{}, false, ErrClosed
	}
	if err := l.failed(); err != nil {
		return AppendResult{}, false, err
	}
	now := l.clock.Now()
	if opts.FromLeader {
		return l.appendFromLeaderLocked(records, recordCount, opts.Durable, now)
	}
	if duplicate, err := l.checkProducersLocked(records); err != nil || duplicate != nil {
		if err != nil {
			return AppendResult{}, false, err
		}
		result := AppendResult{BaseOffset: duplicate.FirstOffset, LastOffset: duplicate.LastOffset, Duplicate: true,
			LogAppendTime: -1, LogStartOffset: l.logStartOffset.Load()}
		// The original may not be durable yet: a retried acks=all waits too.
		return result, opts.Durable && l.config.Flush.Mode == FlushOnDurable, nil
	}
	baseOffset := l.logEndOffset.Load()
	lastOffset := baseOffset + int64(recordCount) - 1
	// A new epoch is on disk before the first batch that carries it. A
	// batch is never stamped older than the newest epoch the log knows.
	epoch := opts.LeaderEpoch
	if last, ok := l.epochs.latest(); ok {
		epoch = max(epoch, last.epoch)
	}
	if err := l.assignEpochLocked(epoch, baseOffset); err != nil {
		return AppendResult{}, false, l.fail(err)
	}

	incomingTimestamp := now.UnixMilli()
	if !opts.LogAppendTime {
		incomingTimestamp = maxBatchTimestamp(records)
	}
	active := l.activeSegment()
	if l.shouldRollLocked(active, int64(len(records)), lastOffset, incomingTimestamp, now) {
		var err error
		if active, err = l.rollLocked(baseOffset); err != nil {
			return AppendResult{}, false, l.fail(err)
		}
	}

	result := AppendResult{BaseOffset: baseOffset, LastOffset: lastOffset, LogAppendTime: -1}
	if opts.LogAppendTime {
		result.LogAppendTime = now.UnixMilli()
	}
	offset := baseOffset
	stamp := func(batch []byte, h *BatchHeader) {
		setBaseOffset(batch, offset)
		setLeaderEpoch(batch, epoch)
		if opts.LogAppendTime {
			setLogAppendTime(batch, h.Size(), result.LogAppendTime)
			h.MaxTimestamp = result.LogAppendTime
		}
		h.BaseOffset = offset
		offset = h.LastOffset() + 1
	}
	if err := l.writeBatchesLocked(active, records, now, stamp); err != nil {
		return AppendResult{}, false, err
	}
	result.LogStartOffset = l.logStartOffset.Load()
	return result, l.countUnflushedLocked(recordCount, opts.Durable, now), nil
}

// writeBatchesLocked writes records at the end of active with one write,
// stamping each batch first (nil: written as they are), then indexes them
// and records their producers' state.
func (l *Log) writeBatchesLocked(active *segment, records []byte, now time.Time, stamp func(batch []byte, h *BatchHeader)) error {
	position := active.size.Load()
	var idempotent []BatchHeader // producer state to record once written
	var end int64
	for at := 0; at < len(records); {
		batch := records[at:]
		h := parseBatchHeader(batch)
		if stamp != nil {
			stamp(batch, &h)
		}
		active.addBatch(h, position+int64(at), l.config.IndexIntervalBytes)
		if h.ProducerID >= 0 {
			idempotent = append(idempotent, h)
		}
		end = h.LastOffset() + 1
		at += h.Size()
	}
	if _, err := active.log.WriteAt(records, position); err != nil {
		return l.fail(err)
	}
	for _, h := range idempotent {
		l.producers.update(h, now.UnixMilli())
	}
	active.size.Store(position + int64(len(records)))
	active.nextOffset.Store(end)
	l.logEndOffset.Store(end)
	if err := l.maybeWriteIndexesLocked(active); err != nil {
		return l.fail(err)
	}
	return nil
}

// countUnflushedLocked counts appended records towards flush.messages and
// reports whether the append must wait for an fsync.
func (l *Log) countUnflushedLocked(recordCount int, durable bool, now time.Time) bool {
	l.unflushedMessages += int64(recordCount)
	mustSync := durable && l.config.Flush.Mode == FlushOnDurable
	if l.config.Flush.Messages > 0 && l.unflushedMessages >= l.config.Flush.Messages {
		mustSync = true
		l.unflushedMessages = 0
		l.lastFlush = now
	}
	return mustSync
}

// appendFromLeaderLocked writes a follower's fetched batches as the leader
// wrote them. Each batch's leader epoch newer than the cache's latest
// starts there; the cache is on disk before the batches.
func (l *Log) appendFromLeaderLocked(records []byte, recordCount int, durable bool, now time.Time) (AppendResult, bool, error) {
	first := parseBatchHeader(records)
	end := l.logEndOffset.Load()
	// A compacted leader's batches may leave gaps (its cleaner removed
	// what lay between), never overlap.
	if first.BaseOffset < end {
		return AppendResult{}, false, fmt.Errorf("%w: the leader's batches start at offset %d, but this log ends at %d", ErrOffsetOutOfRange, first.BaseOffset, end)
	}
	var last BatchHeader
	for at := 0; at < len(records); at += last.Size() {
		last = parseBatchHeader(records[at:])
		if last.BaseOffset < end {
			return AppendResult{}, false, &BatchError{Reason: fmt.Sprintf("the leader's batch at offset %d follows one that ends at %d", last.BaseOffset, end), kind: ErrCorruptMessage}
		}
		end = last.LastOffset() + 1
	}
	for at := 0; at < len(records); {
		h := parseBatchHeader(records[at:])
		if latest, known := l.epochs.latest(); !known || h.PartitionLeaderEpoch > latest.epoch {
			if err := l.assignEpochLocked(h.PartitionLeaderEpoch, h.BaseOffset); err != nil {
				return AppendResult{}, false, l.fail(err)
			}
		}
		at += h.Size()
	}
	active := l.activeSegment()
	if l.shouldRollLocked(active, int64(len(records)), last.LastOffset(), last.MaxTimestamp, now) {
		var err error
		if active, err = l.rollLocked(first.BaseOffset); err != nil {
			return AppendResult{}, false, l.fail(err)
		}
	}
	if err := l.writeBatchesLocked(active, records, now, nil); err != nil {
		return AppendResult{}, false, err
	}
	result := AppendResult{BaseOffset: first.BaseOffset, LastOffset: end - 1, LogAppendTime: -1, LogStartOffset: l.logStartOffset.Load()}
	return result, l.countUnflushedLocked(recordCount, durable, now), nil
}

// maybeWriteIndexesLocked writes pending index entries once there is a
// block of them, and fsyncs the index files every indexSyncInterval bytes of
// log, which bounds the scan after an unclean stop.
func (l *Log) maybeWriteIndexesLocked(active *segment) error {
	if active.size.Load()-active.indexSyncedAtSize >= indexSyncInterval {
		if err := active.writeIndexes(true); err != nil {
			return err
		}
		return l.writeProducerSnapshotLocked()
	}
	if active.pendingIndexBytes() >= indexWriteBatch {
		return active.writeIndexes(false)
	}
	return nil
}

// shouldRollLocked: the active segment is full, old, or its 32-bit relative
// offsets would overflow. An empty segment never rolls.
//
// Age is measured as Kafka measures it: from the segment's first batch
// timestamp to the timestamp of the batches arriving, so producers whose
// clocks lag do not roll a segment per append; a segment without a first
// timestamp ages from when it was created or opened.
func (l *Log) shouldRollLocked(active *segment, size, lastOffset, incomingTimestamp int64, now time.Time) bool {
	if active.size.Load() == 0 {
		return false
	}
	switch {
	case active.size.Load()+size > l.config.SegmentBytes:
		return true
	case lastOffset-active.baseOffset > math.MaxUint32:
		return true
	case active.firstBatchTimestamp >= 0:
		return incomingTimestamp-active.firstBatchTimestamp > l.config.SegmentAge.Milliseconds()
	default:
		return now.Sub(active.created) > l.config.SegmentAge
	}
}

// checkProducersLocked applies the idempotent-producer rules to each batch
// and returns the batch already in the log when records is a duplicate.
// A duplicate must come alone, as producers send them.
func (l *Log) checkProducersLocked(records []byte) (*producerBatch, error) {
	var lastInThisAppend map[int64]int32
	for at := 0; at < len(records); {
		h := parseBatchHeader(records[at:])
		at += h.Size()
		if h.ProducerID < 0 {
			continue
		}
		var previous *int32
		if sequence, ok := lastInThisAppend[h.ProducerID]; ok {
			previous = &sequence
		}
		duplicate, err := l.producers.check(h, previous)
		if err != nil {
			return nil, err
		}
		if duplicate != nil {
			if at != h.Size() || at != len(records) {
				return nil, fmt.Errorf("%w: producer %d resent sequence %d together with other batches", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence)
			}
			return duplicate, nil
		}
		if lastInThisAppend == nil {
			lastInThisAppend = make(map[int64]int32)
		}
		lastInThisAppend[h.ProducerID] = lastSequence(h)
	}
	return nil, nil
}

// maxBatchTimestamp is the largest max timestamp of validated batches.
func maxBatchTimestamp(records []byte) int64 {
	largest := int64(noTimestamp)
	for at := 0; at < len(records); {
		h := parseBatchHeader(records[at:])
		largest = max(largest, h.MaxTimestamp)
		at += h.Size()
	}
	return largest
}

// rollLocked closes the active segment, syncing it and its indexes, and
// starts a new one at baseOffset.
func (l *Log) rollLocked(baseOffset int64) (*segment, error) {
	old := l.activeSegment()
	if err := old.writeIndexes(true); err != nil {
		return nil, err
	}
	if err := old.log.Sync(); err != nil {
		return nil, err
	}
	l.advanceSyncedOffset(old.nextOffset.Load())
	next, err := createSegment(l.fsys, l.dir, baseOffset)
	if err == nil {
		next.created = l.clock.Now()
	}
	if err != nil {
		return nil, err
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return nil, errors.Join(err, next.close())
	}
	l.segmentsMu.Lock()
	l.segments = append(l.segments, next)
	l.segmentsMu.Unlock()
	if err := l.writeProducerSnapshotLocked(); err != nil {
		return nil, err
	}
	l.logger.Debug("rolled segment", "closed", old.name(), "bytes", old.size.Load(), "new_base_offset", baseOffset)
	return next, nil
}
