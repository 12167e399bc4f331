package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Idempotent producers (producer id >= 0 in a batch) get exactly-once
// appends per partition, as in Kafka: the log remembers, for each producer,
// its epoch and its last producerBatchesKept batches' sequence ranges.
var (
	// ErrOutOfOrderSequence: a batch's first sequence is not the one after
	// the producer's last batch. Kafka error OUT_OF_ORDER_SEQUENCE_NUMBER (45).
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrProducerFenced: a batch carries an older epoch than the producer
	// id has used. Kafka error INVALID_PRODUCER_EPOCH (47).
	ErrProducerFenced = errors.New("producer epoch is older than the current one")
	// ErrUnknownProducerID: the log has no state for the producer and the
	// batch does not start a sequence; the client resets its sequence.
	// Kafka error UNKNOWN_PRODUCER_ID (59).
	ErrUnknownProducerID = errors.New("unknown producer id")
)

const (
	producerBatchesKept = 5
	// ProducerExpiry is Kafka's producer.id.expiration.ms default: state
	// of a producer that appended nothing for this long is dropped.
	ProducerExpiry = 24 * time.Hour

	producerSnapshotSuffix = ".producers"
	producerSnapshotsKept  = 3
)

type producerBatch struct {
	FirstSequence int32 `json:"first_sequence"`
	LastSequence  int32 `json:"last_sequence"`
	FirstOffset   int64 `json:"first_offset"`
	LastOffset    int64 `json:"last_offset"`
}

type producerEntry struct {
	Epoch         int16           `json:"epoch"`
	Batches       []producerBatch `json:"batches"` // oldest first
	LastTimestamp int64           `json:"last_timestamp"`
}

// producerStates is owned by the Log and used under appendMu.
type producerStates map[int64]*producerEntry

// lastSequence is the sequence of the batch's last record; sequences wrap
// from MaxInt32 to 0.
func lastSequence(h BatchHeader) int32 {
	return int32((int64(h.BaseSequence) + int64(h.LastOffsetDelta)) % (math.MaxInt32 + 1))
}

func nextSequence(sequence int32) int32 {
	if sequence == math.MaxInt32 {
		return 0
	}
	return sequence + 1
}

// check decides about one batch of an idempotent producer. previous is the
// last sequence the same producer got earlier in the same append, if any.
// It returns the batch already in the log when this one is a duplicate.
func (ps producerStates) check(h BatchHeader, previous *int32) (*producerBatch, error) {
	if previous != nil {
		if h.BaseSequence != nextSequence(*previous) {
			return nil, fmt.Errorf("%w: producer %d sent sequence %d after %d in one request", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence, *previous)
		}
		return nil, nil
	}
	e := ps[h.ProducerID]
	switch {
	case e == nil && h.BaseSequence != 0:
		return nil, fmt.Errorf("%w: producer %d starts at sequence %d; the log has no state for it", ErrUnknownProducerID, h.ProducerID, h.BaseSequence)
	case e == nil:
		return nil, nil
	case h.ProducerEpoch < e.Epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current epoch %d", ErrProducerFenced, h.ProducerID, h.ProducerEpoch, e.Epoch)
	case h.ProducerEpoch > e.Epoch:
		if h.BaseSequence != 0 {
			return nil, fmt.Errorf("%w: producer %d's new epoch %d must start at sequence 0, not %d", ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, nil
	}
	last := lastSequence(h)
	for i := range e.Batches {
		if b := e.Batches[i]; b.FirstSequence == h.BaseSequence && b.LastSequence == last {
			return &b, nil
		}
	}
	if n := len(e.Batches); n > 0 && h.BaseSequence != nextSequence(e.Batches[n-1].LastSequence) {
		return nil, fmt.Errorf("%w: producer %d sent sequence %d, expected %d", ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence, nextSequence(e.Batches[n-1].LastSequence))
	}
	return nil, nil
}

// update records an appended batch of an idempotent producer.
func (ps producerStates) update(h BatchHeader, nowMillis int64) {
	e := ps[h.ProducerID]
	if e == nil || h.ProducerEpoch > e.Epoch {
		e = &producerEntry{Epoch: h.ProducerEpoch}
		ps[h.ProducerID] = e
	}
	e.LastTimestamp = nowMillis
	e.Batches = append(e.Batches, producerBatch{FirstSequence: h.BaseSequence, LastSequence: lastSequence(h), FirstOffset: h.BaseOffset, LastOffset: h.LastOffset()})
	if len(e.Batches) > producerBatchesKept {
		e.Batches = append(e.Batches[:0], e.Batches[len(e.Batches)-producerBatchesKept:]...)
	}
}

// expire drops producers idle since before cutoff.
func (ps producerStates) expire(cutoffMillis int64) {
	for id, e := range ps {
		if e.LastTimestamp < cutoffMillis {
			delete(ps, id)
		}
	}
}

// producerSnapshot is the file <offset>.producers: the producer states as
// of offset (every batch below it is included).
type producerSnapshot struct {
	Offset    int64                    `json:"offset"`
	Producers map[int64]*producerEntry `json:"producers"`
}

// writeProducerSnapshotLocked saves the states as of the log end offset and
// keeps the newest few snapshots. Called under appendMu.
func (l *Log) writeProducerSnapshotLocked() error {
	offset := l.logEndOffset.Load()
	data, err := json.Marshal(producerSnapshot{Offset: offset, Producers: l.producers})
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(l.fsys, filepath.Join(l.dir, fmt.Sprintf("%020d%s", offset, producerSnapshotSuffix)), data); err != nil {
		return err
	}
	offsets, err := l.producerSnapshotOffsets()
	if err != nil {
		return err
	}
	for len(offsets) > producerSnapshotsKept {
		if err := l.fsys.Remove(filepath.Join(l.dir, fmt.Sprintf("%020d%s", offsets[0], producerSnapshotSuffix))); err != nil && !isNotExist(err) {
			return err
		}
		offsets = offsets[1:]
	}
	return nil
}

func (l *Log) producerSnapshotOffsets() ([]int64, error) {
	names, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var offsets []int64
	for _, name := range names {
		if digits, ok := strings.CutSuffix(name, producerSnapshotSuffix); ok && len(digits) == 20 {
			if offset, err := strconv.ParseInt(digits, 10, 64); err == nil {
				offsets = append(offsets, offset)
			}
		}
	}
	sort.Slice(offsets, func(i, j int) bool { return offsets[i] < offsets[j] })
	return offsets, nil
}

// loadProducerStates restores the producer states at open: the newest
// snapshot at or below the log end, then the batch headers after it.
// Called before the log is shared.
func (l *Log) loadProducerStates() error {
	l.producers = make(producerStates)
	offsets, err := l.producerSnapshotOffsets()
	if err != nil {
		return err
	}
	from := l.logStartOffset.Load()
	for i := len(offsets) - 1; i >= 0; i-- {
		if offsets[i] > l.logEndOffset.Load() {
			continue // taken before a crash cut the log shorter
		}
		data, err := ReadWholeFile(l.fsys, filepath.Join(l.dir, fmt.Sprintf("%020d%s", offsets[i], producerSnapshotSuffix)), 256<<20)
		if err != nil {
			return err
		}
		var snapshot producerSnapshot
		if err := json.Unmarshal(data, &snapshot); err != nil {
			l.logger.Warn("ignoring a damaged producer snapshot", "offset", offsets[i], "err", err)
			continue
		}
		if snapshot.Producers != nil {
			l.producers = snapshot.Producers
		}
		from = max(snapshot.Offset, from)
		break
	}
	return l.eachBatchHeader(from, func(h BatchHeader) {
		if h.ProducerID >= 0 {
			l.producers.update(h, max(h.MaxTimestamp, 0))
		}
	})
}

// eachBatchHeader calls fn with the header of every batch from the one
// holding offset from to the end of the log. Called before the log is
// shared or under appendMu.
func (l *Log) eachBatchHeader(from int64, fn func(BatchHeader)) error {
	var buf [batchHeaderSize]byte
	for i := l.segmentIndexLocked(from); i < len(l.segments); i++ {
		s := l.segments[i]
		position, _, found, err := l.findBatch(s, from)
		if err != nil {
			return err
		}
		if !found {
			continue
		}
		end := s.size.Load()
		for position < end {
			h, err := s.readHeader(position, end, &buf)
			if err != nil {
				return err
			}
			fn(h)
			position += int64(h.Size())
		}
	}
	return nil
}
