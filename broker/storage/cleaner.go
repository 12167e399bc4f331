package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The cleaner's files next to a segment's (see the package doc):
//
//	<base>.log.cleaned        the cleaned log of the segments from base, being written
//	<base>.index.cleaned      its offset index
//	<base>.timeindex.cleaned  its time index
//	<base>.<end>.swap         the cleaned log, complete and fsynced: it replaces
//	                          every segment whose base offset is in [base, end)
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"

	// cleanerReadChunk is how much of a segment the cleaner reads at once.
	cleanerReadChunk = 1 << 20

	// Cleaned groups are swapped in together, up to this many or this
	// much output (each swap holds appendMu over three directory fsyncs,
	// so a log of small segments would hold up appends for every one).
	maxPendingGroups = 32
	maxPendingBytes  = 64 << 20
)

var (
	errEndOfSegment = errors.New("end of segment")
	// errCleanerBufferTooSmall: not even one batch fits in the key map.
	errCleanerBufferTooSmall = errors.New("the cleaner's key map cannot hold the keys of one batch; raise CleanerBufferBytes")
)

func swapPath(dir string, base, end int64, count int) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.%020d.%d%s", base, end, count, swapSuffix))
}

// parseSwapName returns the range of a <base>.<end>.<count>.swap name and
// the number of swaps committed with it.
func parseSwapName(name string) (base, end int64, count int, ok bool) {
	rest, found := strings.CutSuffix(name, swapSuffix)
	if !found || len(rest) < 43 || rest[20] != '.' || rest[41] != '.' {
		return 0, 0, 0, false
	}
	base, err1 := strconv.ParseInt(rest[:20], 10, 64)
	end, err2 := strconv.ParseInt(rest[21:41], 10, 64)
	count, err3 := strconv.Atoi(rest[42:])
	return base, end, count, err1 == nil && err2 == nil && err3 == nil && base >= 0 && end > base && count > 0
}

// segmentFileBase returns the base offset of a segment's .log, .index or
// .timeindex file name.
func segmentFileBase(name string) (int64, bool) {
	for _, suffix := range []string{logFileSuffix, indexFileSuffix, timeIndexFileSuffix} {
		if digits, ok := strings.CutSuffix(name, suffix); ok && len(digits) == 20 {
			base, err := strconv.ParseInt(digits, 10, 64)
			return base, err == nil && base >= 0
		}
	}
	return 0, false
}

// segmentScanner reads the batches of a closed segment in order, through a
// buffer of cleanerReadChunk bytes that grows for a larger batch.
type segmentScanner struct {
	s        *segment
	end      int64
	verify   bool // check every batch's CRC-32C
	buf      []byte
	bufAt    int64 // the file position of buf[0]
	position int64 // of the next batch
}

func newSegmentScanner(s *segment, verify bool) *segmentScanner {
	return &segmentScanner{s: s, end: s.size.Load(), verify: verify}
}

// fill makes buf hold the n bytes at position.
func (r *segmentScanner) fill(n int) error {
	if r.position >= r.bufAt && r.position+int64(n) <= r.bufAt+int64(len(r.buf)) {
		return nil
	}
	want := int(min(int64(max(n, cleanerReadChunk)), r.end-r.position))
	if cap(r.buf) < want {
		r.buf = make([]byte, want)
	}
	r.buf = r.buf[:want]
	r.bufAt = r.position
	if read, err := r.s.log.ReadAt(r.buf, r.position); read < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		r.buf = r.buf[:0]
		return fmt.Errorf("%s: reading %d bytes at byte %d: %w", r.s.name(), want, r.position, err)
	}
	return nil
}

// next returns the next batch, its header and its position; the bytes are
// valid until the following call. errEndOfSegment ends the segment.
func (r *segmentScanner) next() (BatchHeader, []byte, int64, error) {
	if r.position >= r.end {
		return BatchHeader{}, nil, 0, errEndOfSegment
	}
	damaged := func(h BatchHeader, reason string) error {
		return &CorruptionError{Segment: r.s.name(), Position: r.position, Offset: h.BaseOffset, Reason: reason}
	}
	if r.position+batchHeaderSize > r.end {
		return BatchHeader{}, nil, 0, damaged(BatchHeader{}, "a batch header runs past the end of the segment")
	}
	if err := r.fill(batchHeaderSize); err != nil {
		return BatchHeader{}, nil, 0, err
	}
	h := parseBatchHeader(r.buf[r.position-r.bufAt:])
	if !h.plausible(r.position, r.end) {
		return h, nil, 0, damaged(h, "batch header damaged")
	}
	if err := r.fill(h.Size()); err != nil {
		return h, nil, 0, err
	}
	at := r.position - r.bufAt
	batch := r.buf[at : at+int64(h.Size())]
	if r.verify && crc32.Checksum(batch[batchAttributesAt:], crc32c) != h.CRC {
		return h, nil, 0, damaged(h, "CRC-32C mismatch found by the cleaner")
	}
	position := r.position
	r.position += int64(h.Size())
	return h, batch, position, nil
}

// nextHeader is next without the CRC check.
func (r *segmentScanner) nextHeader() (BatchHeader, []byte, int64, error) {
	verify := r.verify
	r.verify = false
	defer func() { r.verify = verify }()
	return r.next()
}

// cleaning is one clean of a log.
type cleaning struct {
	log    *Log
	plan   cleanPlan
	keys   *offsetMap
	end    int64 // the cleaning point reached by the key map
	result CleanResult
	// horizon: tombstones older than this go; producerHorizon: an emptied
	// batch of a producer idle since before this goes.
	horizon, producerHorizon int64
	logTime                  int64

	// pending: groups cleaned and fsynced, waiting to be swapped in
	pending      []*cleanedSegment
	pendingBytes int64

	scratch     []byte // decompressed records
	recordsBuf  []byte
	compressBuf []byte
	outBuf      []byte
	kept        []keyedRecord
	keyOffsets  []keyOffset
	started     time.Time

	// ioBytes counts what the cleaner read and wrote, for the throttle,
	// since throttleStart.
	ioBytes       int64
	throttleStart time.Time
}

// throttle counts n bytes of I/O and, with CleanerBytesPerSecond set,
// sleeps (on the log's clock) while the clean is ahead of that rate, as
// Kafka's log.cleaner.io.max.bytes.per.second does.
func (c *cleaning) throttle(n int) error {
	rate := c.plan.config.CleanerBytesPerSecond
	if rate <= 0 {
		return nil
	}
	c.ioBytes += int64(n)
	ahead := time.Duration(float64(c.ioBytes)/float64(rate)*float64(time.Second)) - c.log.clock.Now().Sub(c.throttleStart)
	if ahead < 10*time.Millisecond {
		return nil
	}
	timer := c.log.clock.NewTimer(ahead)
	defer timer.Stop()
	select {
	case <-timer.C():
		return nil
	case <-c.log.cleaner.stop:
		return errCleanerStopped
	}
}

type keyOffset struct {
	key    []byte
	offset int64
}

// clean cleans the log as plan says. Called holding the cleaner slot.
func (l *Log) clean(plan cleanPlan) (CleanResult, error) {
	c := &cleaning{log: l, plan: plan, started: time.Now(), throttleStart: l.clock.Now(),
		result: CleanResult{FirstDirty: plan.firstDirty, End: plan.firstDirty}}
	budget := plan.config.CleanerBufferBytes
	if budget == 0 {
		budget = DefaultCleanerBufferBytes
	}
	// Keys below the limit and producers can each be no more than the
	// offsets there.
	c.keys = newOffsetMap(budget, 2*(plan.limit-plan.segments[0].baseOffset)+16)
	if err := c.mapKeys(); err != nil {
		return c.result, err
	}
	c.result.End = c.end
	if c.end <= plan.firstDirty {
		return c.result, nil
	}
	c.horizon = tombstoneHorizon(c.logTime, plan.config.DeleteRetention.Milliseconds())
	c.producerHorizon = tombstoneHorizon(c.logTime, ProducerExpiry.Milliseconds())
	defer c.discardPending()
	for _, group := range c.groups() {
		if err := c.cleanGroup(group); err != nil {
			return c.result, err
		}
		if len(c.pending) >= maxPendingGroups || c.pendingBytes >= maxPendingBytes {
			if err := c.commitPending(); err != nil {
				return c.result, err
			}
		}
	}
	if err := c.commitPending(); err != nil {
		return c.result, err
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return c.result, ErrClosed
	}
	if l.cleaner.generation != plan.generation {
		return c.result, errCleanAbandoned
	}
	if err := l.writeCleanerCheckpointLocked(cleanerCheckpoint{firstDirty: c.end, logTime: c.logTime}); err != nil {
		return c.result, err
	}
	l.cleaner.failure = ""
	l.cleaner.passes.Add(1)
	l.cleaner.bytesRead.Add(c.result.BytesRead)
	l.cleaner.bytesWritten.Add(c.result.BytesWritten)
	l.logger.Info("cleaned log", "first_dirty_offset", plan.firstDirty, "cleaned_to", c.end,
		"segments_replaced", len(c.result.Replaced), "bytes_read", c.result.BytesRead, "bytes_written", c.result.BytesWritten,
		"records_read", c.result.RecordsRead, "records_kept", c.result.RecordsKept, "took", time.Since(c.started))
	return c.result, nil
}

func (c *cleaning) stopped() bool { return c.log.cleaner.stopping.Load() }

// readFailed turns a read error into errCleanAbandoned when retention
// removed the segment meanwhile.
func (c *cleaning) readFailed(s *segment, err error) error {
	var corrupt *CorruptionError
	if errors.As(err, &corrupt) {
		return err
	}
	c.log.segmentsMu.RLock()
	defer c.log.segmentsMu.RUnlock()
	for _, current := range c.log.segments {
		if current == s {
			return err
		}
	}
	return errCleanAbandoned
}

// mapKeys reads the log from its first segment up to the limit: below
// firstDirty only the batch headers (their producers and times), from it on
// every record's key into the key map, until the map is full. It sets the
// cleaning point c.end and the log time.
func (c *cleaning) mapKeys() error {
	p, m := c.plan, c.keys
	c.end = p.limit
	c.logTime = p.checkpoint.logTime
	for _, s := range p.segments {
		if s.baseOffset >= p.limit {
			break
		}
		scan := newSegmentScanner(s, true)
		for {
			h, batch, _, err := scan.next()
			if errors.Is(err, errEndOfSegment) {
				break
			}
			if err != nil {
				return c.readFailed(s, err)
			}
			if c.stopped() {
				return errCleanerStopped
			}
			if err := c.throttle(h.Size()); err != nil {
				return err
			}
			if h.LastOffset() >= p.firstDirty && !m.room(int(h.RecordCount)+1) {
				if m.used == 0 {
					return errCleanerBufferTooSmall
				}
				c.end = h.BaseOffset
				return nil
			}
			if h.ProducerID >= 0 {
				if !m.room(1) {
					return errCleanerBufferTooSmall // too many producers below the dirty part
				}
				m.putProducer(h.ProducerID, h.LastOffset())
			}
			c.logTime = max(c.logTime, h.MaxTimestamp)
			if h.LastOffset() < p.firstDirty || h.Control() {
				continue
			}
			keys, ok := c.batchKeys(batch, h)
			if !ok {
				c.log.logger.Warn("the cleaner cannot read a batch's records; it is kept as it is", "segment", s.name(), "offset", h.BaseOffset)
				continue
			}
			for _, k := range keys {
				m.putKey(k.key, k.offset)
			}
		}
	}
	return nil
}

// batchKeys returns the offset of each keyed record of a batch, or false
// if its records do not parse or decompress.
func (c *cleaning) batchKeys(batch []byte, h BatchHeader) ([]keyOffset, bool) {
	payload, err := c.records(batch, h)
	if err != nil {
		return nil, false
	}
	keys := c.keyOffsets[:0]
	err = eachKeyedRecord(payload, h.RecordCount, func(r keyedRecord) error {
		if r.offsetDelta > int64(h.LastOffsetDelta) {
			return errRecordsMalformed
		}
		if r.hasKey {
			keys = append(keys, keyOffset{key: r.key, offset: h.BaseOffset + r.offsetDelta})
		}
		return nil
	})
	c.keyOffsets = keys
	return keys, err == nil
}

// records returns a batch's records, decompressed into c.scratch if need be.
func (c *cleaning) records(batch []byte, h BatchHeader) ([]byte, error) {
	payload, err := batchRecords(batch, h, c.scratch)
	if err == nil && h.Compression() != codecNone {
		c.scratch = payload
	}
	return payload, err
}

// groups splits the segments below the cleaning point into runs that each
// become one segment (Kafka's groupSegmentsBySize): together no larger
// than a segment may be, and their offsets within 32 bits of the first.
func (c *cleaning) groups() [][]*segment {
	segments := c.plan.segments
	var groups [][]*segment
	for i := 0; i < len(segments)-1 && segments[i].baseOffset < c.end; {
		group := []*segment{segments[i]}
		size := segments[i].size.Load()
		i++
		for i < len(segments)-1 && segments[i].baseOffset < c.end &&
			size+segments[i].size.Load() <= c.plan.config.SegmentBytes &&
			segments[i+1].baseOffset-group[0].baseOffset-1 <= math.MaxUint32 {
			group = append(group, segments[i])
			size += segments[i].size.Load()
			i++
		}
		groups = append(groups, group)
	}
	return groups
}

// cleanGroup cleans a run of segments into one and swaps it in. A run with
// nothing to remove that is a single segment is left as it is.
func (c *cleaning) cleanGroup(group []*segment) error {
	w := &groupWriter{c: c, group: group}
	defer w.discard()
	for i, s := range group {
		scan := newSegmentScanner(s, true)
		for {
			h, batch, position, err := scan.next()
			if errors.Is(err, errEndOfSegment) {
				break
			}
			if err != nil {
				return c.readFailed(s, err)
			}
			if c.stopped() {
				return errCleanerStopped
			}
			if err := c.throttle(h.Size()); err != nil {
				return err
			}
			c.result.BytesRead += int64(h.Size())
			out, unchanged := c.filter(batch, h)
			if unchanged {
				err = w.keep(h, batch)
			} else {
				err = w.replace(i, position, out)
			}
			if err != nil {
				return err
			}
		}
	}
	cleaned, err := w.finish()
	if err != nil || cleaned == nil {
		return err
	}
	w.swapped = true // from here on, c.pending owns its files
	c.pending = append(c.pending, cleaned)
	c.pendingBytes += cleaned.size
	return nil
}

// commitPending swaps in the groups cleaned since the last commit. It
// holds the log's files lock throughout, so retention, DeleteRecords and
// truncation wait, but appendMu only to check the groups are still in
// place and to swap the segment list: the renames, links and directory
// fsyncs do not hold up appends. A group retention or DeleteRecords removed
// segments of meanwhile is dropped.
func (c *cleaning) commitPending() error {
	if len(c.pending) == 0 {
		return nil
	}
	l := c.log
	l.cleaner.filesMu.Lock()
	defer l.cleaner.filesMu.Unlock()
	l.appendMu.Lock()
	var err error
	switch {
	case l.closed:
		err = ErrClosed
	case l.failed() != nil:
		err = l.failed()
	case l.cleaner.generation != c.plan.generation:
		err = errCleanAbandoned
	}
	var ready []*cleanedSegment
	if err == nil {
		for _, cleaned := range c.pending {
			if l.groupInPlaceLocked(cleaned.replaced) {
				ready = append(ready, cleaned)
			} else {
				cleaned.discard(l.fsys)
			}
		}
		c.pending, c.pendingBytes = c.pending[:0], 0
	}
	l.appendMu.Unlock()
	if err != nil {
		return err
	}
	if err := l.swapIn(ready); err != nil {
		return err
	}
	for _, cleaned := range ready {
		c.result.Replaced = append(c.result.Replaced, CleanedRange{Base: cleaned.base, End: cleaned.end})
		c.result.BytesWritten += cleaned.size
	}
	return nil
}

// discardPending removes the output of groups cleaned but not swapped in.
func (c *cleaning) discardPending() {
	for _, cleaned := range c.pending {
		cleaned.discard(c.log.fsys)
	}
	c.pending = nil
}

// filter decides about one batch. unchanged: it stays as it is; otherwise
// out is what replaces it (nil: nothing).
//
// A record below the cleaning point stays when it has a key, no later
// record of that key is below the cleaning point, and it is not a
// tombstone older than the horizon. A batch left without records stays,
// empty, if it is its producer's last below the cleaning point and not
// older than ProducerExpiry (of log time). Batches at or past the cleaning
// point, control batches and batches whose records do not parse stay as
// they are.
func (c *cleaning) filter(batch []byte, h BatchHeader) (out []byte, unchanged bool) {
	if h.BaseOffset >= c.end || h.Control() {
		return nil, true
	}
	// A producer's last batch keeps its sequence for the producer state,
	// until the producer would have expired (Kafka drops it then too).
	// (The base timestamp, not the max: a clean that takes records out
	// of a batch lowers its max timestamp, and the outcome must not depend
	// on how many cleans came before.)
	lastOfProducer := h.ProducerID >= 0 && c.keys.producerLastOffset(h.ProducerID) == h.LastOffset() &&
		h.BaseTimestamp >= c.producerHorizon
	if h.RecordCount == 0 {
		return nil, lastOfProducer
	}
	payload, err := c.records(batch, h)
	if err != nil {
		return nil, true
	}
	kept := c.kept[:0]
	maxTimestamp := int64(noTimestamp)
	err = eachKeyedRecord(payload, h.RecordCount, func(r keyedRecord) error {
		if r.offsetDelta > int64(h.LastOffsetDelta) {
			return errRecordsMalformed
		}
		if c.keep(h, r) {
			kept = append(kept, r)
			maxTimestamp = max(maxTimestamp, h.BaseTimestamp+r.timestampDelta)
		}
		return nil
	})
	c.kept = kept
	if err != nil {
		return nil, true
	}
	c.result.RecordsRead += int64(h.RecordCount)
	c.result.RecordsKept += int64(len(kept))
	switch {
	case len(kept) == int(h.RecordCount):
		return nil, true
	case len(kept) > 0:
		out, err := c.rebuild(batch, h, kept, maxTimestamp)
		if err != nil {
			c.log.logger.Warn("the cleaner cannot compress a batch again; it is kept as it is", "offset", h.BaseOffset, "err", err)
			return nil, true
		}
		return out, false
	case lastOfProducer:
		return c.emptyBatch(batch, h), false
	}
	return nil, false
}

// keep decides about one record of a batch below the cleaning point.
func (c *cleaning) keep(h BatchHeader, r keyedRecord) bool {
	if !r.hasKey {
		return false
	}
	offset := h.BaseOffset + r.offsetDelta
	if last := c.keys.getKey(r.key); last > offset {
		return false
	}
	if r.hasValue {
		return true
	}
	timestamp := h.BaseTimestamp + r.timestampDelta
	if h.LogAppendTime() {
		timestamp = h.MaxTimestamp
	}
	return timestamp >= c.horizon
}

// rebuild encodes the kept records as the batch they came from: the same
// base offset, last offset delta (so the batch ends where it did and its
// producer's sequence is unchanged), producer, epoch, base timestamp and
// codec; the records' bytes are copied as they were. Only the length, the
// record count, the max timestamp and the CRC change.
func (c *cleaning) rebuild(original []byte, h BatchHeader, kept []keyedRecord, maxTimestamp int64) ([]byte, error) {
	records := c.recordsBuf[:0]
	for _, r := range kept {
		records = append(records, r.raw...)
	}
	c.recordsBuf = records
	payload := records
	if h.Compression() != codecNone {
		var err error
		if payload, err = compress(c.compressBuf[:0], records, h.Compression()); err != nil {
			return nil, err
		}
		c.compressBuf = payload
	}
	out := append(append(c.outBuf[:0], original[:batchHeaderSize]...), payload...)
	c.outBuf = out
	binary.BigEndian.PutUint32(out[batchLengthAt:], uint32(len(out)-batchLogOverhead))
	binary.BigEndian.PutUint32(out[batchRecordCountAt:], uint32(len(kept)))
	if !h.LogAppendTime() {
		binary.BigEndian.PutUint64(out[batchMaxTimestampAt:], uint64(maxTimestamp))
	}
	binary.BigEndian.PutUint32(out[batchCRCAt:], crc32.Checksum(out[batchAttributesAt:], crc32c))
	return out, nil
}

// emptyBatch is a batch's header with no records, as Kafka keeps the last
// batch of a producer: uncompressed, both timestamps the base timestamp
// (which, unlike the max, no clean changes, so the bytes are the same
// however many cleans the batch went through).
func (c *cleaning) emptyBatch(original []byte, h BatchHeader) []byte {
	out := append(c.outBuf[:0], original[:batchHeaderSize]...)
	c.outBuf = out
	binary.BigEndian.PutUint32(out[batchLengthAt:], uint32(batchHeaderSize-batchLogOverhead))
	binary.BigEndian.PutUint16(out[batchAttributesAt:], uint16(h.Attributes&^attributeCompressionMask))
	binary.BigEndian.PutUint64(out[batchMaxTimestampAt:], uint64(h.BaseTimestamp))
	binary.BigEndian.PutUint32(out[batchRecordCountAt:], 0)
	binary.BigEndian.PutUint32(out[batchCRCAt:], crc32.Checksum(out[batchAttributesAt:], crc32c))
	return out
}

// groupWriter writes a group's cleaned segment to <base>.log.cleaned. It
// starts writing only at the first batch that changes, then copies the
// unchanged ones before it, so a segment with nothing to remove costs no
// write.
type groupWriter struct {
	c       *cleaning
	group   []*segment
	file    File      // nil until the first change
	names   [3]string // the .cleaned log, index and time index
	swapped bool      // handed to swapInLocked: discard leaves the files alone
	buf     []byte
	written int64
	index   *segment // builds the new indexes in memory
}

// cleanedSegment is a group written out, ready to swap in.
type cleanedSegment struct {
	base, end  int64
	size       int64
	names      [3]string
	index      *segment
	replaced   []*segment
	createTime time.Time
}

// discard removes the files of a cleaned segment never swapped in.
func (cleaned *cleanedSegment) discard(fsys FS) {
	for _, name := range cleaned.names {
		_ = fsys.Remove(name)
	}
}

func (w *groupWriter) keep(h BatchHeader, batch []byte) error {
	if w.file == nil {
		return nil // copied by start if something changes later
	}
	return w.write(h, batch)
}

// replace writes out (nil: nothing) for the batch at position of segment i.
func (w *groupWriter) replace(i int, position int64, out []byte) error {
	if w.file == nil {
		if err := w.start(i, position); err != nil {
			return err
		}
	}
	if out == nil {
		return nil
	}
	return w.write(parseBatchHeader(out), out)
}

// start creates the output and copies the group's batches before the one
// at position of segment upTo.
func (w *groupWriter) start(upTo int, position int64) error {
	base := w.group[0].baseOffset
	for i, suffix := range []string{logFileSuffix, indexFileSuffix, timeIndexFileSuffix} {
		w.names[i] = segmentPath(w.c.log.dir, base, suffix) + cleanedSuffix
	}
	f, err := w.c.log.fsys.OpenFile(w.names[0], true)
	if err == nil {
		if err = f.Truncate(0); err != nil {
			_ = f.Close()
		}
	}
	if err != nil {
		return err
	}
	w.file = f
	w.index = &segment{baseOffset: base, indexLoaded: true, firstBatchTimestamp: noTimestamp,
		maxTimestamp: noTimestamp, offsetOfMaxTimestamp: -1}
	for i := 0; i <= upTo && i < len(w.group); i++ {
		scan := newSegmentScanner(w.group[i], false)
		for {
			h, batch, at, err := scan.next()
			if errors.Is(err, errEndOfSegment) || (i == upTo && err == nil && at >= position) {
				break
			}
			if err != nil {
				return w.c.readFailed(w.group[i], err)
			}
			if err := w.write(h, batch); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *groupWriter) write(h BatchHeader, batch []byte) error {
	w.index.addBatch(h, w.written+int64(len(w.buf)), w.c.plan.config.IndexIntervalBytes)
	w.buf = append(w.buf, batch...)
	if len(w.buf) >= cleanerReadChunk {
		return w.flush()
	}
	return nil
}

func (w *groupWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if _, err := w.file.WriteAt(w.buf, w.written); err != nil {
		return err
	}
	w.written += int64(len(w.buf))
	n := len(w.buf)
	w.buf = w.buf[:0]
	return w.c.throttle(n)
}

// finish completes the output, with its indexes, and fsyncs it. It
// returns nil when the group is one segment with nothing to remove.
func (w *groupWriter) finish() (*cleanedSegment, error) {
	if w.file == nil {
		if len(w.group) == 1 {
			return nil, nil
		}
		last := len(w.group) - 1
		if err := w.start(last, w.group[last].size.Load()); err != nil {
			return nil, err
		}
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	if err := w.file.Sync(); err != nil {
		return nil, err
	}
	if err := w.file.Close(); err != nil {
		return nil, err
	}
	w.index.mu.Lock()
	w.index.appendTimeEntryLocked()
	w.index.mu.Unlock()
	fsys := w.c.log.fsys
	for i, data := range [][]byte{appendIndexEntries(nil, w.index.offsets), appendTimeIndexEntries(nil, w.index.times)} {
		if err := writeNewFile(fsys, w.names[i+1], data); err != nil {
			return nil, err
		}
	}
	last := w.group[len(w.group)-1]
	return &cleanedSegment{base: w.group[0].baseOffset, end: last.nextOffset.Load(), size: w.written,
		names: w.names, index: w.index, replaced: w.group, createTime: w.c.log.clock.Now()}, nil
}

// discard removes an output that was not swapped in. (Open removes any
// .cleaned file a crash left.)
func (w *groupWriter) discard() {
	if w.file == nil || w.swapped {
		return
	}
	_ = w.file.Close()
	for _, name := range w.names {
		_ = w.c.log.fsys.Remove(name)
	}
}

// writeNewFile creates name with data and fsyncs it.
func writeNewFile(fsys FS, name string, data []byte) error {
	f, err := fsys.OpenFile(name, true)
	if err != nil {
		return err
	}
	err = f.Truncate(0)
	if err == nil && len(data) > 0 {
		_, err = f.WriteAt(data, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// groupInPlaceLocked reports whether the group's segments are still in the
// log, in a row, and not the active one.
func (l *Log) groupInPlaceLocked(group []*segment) bool {
	l.segmentsMu.RLock()
	defer l.segmentsMu.RUnlock()
	for i, s := range l.segments {
		if s != group[0] {
			continue
		}
		if i+len(group) >= len(l.segments) {
			return false
		}
		for k, member := range group {
			if l.segments[i+k] != member {
				return false
			}
		}
		return true
	}
	return false
}

// swapInLocked replaces each group's segments by its cleaned one, all
// groups at once. Renaming the .cleaned logs to .swap names that carry the
// number of groups is the commit point: Open finishes the swaps only if
// every one of them is there, and otherwise removes them, the old segments
// being untouched until the renames are durable. (All or none matters: a
// later group may have dropped a tombstone whose key's older value an
// earlier group removes.) Every later step only moves names, and the .swap
// names go last, after the segments' own names are durable; each step is
// done for every group before one directory fsync. A failure past the
// commit point takes the log offline, so that reopening finishes the
// swaps. Called holding cleaner.filesMu (not appendMu, which it takes to
// swap the segment list).
func (l *Log) swapIn(groups []*cleanedSegment) error {
	if len(groups) == 0 {
		return nil
	}
	for _, cleaned := range groups {
		if err := l.fsys.Rename(cleaned.names[0], swapPath(l.dir, cleaned.base, cleaned.end, len(groups))); err != nil {
			return l.fail(err)
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return l.fail(err)
	}
	for _, cleaned := range groups {
		for _, s := range cleaned.replaced {
			for _, suffix := range []string{logFileSuffix, indexFileSuffix, timeIndexFileSuffix} {
				if err := l.fsys.Remove(segmentPath(l.dir, s.baseOffset, suffix)); err != nil && !isNotExist(err) {
					return l.fail(err)
				}
			}
		}
		links := [][2]string{
			{swapPath(l.dir, cleaned.base, cleaned.end, len(groups)), segmentPath(l.dir, cleaned.base, logFileSuffix)},
			{cleaned.names[1], segmentPath(l.dir, cleaned.base, indexFileSuffix)},
			{cleaned.names[2], segmentPath(l.dir, cleaned.base, timeIndexFileSuffix)},
		}
		for _, link := range links {
			if err := l.fsys.Link(link[0], link[1]); err != nil {
				return l.fail(err)
			}
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return l.fail(err)
	}
	for _, cleaned := range groups {
		next, err := openSegment(l.fsys, l.dir, cleaned.base)
		if err != nil {
			return l.fail(err)
		}
		built := cleaned.index
		next.size.Store(cleaned.size)
		next.nextOffset.Store(cleaned.end)
		next.created = cleaned.createTime
		next.indexLoaded = true
		next.offsets, next.times = built.offsets, built.times
		next.offsetsWritten, next.timesWritten = len(built.offsets), len(built.times)
		next.maxTimestamp, next.offsetOfMaxTimestamp = built.maxTimestamp, built.offsetOfMaxTimestamp
		next.firstBatchTimestamp = built.firstBatchTimestamp
		l.appendMu.Lock()
		l.segmentsMu.Lock()
		for i, s := range l.segments {
			if s == cleaned.replaced[0] {
				rest := l.segments[i+len(cleaned.replaced):]
				l.segments = append(append(append([]*segment(nil), l.segments[:i]...), next), rest...)
				break
			}
		}
		l.segmentsMu.Unlock()
		l.appendMu.Unlock()
		for _, s := range cleaned.replaced {
			_ = s.close()
		}
	}
	for _, cleaned := range groups {
		for _, name := range []string{swapPath(l.dir, cleaned.base, cleaned.end, len(groups)), cleaned.names[1], cleaned.names[2]} {
			if err := l.fsys.Remove(name); err != nil {
				return l.fail(err)
			}
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return l.fail(err)
	}
	return nil
}

// recoverCleanerFiles, at open, removes a clean's unfinished output and
// finishes the swaps a crash interrupted: when every swap of the commit is
// there, the segments in each swap's range go and the swap becomes the
// segment of its base offset; when only some are, the commit did not
// happen (or the swaps were being removed after it finished), and they go.
func (l *Log) recoverCleanerFiles() error {
	names, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return err
	}
	changed := false
	type swap struct {
		name       string
		base, end  int64
		groupCount int
	}
	var swaps []swap
	for _, name := range names {
		if strings.HasSuffix(name, cleanedSuffix) {
			if err := l.fsys.Remove(filepath.Join(l.dir, name)); err != nil {
				return err
			}
			changed = true
		}
		if base, end, count, ok := parseSwapName(name); ok {
			swaps = append(swaps, swap{name, base, end, count})
		}
	}
	complete := len(swaps) > 0
	for _, s := range swaps {
		complete = complete && s.groupCount == len(swaps)
	}
	for _, s := range swaps {
		if !complete {
			if err := l.fsys.Remove(filepath.Join(l.dir, s.name)); err != nil {
				return err
			}
			changed = true
			continue
		}
		for _, other := range names {
			if b, ok := segmentFileBase(other); ok && b >= s.base && b < s.end {
				if err := l.fsys.Remove(filepath.Join(l.dir, other)); err != nil && !isNotExist(err) {
					return err
				}
			}
		}
	}
	if !complete {
		if changed {
			return l.fsys.SyncDir(l.dir)
		}
		return nil
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return err
	}
	for _, s := range swaps {
		if err := l.fsys.Link(filepath.Join(l.dir, s.name), segmentPath(l.dir, s.base, logFileSuffix)); err != nil {
			return err
		}
	}
	if err := l.fsys.SyncDir(l.dir); err != nil {
		return err
	}
	for _, s := range swaps {
		if err := l.fsys.Remove(filepath.Join(l.dir, s.name)); err != nil {
			return err
		}
		l.logger.Warn("finished swapping in a cleaned segment after an unclean stop", "segment", segmentPath(l.dir, s.base, logFileSuffix), "replaced_up_to_offset", s.end)
	}
	return l.fsys.SyncDir(l.dir)
}
