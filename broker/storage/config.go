package storage

import (
	"fmt"
	"math"
	"time"
)

// Config is the per-partition log configuration (Kafka's topic-level
// segment.bytes, segment.ms, index.interval.bytes, retention.ms,
// retention.bytes, flush.ms, flush.messages, and the compaction settings
// cleanup.policy, delete.retention.ms, min.cleanable.dirty.ratio,
// min.compaction.lag.ms and max.compaction.lag.ms).
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

	// Cleanup is cleanup.policy: whether old segments are deleted by
	// RetentionAge and RetentionBytes, the log is compacted (only the last
	// record of each key is kept; see log_compact.go), or both.
	Cleanup CleanupPolicy
	// DeleteRetention (delete.retention.ms): how long a compacted log keeps
	// a tombstone, a record with a null value, once the log's time (the
	// largest timestamp below the cleaning point) passed the tombstone's.
	DeleteRetention time.Duration
	// MinCleanableDirtyRatio (min.cleanable.dirty.ratio): the cleaner runs
	// once the bytes not yet cleaned are more than this share of the log.
	MinCleanableDirtyRatio float64
	// MinCompactionLag (min.compaction.lag.ms): a segment holding a record
	// younger than this is not cleaned yet.
	MinCompactionLag time.Duration
	// MaxCompactionLag (max.compaction.lag.ms): a log whose oldest
	// uncleaned batch is older than this is cleaned whatever its dirty
	// ratio. 0: no limit.
	MaxCompactionLag time.Duration
	// CleanerBufferBytes bounds the cleaner's key map, as Kafka's
	// log.cleaner.dedupe.buffer.size does: a log with more distinct keys
	// to clean than fit is cleaned in several passes. 0: the default.
	CleanerBufferBytes int64
	// CleanerBytesPerSecond bounds what the cleaner reads and writes per
	// second (Kafka's log.cleaner.io.max.bytes.per.second), so cleaning
	// leaves the disk to appends. 0: no limit, Kafka's default.
	CleanerBytesPerSecond int64
}

// CleanupPolicy is cleanup.policy. The zero value is delete.
type CleanupPolicy int

const (
	// CleanupDelete deletes whole segments by age and size (retention).
	CleanupDelete CleanupPolicy = iota
	// CleanupCompact keeps the last record of each key and never deletes
	// by age or size.
	CleanupCompact
	// CleanupCompactDelete compacts and deletes by age and size.
	CleanupCompactDelete
)

// Compacts reports whether the log is compacted.
func (p CleanupPolicy) Compacts() bool { return p == CleanupCompact || p == CleanupCompactDelete }

// Deletes reports whether retention deletes old segments.
func (p CleanupPolicy) Deletes() bool { return p == CleanupDelete || p == CleanupCompactDelete }

func (p CleanupPolicy) String() string {
	switch p {
	case CleanupDelete:
		return "delete"
	case CleanupCompact:
		return "compact"
	case CleanupCompactDelete:
		return "compact,delete"
	}
	return fmt.Sprintf("CleanupPolicy(%d)", int(p))
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

	DefaultDeleteRetention        = 24 * time.Hour
	DefaultMinCleanableDirtyRatio = 0.5
	DefaultCleanerBufferBytes     = 128 << 20

	// minCleanerBufferBytes leaves room for a few dozen keys.
	minCleanerBufferBytes = 1 << 10

	// maxSegmentBytes keeps file positions within the index's 32 bits.
	maxSegmentBytes = math.MaxInt32
	// minSegmentBytes leaves room for at least one batch header.
	minSegmentBytes = batchHeaderSize
)

// DefaultConfig returns the defaults: 1 GiB segments rolled weekly, an index
// entry every 4 KiB, 7 days' retention, no size limit, durable appends
// fsynced before they are acknowledged, and, for a log that is made
// compacted, Kafka's cleaner defaults (tombstones kept a day, cleaning
// at half dirty, no lag, a 128 MiB key map).
func DefaultConfig() Config {
	return Config{
		SegmentBytes:           DefaultSegmentBytes,
		SegmentAge:             DefaultSegmentAge,
		IndexIntervalBytes:     DefaultIndexIntervalBytes,
		RetentionAge:           DefaultRetentionAge,
		RetentionBytes:         DefaultRetentionBytes,
		Flush:                  FlushPolicy{Mode: FlushOnDurable},
		Cleanup:                CleanupDelete,
		DeleteRetention:        DefaultDeleteRetention,
		MinCleanableDirtyRatio: DefaultMinCleanableDirtyRatio,
		CleanerBufferBytes:     DefaultCleanerBufferBytes,
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
	case c.Cleanup < CleanupDelete || c.Cleanup > CleanupCompactDelete:
		return fmt.Errorf("cleanup policy %d: must be CleanupDelete, CleanupCompact or CleanupCompactDelete", int(c.Cleanup))
	case c.DeleteRetention < 0:
		return fmt.Errorf("delete retention %v: must be 0 or positive", c.DeleteRetention)
	case !(c.MinCleanableDirtyRatio >= 0 && c.MinCleanableDirtyRatio <= 1):
		return fmt.Errorf("min cleanable dirty ratio %v: must be between 0 and 1", c.MinCleanableDirtyRatio)
	case c.MinCompactionLag < 0:
		return fmt.Errorf("min compaction lag %v: must be 0 or positive", c.MinCompactionLag)
	case c.MaxCompactionLag < 0:
		return fmt.Errorf("max compaction lag %v: must be 0 (no limit) or positive", c.MaxCompactionLag)
	case c.CleanerBytesPerSecond < 0:
		return fmt.Errorf("cleaner bytes per second %d: must be 0 (no limit) or positive", c.CleanerBytesPerSecond)
	case c.CleanerBufferBytes != 0 && c.CleanerBufferBytes < minCleanerBufferBytes:
		return fmt.Errorf("cleaner buffer bytes %d: must be 0 (the default, %d) or at least %d", c.CleanerBufferBytes, DefaultCleanerBufferBytes, minCleanerBufferBytes)
	}
	return nil
}
