package storage

import (
	"fmt"
	"math"
	"time"
)

// Config is the per-partition log configuration (Kafka's topic-level
// segment.bytes, segment.ms, index.interval.bytes, retention.ms,
// retention.bytes, flush.ms and flush.messages).
type Config struct {
	// SegmentBytes: the active segment rolls before it would grow past this.
	SegmentBytes int64
	// SegmentAge: the active segment rolls once its first batch is older.
	SegmentAge time.Duration
	// IndexIntervalBytes: bytes of batches between two offset index entries.
	IndexIntervalBytes int
	// RetentionAge: segments whose newest record is older are deleted.
	// Negative keeps data forever.
	RetentionAge time.Duration
	// RetentionBytes: the oldest segments are deleted while the log would
	// stay at least this large without them. Negative means no size limit.
	RetentionBytes int64
	// Flush says when appends become durable.
	Flush FlushPolicy
}

// FlushMode says who waits for fsync.
type FlushMode int

const (
	// FlushOnDurable is the default: an append whose caller asks for
	// durability (acks=all) is acknowledged only after an fsync covers it.
	// Concurrent durable appends share fsyncs (group commit).
	FlushOnDurable FlushMode = iota
	// FlushByInterval acknowledges every append once written to the OS; the
	// log is fsynced after FlushPolicy.Messages records or FlushPolicy.Interval,
	// whichever comes first. A crash of the machine (not of the broker
	// process) can lose the acknowledged appends since the last flush.
	FlushByInterval
)

// FlushPolicy chooses between safety and speed.
type FlushPolicy struct {
	Mode FlushMode
	// Messages: fsync once this many records were appended since the last
	// fsync. 0 turns it off.
	Messages int64
	// Interval: Maintain fsyncs when unflushed data is older than this.
	// 0 turns it off.
	Interval time.Duration
}

// Defaults, as Kafka's.
const (
	DefaultSegmentBytes       = 1 << 30
	DefaultSegmentAge         = 7 * 24 * time.Hour
	DefaultIndexIntervalBytes = 4096
	DefaultRetentionAge       = 7 * 24 * time.Hour
	DefaultRetentionBytes     = -1

	// maxSegmentBytes keeps file positions within the index's 32 bits.
	maxSegmentBytes = math.MaxInt32
	// minSegmentBytes leaves room for at least one batch header.
	minSegmentBytes = batchHeaderSize
)

// DefaultConfig returns the defaults: 1 GiB segments rolled weekly, an index
// entry every 4 KiB, 7 days' retention, no size limit, and durable appends
// fsynced before they are acknowledged.
func DefaultConfig() Config {
	return Config{
		SegmentBytes:       DefaultSegmentBytes,
		SegmentAge:         DefaultSegmentAge,
		IndexIntervalBytes: DefaultIndexIntervalBytes,
		RetentionAge:       DefaultRetentionAge,
		RetentionBytes:     DefaultRetentionBytes,
		Flush:              FlushPolicy{Mode: FlushOnDurable},
	}
}

// Validate names the first setting that is out of range.
func (c Config) Validate() error {
	switch {
	case c.SegmentBytes < minSegmentBytes || c.SegmentBytes > maxSegmentBytes:
		return fmt.Errorf("segment bytes %d: must be between %d and %d", c.SegmentBytes, minSegmentBytes, maxSegmentBytes)
	case c.SegmentAge <= 0:
		return fmt.Errorf("segment age %v: must be positive", c.SegmentAge)
	case c.IndexIntervalBytes < 1:
		return fmt.Errorf("index interval bytes %d: must be at least 1", c.IndexIntervalBytes)
	case c.Flush.Mode != FlushOnDurable && c.Flush.Mode != FlushByInterval:
		return fmt.Errorf("flush mode %d: must be FlushOnDurable or FlushByInterval", c.Flush.Mode)
	case c.Flush.Messages < 0:
		return fmt.Errorf("flush messages %d: must be 0 (off) or positive", c.Flush.Messages)
	case c.Flush.Interval < 0:
		return fmt.Errorf("flush interval %v: must be 0 (off) or positive", c.Flush.Interval)
	}
	return nil
}
