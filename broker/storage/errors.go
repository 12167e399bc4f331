package storage

import (
	"errors"
	"fmt"
)

var (
	// ErrOffsetOutOfRange: the offset is below the log start offset or above
	// the high watermark. Kafka error OFFSET_OUT_OF_RANGE (1).
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrLogOffline: a write or fsync failed, so what is on disk is unknown;
	// the log takes no more appends until it is reopened and recovered.
	// Kafka error KAFKA_STORAGE_ERROR (56).
	ErrLogOffline = errors.New("log offline after a storage error")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("log closed")
	// ErrLogCorrupt is wrapped by *CorruptionError.
	ErrLogCorrupt = errors.New("log corrupt")
)

// CorruptionError reports damage that is not a torn tail: a bad batch with
// intact data after it. Open refuses to cut such data; an operator must look.
type CorruptionError struct {
	Segment  string // the .log file
	Position int64  // byte position of the damaged batch
	Offset   int64  // the offset the batch should start at
	Reason   string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("%s: corrupt record batch at byte %d (offset %d) with intact batches after it: %s; "+
		"the partition stays offline: copy the directory aside, then truncate the file at that byte to drop the damaged data and everything after it",
		e.Segment, e.Position, e.Offset, e.Reason)
}

func (e *CorruptionError) Unwrap() error { return ErrLogCorrupt }
