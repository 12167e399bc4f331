package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kqstack/kqstack/broker/clock"
)

const (
	cleanShutdownFile  = "clean-shutdown"
	logStartOffsetFile = "log-start-offset"

	// indexSyncInterval bounds how much log an unclean start-up rescans: the
	// active segment's index files are written and fsynced at least once per
	// this many bytes of log.
	indexSyncInterval = 64 << 20
	// indexWriteBatch is how much index data is gathered before one write.
	indexWriteBatch = 4096
)

// Options are what Open needs besides the directory. Zero values take the
// defaults: the OS file system, the system clock, slog's default logger and
// DefaultConfig.
type Options struct {
	FS     FS
	Clock  clock.Clock
	Logger *slog.Logger
	Config Config
}

// Log is one partition's log. All methods are safe for concurrent use.
//
// Locks, in the order they are taken: cleaner.filesMu (the cleaner's
// swaps, retention, DeleteRecords, truncation), then appendMu (appends,
// rolls, retention, DeleteRecords, Close), then segmentsMu (the segment list; readers hold it
// shared), then each segment's mu. groupCommit.mu and durableWrites.mu are
// taken alone, never while holding another lock; they order fsyncs.
type Log struct {
	dir    string
	fsys   FS
	clock  clock.Clock
	logger *slog.Logger

	appendMu          sync.Mutex
	config            Config // under appendMu
	closed            bool   // under appendMu
	unflushedMessages int64  // under appendMu
	lastFlush         time.Time
	producers         producerStates // under appendMu; see producer_state.go
	epochs            leaderEpochs   // under appendMu; see leader_epochs.go

	segmentsMu sync.RWMutex
	segments   []*segment // by base offset; the last one is active

	indexIntervalBytes atomic.Int64 // config.IndexIntervalBytes, for readers

	logEndOffset   atomic.Int64
	logStartOffset atomic.Int64
	highWatermark  atomic.Int64 // -1: the log end; see HighWatermark
	// savedHighWatermark is the last one written (high_watermark.go).
	savedHighWatermark atomic.Int64
	syncedOffset       atomic.Int64 // every offset below is durable
	failure            atomic.Pointer[error]

	groupCommit   groupCommit
	durableWrites durableWrites
	syncCount     atomic.Int64 // fsyncs of log files by syncTo

	// appended is closed and replaced at the next append after someone took
	// it, waking long polls; appends allocate nothing when no one waits.
	appendedMu     sync.Mutex
	syncStats      syncStats // fsync latencies, for metrics
	appended       chan struct{}
	appendedWanted bool

	cleaner cleanerState // compaction; see log_compact.go
}

// Open opens the log in dir, creating it if needed, and recovers it if it
// was not closed cleanly. A *CorruptionError means the log holds damaged
// data that is not a torn tail; the partition must stay offline.
func Open(dir string, opts Options) (*Log, error) {
	if opts.FS == nil {
		opts.FS = OSFS{}
	}
	if opts.Clock == nil {
		opts.Clock = clock.System{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Config == (Config{}) {
		opts.Config = DefaultConfig()
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, fmt.Errorf("log %s: %w", dir, err)
	}
	l := &Log{
		dir:      dir,
		fsys:     opts.FS,
		clock:    opts.Clock,
		logger:   opts.Logger.With("log", dir),
		config:   opts.Config,
		appended: make(chan struct{}),
	}
	l.highWatermark.Store(-1)
	l.durableWrites.cond.L = &l.durableWrites.mu
	l.lastFlush = l.clock.Now()
	l.indexIntervalBytes.Store(int64(opts.Config.IndexIntervalBytes))
	l.setCompacted(opts.Config)
	if err := l.open(); err != nil {
		l.closeSegments()
		return nil, fmt.Errorf("open log %s: %w", dir, err)
	}
	return l, nil
}

func (l *Log) open() error {
	if err := l.fsys.MkdirAll(l.dir); err != nil {
		return err
	}
	if err := l.recoverCleanerFiles(); err != nil {
		return err
	}
	names, err := l.fsys.ReadDir(l.dir)
	if err != nil {
		return err
	}
	var bases []int64
	clean := false
	for _, name := range names {
		switch {
		case name == cleanShutdownFile:
			clean = true
		case strings.HasSuffix(name, ".tmp"):
			if err := l.fsys.Remove(filepath.Join(l.dir, name)); err != nil {
				return err
			}
		default:
			if base, ok := parseSegmentName(name); ok {
				bases = append(bases, base)
			}
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })

	startOffset, err := l.readLogStartOffset()
	if err != nil {
		return err
	}
	if len(bases) == 0 {
		if err := l.openEmpty(startOffset); err != nil {
			return err
		}
	} else if err := l.openSegments(bases, clean); err != nil {
		return err
	}
	if clean {
		// From now on a crash must trigger recovery: the marker goes before
		// the first append.
		if err := l.fsys.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil {
			return err
		}
		if err := l.fsys.SyncDir(l.dir); err != nil {
			return err
		}
	}
	l.logStartOffset.Store(max(startOffset, l.segments[0].baseOffset))
	if l.logStartOffset.Load() > l.logEndOffset.Load() {
		l.logStartOffset.Store(l.logEndOffset.Load())
	}
	l.syncedOffset.Store(l.logEndOffset.Load())
	if err := l.loadProducerStates(); err != nil {
		return err
	}
	if err := l.loadHighWatermark(); err != nil {
		return err
	}
	if err := l.loadCleanerCheckpoint(); err != nil {
		return err
	}
	return l.loadLeaderEpochs()
}

func (l *Log) openEmpty(baseOffset int64) error {
	s, err := createSegment(l.fsys, l.dir, baseOffset)
	if err != nil {
		return err
	}
	s.created = l.clock.Now()
	l.segments = []*segment{s}
	l.logEndOffset.Store(baseOffset)
	return l.fsys.SyncDir(l.dir)
}

func (l *Log) openSegments(bases []int64, clean bool) error {
	for i, base := range bases {
		s, err := openSegment(l.fsys, l.dir, base)
		if err != nil {
			return err
		}
		l.segments = append(l.segments, s)
		size, err := s.log.Size()
		if err != nil {
			return err
		}
		if i+1 < len(bases) {
			// A closed segment: trusted up to its size; its indexes load on
			// first use. Only its largest timestamp is read now.
			s.size.Store(size)
			s.nextOffset.Store(bases[i+1])
			if e, ok := s.readLastTimeIndexEntry(); ok {
				s.maxTimestamp, s.offsetOfMaxTimestamp = e.timestamp, base+int64(e.relativeOffset)
			}
			continue
		}
		s.created = l.clock.Now()
		if err := l.recoverActive(s, size, clean); err != nil {
			return err
		}
	}
	return nil
}

// readLogStartOffset reads the checkpoint DeleteRecords writes; 0 if none.
func (l *Log) readLogStartOffset() (int64, error) {
	data, err := ReadWholeFile(l.fsys, filepath.Join(l.dir, logStartOffsetFile), 64)
	if isNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(data) != 8 {
		return 0, fmt.Errorf("%s: %d bytes, want 8", logStartOffsetFile, len(data))
	}
	return int64(binary.BigEndian.Uint64(data)), nil
}

func (l *Log) writeLogStartOffset(offset int64) error {
	return WriteFileAtomic(l.fsys, filepath.Join(l.dir, logStartOffsetFile), binary.BigEndian.AppendUint64(nil, uint64(offset)))
}

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// LogStartOffset is the first offset that can be read.
func (l *Log) LogStartOffset() int64 { return l.logStartOffset.Load() }

// LogEndOffset is the offset the next appended record gets.
func (l *Log) LogEndOffset() int64 { return l.logEndOffset.Load() }

// HighWatermark is the offset below which consumers may read. A log with
// one replica has every appended record on all its replicas at once, so it
// follows the log end offset; a replicated partition's leader holds it back
// to what the in-sync replicas have (SetHighWatermark). It is never past
// the log end, nor below the log start.
func (l *Log) HighWatermark() int64 {
	end := l.logEndOffset.Load()
	hw := l.highWatermark.Load()
	if hw < 0 || hw > end {
		return end
	}
	return max(hw, l.logStartOffset.Load())
}

// Failed is the error that took the log offline (a failed write or
// fsync), nil while it is healthy.
func (l *Log) Failed() error { return l.failed() }

// SetHighWatermark sets the high watermark (replication decides it); -1
// makes it follow the log end again. A rise wakes long polls, as an append
// does: consumers read only below it.
func (l *Log) SetHighWatermark(offset int64) {
	if old := l.highWatermark.Swap(offset); old != offset {
		l.notifyAppended()
	}
}

// DurableOffset is the offset below which every record has been fsynced.
func (l *Log) DurableOffset() int64 { return l.syncedOffset.Load() }

// SyncCount is how many group-commit fsyncs the log has done.
func (l *Log) SyncCount() int64 { return l.syncCount.Load() }

// Size is the total size of the log's segment files in bytes.
func (l *Log) Size() int64 {
	l.segmentsMu.RLock()
	defer l.segmentsMu.RUnlock()
	var total int64
	for _, s := range l.segments {
		total += s.size.Load()
	}
	return total
}

// SegmentCount is the number of segments, the active one included.
func (l *Log) SegmentCount() int {
	l.segmentsMu.RLock()
	defer l.segmentsMu.RUnlock()
	return len(l.segments)
}

// Config returns the log's configuration.
func (l *Log) Config() Config {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.config
}

// SetConfig changes the configuration (as Kafka's AlterConfigs does for a
// topic); it applies to the next append and the next Maintain.
func (l *Log) SetConfig(c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.config = c
	l.indexIntervalBytes.Store(int64(c.IndexIntervalBytes))
	l.setCompacted(c)
	return nil
}

// Appended returns a channel that is closed at the next append, for long
// polls: take it, check the log, then wait on it.
func (l *Log) Appended() <-chan struct{} {
	l.appendedMu.Lock()
	defer l.appendedMu.Unlock()
	l.appendedWanted = true
	return l.appended
}

func (l *Log) notifyAppended() {
	l.appendedMu.Lock()
	if l.appendedWanted {
		close(l.appended)
		l.appended = make(chan struct{})
		l.appendedWanted = false
	}
	l.appendedMu.Unlock()
}

// Close flushes the log, writes the clean-shutdown marker and closes the
// files. A later Open then skips recovery.
func (l *Log) Close() error {
	l.cleaner.shutdown() // before appendMu: a clean takes it to finish
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if err := l.failed(); err != nil {
		// Without a marker the next Open recovers, as it must.
		return errors.Join(err, l.closeSegments())
	}
	active := l.activeSegment()
	err := active.writeIndexes(true)
	if err == nil {
		err = active.log.Sync()
	}
	if err == nil {
		err = l.writeProducerSnapshotLocked()
	}
	if err == nil {
		err = l.saveHighWatermarkLocked()
	}
	if err == nil {
		err = WriteFileAtomic(l.fsys, filepath.Join(l.dir, cleanShutdownFile), nil)
	}
	return errors.Join(err, l.closeSegments())
}

func (l *Log) closeSegments() error {
	l.segmentsMu.Lock()
	defer l.segmentsMu.Unlock()
	var errs []error
	for _, s := range l.segments {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

func (l *Log) activeSegment() *segment {
	l.segmentsMu.RLock()
	defer l.segmentsMu.RUnlock()
	return l.segments[len(l.segments)-1]
}

// failed returns the error that took the log offline, if any.
func (l *Log) failed() error {
	if err := l.failure.Load(); err != nil {
		return *err
	}
	return nil
}

// fail takes the log offline: after a failed write or fsync the state of
// the file is unknown, and retrying an fsync can report success for data
// the kernel already dropped.
func (l *Log) fail(cause error) error {
	err := fmt.Errorf("%w: %w", ErrLogOffline, cause)
	if l.failure.CompareAndSwap(nil, &err) {
		l.logger.Error("log taken offline; reopen it to recover", "err", cause)
	}
	return l.failed()
}
