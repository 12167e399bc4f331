package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Field positions in a magic-v2 record batch (see the package doc).
const (
	batchBaseOffsetAt      = 0
	batchLengthAt          = 8
	batchLeaderEpochAt     = 12
	batchMagicAt           = 16
	batchCRCAt             = 17
	batchAttributesAt      = 21 // the CRC covers from here to the end
	batchLastOffsetDeltaAt = 23
	batchBaseTimestampAt   = 27
	batchMaxTimestampAt    = 35
	batchProducerIDAt      = 43
	batchProducerEpochAt   = 51
	batchBaseSequenceAt    = 53
	batchRecordCountAt     = 57
	batchHeaderSize        = 61

	// batchLogOverhead is the part of a batch outside its length field.
	batchLogOverhead = 12

	attributeCompressionMask = 0x07
	attributeLogAppendTime   = 0x08
	attributeTransactional   = 0x10
	attributeControl         = 0x20
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// The errors a refused batch wraps; errors.Is tells which Kafka error code
// the server answers with.
var (
	// ErrCorruptMessage: the bytes are damaged (size or CRC-32C wrong).
	// Kafka error CORRUPT_MESSAGE (2).
	ErrCorruptMessage = errors.New("corrupt message")
	// ErrInvalidRecord: the bytes are intact but not a batch this broker
	// accepts (old magic, no records, inconsistent offsets).
	// Kafka error INVALID_RECORD (87).
	ErrInvalidRecord = errors.New("invalid record")
	// ErrUnsupportedCompression: the batch names a compression codec Kafka
	// does not define. Kafka error UNSUPPORTED_COMPRESSION_TYPE (76).
	ErrUnsupportedCompression = errors.New("unsupported compression type")
)

// BatchError says why a batch was refused and where it starts in the bytes
// that were given. It wraps one of ErrCorruptMessage, ErrInvalidRecord and
// ErrUnsupportedCompression.
type BatchError struct {
	Position int // byte position of the batch in the appended records
	Reason   string
	kind     error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("%v: record batch at byte %d: %s", e.kind, e.Position, e.Reason)
}

func (e *BatchError) Unwrap() error { return e.kind }

// BatchHeader is the fixed-size header of a magic-v2 record batch.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the whole batch's size in bytes.
func (h BatchHeader) Size() int { return batchLogOverhead + int(h.Length) }

// LastOffset is the offset of the batch's last record.
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Compression is the codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
func (h BatchHeader) Compression() int { return int(h.Attributes & attributeCompressionMask) }

// LogAppendTime reports whether the timestamps are the broker's append time.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attributeLogAppendTime != 0 }

// Transactional reports whether the batch is part of a transaction.
func (h BatchHeader) Transactional() bool { return h.Attributes&attributeTransactional != 0 }

// Control reports whether the batch holds control records (commit/abort markers).
func (h BatchHeader) Control() bool { return h.Attributes&attributeControl != 0 }

// parseBatchHeader reads the header at the start of b, which must hold at
// least batchHeaderSize bytes. It checks nothing.
func parseBatchHeader(b []byte) BatchHeader {
	_ = b[batchHeaderSize-1]
	be := binary.BigEndian
	return BatchHeader{
		BaseOffset:           int64(be.Uint64(b[batchBaseOffsetAt:])),
		Length:               int32(be.Uint32(b[batchLengthAt:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[batchLeaderEpochAt:])),
		Magic:                int8(b[batchMagicAt]),
		CRC:                  be.Uint32(b[batchCRCAt:]),
		Attributes:           int16(be.Uint16(b[batchAttributesAt:])),
		LastOffsetDelta:      int32(be.Uint32(b[batchLastOffsetDeltaAt:])),
		BaseTimestamp:        int64(be.Uint64(b[batchBaseTimestampAt:])),
		MaxTimestamp:         int64(be.Uint64(b[batchMaxTimestampAt:])),
		ProducerID:           int64(be.Uint64(b[batchProducerIDAt:])),
		ProducerEpoch:        int16(be.Uint16(b[batchProducerEpochAt:])),
		BaseSequence:         int32(be.Uint32(b[batchBaseSequenceAt:])),
		RecordCount:          int32(be.Uint32(b[batchRecordCountAt:])),
	}
}

// checkBatchFrame checks what every stored batch must satisfy: a header, a
// length that fits in b, magic 2, and a matching CRC-32C. It returns the
// header of the batch at the start of b.
func checkBatchFrame(b []byte) (BatchHeader, error) {
	if len(b) < batchHeaderSize {
		return BatchHeader{}, &BatchError{Reason: fmt.Sprintf("%d bytes is shorter than the %d-byte batch header", len(b), batchHeaderSize), kind: ErrCorruptMessage}
	}
	h := parseBatchHeader(b)
	if h.Length < batchHeaderSize-batchLogOverhead {
		return h, &BatchError{Reason: fmt.Sprintf("batch length %d is shorter than the header", h.Length), kind: ErrCorruptMessage}
	}
	if int64(h.Length) > int64(len(b)-batchLogOverhead) {
		return h, &BatchError{Reason: fmt.Sprintf("batch length %d runs past the %d bytes given", h.Length, len(b)-batchLogOverhead), kind: ErrCorruptMessage}
	}
	if h.Magic != 2 {
		return h, &BatchError{Reason: fmt.Sprintf("magic %d: only record batch format v2 (Kafka 0.11+) is accepted; upgrade the client", h.Magic), kind: ErrInvalidRecord}
	}
	if got := crc32.Checksum(b[batchAttributesAt:h.Size()], crc32c); got != h.CRC {
		return h, &BatchError{Reason: fmt.Sprintf("CRC-32C is %#08x, header says %#08x", got, h.CRC), kind: ErrCorruptMessage}
	}
	return h, nil
}

// ValidateBatch checks the batch at the start of b as a producer's batch:
// the frame (length, magic 2, CRC-32C), a known codec, at least one record,
// and a last offset delta that matches the record count. It returns the
// header; the batch occupies b[:header.Size()].
func ValidateBatch(b []byte) (BatchHeader, error) {
	h, err := checkBatchFrame(b)
	if err != nil {
		return h, err
	}
	if h.Compression() > 4 {
		return h, &BatchError{Reason: fmt.Sprintf("compression codec %d is not defined", h.Compression()), kind: ErrUnsupportedCompression}
	}
	if h.RecordCount <= 0 {
		return h, &BatchError{Reason: fmt.Sprintf("record count %d: a batch holds at least one record", h.RecordCount), kind: ErrInvalidRecord}
	}
	if int64(h.LastOffsetDelta) != int64(h.RecordCount)-1 {
		return h, &BatchError{Reason: fmt.Sprintf("last offset delta %d does not match %d records", h.LastOffsetDelta, h.RecordCount), kind: ErrInvalidRecord}
	}
	return h, nil
}

// ValidateBatches checks every batch in records, a produce request's record
// set, and returns how many batches and records it holds.
func ValidateBatches(records []byte) (batches, recordCount int, err error) {
	if len(records) == 0 {
		return 0, 0, &BatchError{Reason: "no record batch", kind: ErrInvalidRecord}
	}
	for position := 0; position < len(records); {
		h, err := ValidateBatch(records[position:])
		if err != nil {
			var batchErr *BatchError
			if errors.As(err, &batchErr) {
				batchErr.Position = position
			}
			return 0, 0, err
		}
		batches++
		recordCount += int(h.RecordCount)
		position += h.Size()
	}
	return batches, recordCount, nil
}

// setBaseOffset rewrites the base offset; the CRC does not cover it.
func setBaseOffset(b []byte, offset int64) {
	binary.BigEndian.PutUint64(b[batchBaseOffsetAt:], uint64(offset))
}

// setLeaderEpoch rewrites the partition leader epoch; the CRC does not cover it.
func setLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[batchLeaderEpochAt:], uint32(epoch))
}

// setLogAppendTime marks the batch as carrying the broker's append time,
// sets its max timestamp to ts, and recomputes the CRC-32C.
func setLogAppendTime(b []byte, size int, ts int64) {
	attributes := binary.BigEndian.Uint16(b[batchAttributesAt:]) | attributeLogAppendTime
	binary.BigEndian.PutUint16(b[batchAttributesAt:], attributes)
	binary.BigEndian.PutUint64(b[batchMaxTimestampAt:], uint64(ts))
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttributesAt:size], crc32c))
}

// WalkBatchHeaders calls fn with the header of each batch in records,
// checking only that each header and length fit; Append checks the rest.
// It stops at the first error fn returns.
func WalkBatchHeaders(records []byte, fn func(BatchHeader) error) error {
	for at := 0; at < len(records); {
		if len(records)-at < batchHeaderSize {
			return &BatchError{Position: at, Reason: "truncated batch header", kind: ErrCorruptMessage}
		}
		h := parseBatchHeader(records[at:])
		if h.Length < batchHeaderSize-batchLogOverhead || int64(h.Length) > int64(len(records)-at-batchLogOverhead) {
			return &BatchError{Position: at, Reason: fmt.Sprintf("batch length %d does not fit", h.Length), kind: ErrCorruptMessage}
		}
		if err := fn(h); err != nil {
			return err
		}
		at += h.Size()
	}
	return nil
}
