package storage

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
)

// highWatermarkFile keeps a replicated log's high watermark across
// restarts (Kafka's replication-offset-checkpoint, one per log here): a
// broker that starts again, and leads, serves what was committed before
// it stopped instead of waiting for every follower to fetch.
//
//	| high watermark (int64, big endian) |
//
// It is written every few seconds and at a clean close, so it may be
// behind, never ahead: it only ever holds a value the HW had.
const highWatermarkFile = "high-watermark-checkpoint"

// SavedHighWatermark is the high watermark found at open (clamped to the
// log), -1 when none was saved.
func (l *Log) SavedHighWatermark() int64 {
	saved := l.savedHighWatermark.Load()
	if saved < 0 {
		return -1
	}
	return min(max(saved, l.LogStartOffset()), l.LogEndOffset())
}

// SaveHighWatermark writes the high watermark set by replication, if it
// moved since the last save.
func (l *Log) SaveHighWatermark() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.saveHighWatermarkLocked()
}

func (l *Log) saveHighWatermarkLocked() error {
	hw := l.highWatermark.Load()
	if hw < 0 || hw == l.savedHighWatermark.Load() {
		return nil
	}
	return l.writeHighWatermarkLocked(l.HighWatermark())
}

func (l *Log) writeHighWatermarkLocked(hw int64) error {
	if err := WriteFileAtomic(l.fsys, filepath.Join(l.dir, highWatermarkFile), binary.BigEndian.AppendUint64(nil, uint64(hw))); err != nil {
		return err
	}
	l.savedHighWatermark.Store(hw)
	return nil
}

func (l *Log) loadHighWatermark() error {
	data, err := ReadWholeFile(l.fsys, filepath.Join(l.dir, highWatermarkFile), 64)
	switch {
	case isNotExist(err):
		l.savedHighWatermark.Store(-1)
		return nil
	case err != nil:
		return err
	case len(data) != 8:
		return fmt.Errorf("%s: %d bytes, want 8", highWatermarkFile, len(data))
	}
	l.savedHighWatermark.Store(int64(binary.BigEndian.Uint64(data)))
	return nil
}
