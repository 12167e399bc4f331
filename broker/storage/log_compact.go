package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Log compaction, as Kafka's log cleaner does it (see the package doc for
// the steps and the files): a compacted log keeps, below its cleaning
// point, only the last record of each key; offsets never change, so
// readers see gaps. This file decides when and how far to clean; cleaner.go
// does the cleaning.

// cleanerCheckpointFile records how far the last clean got (Kafka's
// cleaner-offset-checkpoint, one per log here):
//
//	| first dirty offset int64 | log time int64 |
//
// Every batch below the first dirty offset has been cleaned. The log time
// is the largest timestamp the log held below it, the clock tombstones
// expire by. A missing file means nothing was cleaned yet.
const cleanerCheckpointFile = "cleaner-checkpoint"

// cleanerSlot lets one log of the process clean at a time, as Kafka's one
// cleaner thread (log.cleaner.threads=1) does, so the key maps of all logs
// together stay within one CleanerBufferBytes.
var cleanerSlot = make(chan struct{}, 1)

var (
	// errCleanerStopped: the log is closing; the clean stopped where it was.
	errCleanerStopped = errors.New("the cleaner stopped: the log is closing")
	// errCleanAbandoned: the segments being cleaned changed under the
	// cleaner (retention, DeleteRecords or truncation); it starts again at
	// the next maintenance.
	errCleanAbandoned = errors.New("the log changed under the cleaner")
)

type cleanerCheckpoint struct {
	firstDirty int64
	logTime    int64
}

// cleanerState is a Log's cleaner bookkeeping.
type cleanerState struct {
	// compacted mirrors config.Cleanup.Compacts() for Append, which reads
	// it without appendMu.
	compacted atomic.Bool
	// running: a background clean started by Maintain is under way.
	running atomic.Bool
	// stopping is set by Close; a clean checks it between batches.
	stopping atomic.Bool

	mu      sync.Mutex // guards stopped and the calls to wg.Add
	stopped bool
	stop    chan struct{} // closed by Close
	wg      sync.WaitGroup

	// filesMu is held by whatever removes or rewrites the files of closed
	// segments: the cleaner's swap, retention, DeleteRecords and
	// truncation. It is taken before appendMu, so the cleaner can rename
	// and fsync without holding up appends.
	filesMu sync.Mutex

	// Under Log.appendMu.
	checkpoint cleanerCheckpoint
	// generation counts truncations: a clean planned before one must not
	// swap in what it cleaned, since the records that decided it may be gone.
	generation int64
	// failure is why the last clean failed; a log that keeps failing the
	// same way is reported once.
	failure string

	// Totals since the log opened, for metrics and benchmarks.
	passes, bytesRead, bytesWritten atomic.Int64
}

// CleanerStats are a log's cleaner totals since it opened.
type CleanerStats struct {
	Passes                  int64 // cleans that got anywhere
	BytesRead, BytesWritten int64 // segment bytes the cleaner read and wrote
}

// CleanerStats returns the cleaner's totals since the log opened.
func (l *Log) CleanerStats() CleanerStats {
	return CleanerStats{Passes: l.cleaner.passes.Load(), BytesRead: l.cleaner.bytesRead.Load(), BytesWritten: l.cleaner.bytesWritten.Load()}
}

// enter registers a clean; false once the log is closing.
func (c *cleanerState) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	if c.stop == nil {
		c.stop = make(chan struct{})
	}
	c.wg.Add(1)
	return true
}

func (c *cleanerState) exit() { c.wg.Done() }

// shutdown stops any clean and waits for it. Close calls it before it
// takes appendMu, which a clean needs to finish.
func (c *cleanerState) shutdown() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		c.stopping.Store(true)
		if c.stop == nil {
			c.stop = make(chan struct{})
		}
		close(c.stop)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// CleanedRange is a run of segments the cleaner replaced by one: every
// offset from Base up to End lies in the new segment.
type CleanedRange struct {
	Base, End int64
}

// CleanResult tells what one clean did.
type CleanResult struct {
	// FirstDirty is where the records not cleaned before began; End is the
	// cleaning point reached: below it, only the last record of each key
	// is left (and tombstones not yet expired). End == FirstDirty: there was
	// nothing to clean.
	FirstDirty, End int64
	// Replaced lists the segments swapped for cleaned ones.
	Replaced []CleanedRange
	// BytesRead and BytesWritten count segment bytes.
	BytesRead, BytesWritten int64
	// RecordsRead and RecordsKept count the records of the batches the
	// cleaner looked into.
	RecordsRead, RecordsKept int64
}

// Clean runs one clean of a compacted log now, whatever its dirty ratio:
// it cleans the closed segments below the high watermark (and, with
// MinCompactionLag, older than it) from the last cleaning point on, as far
// as its key map reaches. Maintain cleans in the background once the dirty
// ratio or MaxCompactionLag asks for it. A log that is not compacted is
// left alone.
func (l *Log) Clean() (CleanResult, error) {
	if !l.cleaner.enter() {
		return CleanResult{}, ErrClosed
	}
	defer l.cleaner.exit()
	result, err := l.cleanOnce(true)
	if errors.Is(err, errCleanAbandoned) {
		return result, nil
	}
	if errors.Is(err, errCleanerStopped) {
		return result, ErrClosed
	}
	return result, err
}

// cleanOnce waits for the process's cleaner slot, plans, and cleans if
// force or the plan is due.
func (l *Log) cleanOnce(force bool) (CleanResult, error) {
	select {
	case cleanerSlot <- struct{}{}:
	case <-l.cleaner.stop:
		return CleanResult{}, errCleanerStopped
	}
	defer func() { <-cleanerSlot }()
	plan, err := l.planClean()
	if err != nil {
		return CleanResult{}, err
	}
	if !plan.compact || plan.limit <= plan.firstDirty || (!force && !plan.due()) {
		return CleanResult{FirstDirty: plan.firstDirty, End: plan.firstDirty}, nil
	}
	return l.clean(plan)
}

// CleanerCheckpoint returns the first offset not cleaned yet (0 before the
// first clean): the point the next clean starts from.
func (l *Log) CleanerCheckpoint() int64 {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.cleaner.checkpoint.firstDirty
}

// startCleaning starts a background clean when the log is compacted, none
// runs and the dirty ratio or the max compaction lag asks for one. The
// clean goes on, pass after pass, while they keep asking.
func (l *Log) startCleaning() {
	if !l.cleaner.compacted.Load() || !l.cleaner.running.CompareAndSwap(false, true) {
		return
	}
	if !l.cleaner.enter() {
		l.cleaner.running.Store(false)
		return
	}
	go func() {
		defer l.cleaner.exit()
		defer l.cleaner.running.Store(false)
		for {
			result, err := l.cleanOnce(false)
			switch {
			case errors.Is(err, errCleanerStopped), errors.Is(err, errCleanAbandoned), errors.Is(err, ErrClosed):
				return
			case err != nil:
				l.reportCleanFailure(err)
				return
			case result.End <= result.FirstDirty:
				return // nothing more to do until the log grows
			}
		}
	}()
}

func (l *Log) reportCleanFailure(err error) {
	l.appendMu.Lock()
	repeated := l.cleaner.failure == err.Error()
	l.cleaner.failure = err.Error()
	l.appendMu.Unlock()
	if !repeated {
		l.logger.Error("log compaction failed; it is tried again at every maintenance, the log itself is unaffected", "err", err)
	}
}

// cleanPlan is what a clean starts from, taken under appendMu.
type cleanPlan struct {
	compact    bool
	config     Config
	segments   []*segment // the active one last
	checkpoint cleanerCheckpoint
	generation int64
	nowMillis  int64
	// firstDirty is where cleaning resumes; limit is the base offset of the
	// first segment that may not be cleaned yet (the active one, the one
	// holding the high watermark, or the first inside MinCompactionLag).
	firstDirty, limit int64
	// cleanBytes and dirtyBytes are the sizes of the segments below and
	// from firstDirty's segment up to limit.
	cleanBytes, dirtyBytes int64
	// overdue: the oldest dirty batch is older than MaxCompactionLag.
	overdue bool
}

// due reports whether Maintain should clean: some dirty bytes, and more of
// them than MinCleanableDirtyRatio of the log or past MaxCompactionLag.
func (p cleanPlan) due() bool {
	if p.dirtyBytes == 0 || p.limit <= p.firstDirty {
		return false
	}
	ratio := float64(p.dirtyBytes) / float64(p.cleanBytes+p.dirtyBytes)
	return ratio > p.config.MinCleanableDirtyRatio || p.overdue
}

// planClean finds the range a clean may cover now (Kafka's
// LogCleanerManager.cleanableOffsets).
func (l *Log) planClean() (cleanPlan, error) {
	l.appendMu.Lock()
	if l.closed {
		l.appendMu.Unlock()
		return cleanPlan{}, ErrClosed
	}
	p := cleanPlan{
		compact:    l.config.Cleanup.Compacts(),
		config:     l.config,
		segments:   l.snapshotSegments(),
		checkpoint: l.cleaner.checkpoint,
		generation: l.cleaner.generation,
		nowMillis:  l.clock.Now().UnixMilli(),
	}
	highWatermark := l.HighWatermark()
	err := l.failed()
	l.appendMu.Unlock()
	if err != nil {
		return p, err
	}
	segments := p.segments
	active := segments[len(segments)-1]
	p.firstDirty = max(p.checkpoint.firstDirty, segments[0].baseOffset)
	limitOffset := min(highWatermark, active.baseOffset)
	first := segmentIndexOf(segments, p.firstDirty)
	if lag := p.config.MinCompactionLag; lag > 0 {
		for _, s := range segments[first : len(segments)-1] {
			if s.baseOffset >= limitOffset {
				break
			}
			largest, _, err := s.largestTimestamp(p.config.IndexIntervalBytes)
			if err != nil {
				return p, err
			}
			if largest > p.nowMillis-lag.Milliseconds() {
				limitOffset = min(limitOffset, s.baseOffset)
				break
			}
		}
	}
	// Whole segments only: the one holding the limit is not cleaned.
	p.limit = segments[segmentIndexOf(segments, limitOffset)].baseOffset
	for i, s := range segments {
		switch {
		case i < first:
			p.cleanBytes += s.size.Load()
		case s.baseOffset < p.limit:
			p.dirtyBytes += s.size.Load()
		}
	}
	if lag := p.config.MaxCompactionLag; lag > 0 && p.dirtyBytes > 0 {
		timestamp, err := firstBatchTimestampFrom(segments[first], p.firstDirty)
		if err != nil {
			return p, err
		}
		p.overdue = timestamp != noTimestamp && timestamp < p.nowMillis-lag.Milliseconds()
	}
	return p, nil
}

// segmentIndexOf returns the index of the segment holding offset: the
// last one whose base offset is at or below it.
func segmentIndexOf(segments []*segment, offset int64) int {
	i := 0
	for i+1 < len(segments) && segments[i+1].baseOffset <= offset {
		i++
	}
	return i
}

// firstBatchTimestampFrom returns the max timestamp of the first batch of s
// that reaches from (Kafka measures max.compaction.lag.ms from it).
func firstBatchTimestampFrom(s *segment, from int64) (int64, error) {
	scan := newSegmentScanner(s, false)
	for {
		h, _, _, err := scan.nextHeader()
		if err != nil {
			if errors.Is(err, errEndOfSegment) {
				return noTimestamp, nil
			}
			return 0, err
		}
		if h.LastOffset() >= from {
			return h.MaxTimestamp, nil
		}
	}
}

// loadCleanerCheckpoint reads where the last clean stopped. Called while
// the log opens.
func (l *Log) loadCleanerCheckpoint() error {
	l.cleaner.checkpoint = cleanerCheckpoint{logTime: noTimestamp}
	data, err := ReadWholeFile(l.fsys, filepath.Join(l.dir, cleanerCheckpointFile), 64)
	switch {
	case isNotExist(err):
		return nil
	case err != nil:
		return err
	case len(data) != 16:
		l.logger.Warn("ignoring a damaged cleaner checkpoint; the next clean starts from the log start", "bytes", len(data))
		return nil
	}
	l.cleaner.checkpoint = cleanerCheckpoint{
		firstDirty: int64(binary.BigEndian.Uint64(data)),
		logTime:    int64(binary.BigEndian.Uint64(data[8:])),
	}
	return nil
}

func (l *Log) writeCleanerCheckpointLocked(c cleanerCheckpoint) error {
	data := binary.BigEndian.AppendUint64(nil, uint64(c.firstDirty))
	data = binary.BigEndian.AppendUint64(data, uint64(c.logTime))
	if err := WriteFileAtomic(l.fsys, filepath.Join(l.dir, cleanerCheckpointFile), data); err != nil {
		return err
	}
	l.cleaner.checkpoint = c
	return nil
}

// cleanerTruncatedLocked follows a cut of the log back to end: a clean
// under way must not swap in its work, and the checkpoint may not lie past
// the new end, or records appended there later would pass for cleaned.
// Called under appendMu by TruncateTo and TruncateFullyAndStartAt.
func (l *Log) cleanerTruncatedLocked(end int64) error {
	l.cleaner.generation++
	if l.cleaner.checkpoint.firstDirty <= end {
		return nil
	}
	return l.writeCleanerCheckpointLocked(cleanerCheckpoint{firstDirty: end, logTime: noTimestamp})
}

// setCompacted mirrors the config's policy for Append.
func (l *Log) setCompacted(c Config) { l.cleaner.compacted.Store(c.Cleanup.Compacts()) }

// checkCompactedAppend refuses records without a key on a compacted log.
func (l *Log) checkCompactedAppend(records []byte, opts AppendOptions) error {
	if opts.FromLeader || !l.cleaner.compacted.Load() {
		return nil
	}
	return requireKeys(records)
}

// tombstoneHorizon is the time before which a tombstone may go: the log
// time less DeleteRetention.
func tombstoneHorizon(logTime int64, retention int64) int64 {
	if logTime == noTimestamp || logTime < math.MinInt64+retention {
		return math.MinInt64
	}
	return logTime - retention
}

// validateLeaderBatches checks batches a follower fetched: whole, magic 2,
// CRC-correct, a known codec; a batch the leader's cleaner emptied has
// fewer records than offsets, even none. It returns the record count.
func validateLeaderBatches(records []byte) (int, error) {
	if len(records) == 0 {
		return 0, &BatchError{Reason: "no record batch", kind: ErrInvalidRecord}
	}
	count := 0
	for at := 0; at < len(records); {
		h, err := checkBatchFrame(records[at:])
		if err == nil {
			switch {
			case h.Compression() > codecZstd:
				err = &BatchError{Reason: fmt.Sprintf("compression codec %d is not defined", h.Compression()), kind: ErrUnsupportedCompression}
			case h.LastOffsetDelta < 0 || h.RecordCount < 0 || int64(h.RecordCount) > int64(h.LastOffsetDelta)+1:
				err = &BatchError{Reason: fmt.Sprintf("%d records in a batch of %d offsets", h.RecordCount, int64(h.LastOffsetDelta)+1), kind: ErrInvalidRecord}
			}
		}
		if err != nil {
			var batchErr *BatchError
			if errors.As(err, &batchErr) {
				batchErr.Position = at
			}
			return 0, err
		}
		count += int(h.RecordCount)
		at += h.Size()
	}
	return count, nil
}

// validateAppend checks the batches Append is given and returns their
// record count: a producer's as ValidateBatches does, and on a compacted
// log that every record has a key; a leader's as validateLeaderBatches does.
func (l *Log) validateAppend(records []byte, opts AppendOptions) (int, error) {
	if opts.FromLeader {
		return validateLeaderBatches(records)
	}
	_, recordCount, err := ValidateBatches(records)
	if err == nil {
		err = l.checkCompactedAppend(records, opts)
	}
	return recordCount, err
}

// offsetFollows reports whether a batch at base may follow one that ends
// just before expected: right after it, or, in a compacted log, after a gap.
func (l *Log) offsetFollows(base, expected int64) bool {
	return base == expected || (base > expected && l.config.Cleanup.Compacts())
}

// onlyEmptyBatches reports whether batches, whole stored batches, are one
// or more that hold no records.
func onlyEmptyBatches(batches []byte) bool {
	if len(batches) == 0 {
		return false
	}
	for at := 0; at < len(batches); {
		h := parseBatchHeader(batches[at:])
		if h.RecordCount != 0 {
			return false
		}
		at += h.Size()
	}
	return true
}

// lastOffsetOf is the last offset of the last of whole stored batches.
func lastOffsetOf(batches []byte) int64 {
	var h BatchHeader
	for at := 0; at < len(batches); at += h.Size() {
		h = parseBatchHeader(batches[at:])
	}
	return h.LastOffset()
}
