package group

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/storage"
)

// OffsetStore persists what the coordinator decides: committed offsets and
// group metadata, in an internal log, __consumer_offsets, in Kafka's own
// record format (see records.go). It keeps no state of its own: the log is
// replayed at open and handed to the coordinator once (NewCoordinator),
// which from then on alone knows which groups exist and what they hold.
//
// Writes are queued by the coordinator under its lock, so they are in the
// order it decided them, and appended after it lets go of the lock: by
// flush, in queue order, several queued batches in one append. A caller
// then waits for its batch: appended, and durable when it asked for it.
type OffsetStore struct {
	log    *storage.Log
	clock  clock.Clock
	logger *slog.Logger

	// queueMu guards queue and loaded. It is taken under Coordinator.mu
	// and holds no other lock.
	queueMu sync.Mutex
	queue   []*pendingWrite
	loaded  map[string]*storedGroup // replayed at open, until the coordinator takes it
	taken   bool

	// writeMu is held by whoever appends the queue, and by Compact, which
	// must see every appended record in the log. It is never taken under
	// Coordinator.mu, so no disk write or fsync happens under that lock.
	writeMu   sync.Mutex
	liveBytes int64 // under writeMu: the live records' size at open or at the last compaction
}

// storedGroup is a group as the log holds it.
type storedGroup struct {
	offsets  map[TopicPartition]offsetEntry
	metadata *GroupRecord
}

// pendingWrite is one batch of records queued for the log.
type pendingWrite struct {
	batch   []byte
	records int
	durable bool

	done       chan struct{} // closed once appended, or failed
	err        error
	baseOffset int64 // of the first record
	durableAt  int64 // for WaitDurable; 0 when no fsync is needed
}

// OpenOffsetStore opens (or creates) the offsets log in dir and replays it.
func OpenOffsetStore(dir string, opts storage.Options) (*OffsetStore, error) {
	log, err := storage.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	s := &OffsetStore{log: log, clock: opts.Clock, logger: opts.Logger}
	if s.clock == nil {
		s.clock = clock.System{}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	live, err := s.liveRecords(log.HighWatermark())
	if err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("replaying %s: %w", dir, err)
	}
	s.loaded = loadGroups(live)
	s.liveBytes = live.size()
	return s, nil
}

// Close closes the offsets log.
func (s *OffsetStore) Close() error { return s.log.Close() }

// Log is the offsets log, for maintenance.
func (s *OffsetStore) Log() *storage.Log { return s.log }

// takeLoaded hands the replayed groups to the coordinator, once.
func (s *OffsetStore) takeLoaded() map[string]*storedGroup {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	if s.taken {
		panic("group: the offsets store already has a coordinator; open the store again for another")
	}
	loaded := s.loaded
	s.loaded, s.taken = nil, true
	return loaded
}

// enqueue queues a batch of records. The coordinator calls it under its
// lock; the batch is appended by the next flush.
func (s *OffsetStore) enqueue(records []record, timestamp int64, durable bool) *pendingWrite {
	w := &pendingWrite{batch: encodeBatch(records, timestamp), records: len(records), durable: durable, done: make(chan struct{})}
	s.queueMu.Lock()
	s.queue = append(s.queue, w)
	s.queueMu.Unlock()
	return w
}

// flush appends every queued batch, in queue order, with one append. A
// batch queued before flush is called is appended when flush returns (by
// this call or by the one under way).
func (s *OffsetStore) flush() {
	s.queueMu.Lock()
	empty := len(s.queue) == 0
	s.queueMu.Unlock()
	if empty {
		return // a batch taken by a flush under way: its owner waits on done
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.queueMu.Lock()
	writes := s.queue
	s.queue = nil
	s.queueMu.Unlock()
	if len(writes) == 0 {
		return
	}
	var batches []byte
	durable := false
	for _, w := range writes {
		batches = append(batches, w.batch...)
		durable = durable || w.durable
	}
	// Durability is waited for by each caller, outside every lock, and
	// shared (group commit).
	result, err := s.log.Append(batches, storage.AppendOptions{Durable: durable, DeferDurability: true})
	offset := result.BaseOffset
	for _, w := range writes {
		w.err, w.baseOffset = err, offset
		if w.durable || !durable {
			// A write that did not ask for an fsync waits for one only
			// when the flush policy wants it now and no durable write of
			// this append will run it.
			w.durableAt = result.DurableAt
		}
		w.batch = nil
		offset += int64(w.records)
		close(w.done)
	}
}

// appended waits until w is in the log.
func (s *OffsetStore) appended(w *pendingWrite) error {
	<-w.done
	return w.err
}

// durable waits until w is in the log and, if it asked for it or the flush
// policy wants an fsync now, durable.
func (s *OffsetStore) durable(w *pendingWrite) error {
	if err := s.appended(w); err != nil {
		return err
	}
	if w.durableAt > 0 {
		return s.log.WaitDurable(w.durableAt)
	}
	return nil
}

// compactionMinBytes: the log is not compacted below this size.
const compactionMinBytes = 64 << 20

// MaybeCompact compacts the log once it is large and mostly superseded
// records: at least four times what was live at open or at the last
// compaction.
func (s *OffsetStore) MaybeCompact() error {
	s.writeMu.Lock()
	live := s.liveBytes
	s.writeMu.Unlock()
	if size := s.log.Size(); size < compactionMinBytes || size < 4*live {
		return nil
	}
	return s.Compact()
}

// Compact rewrites the live records (the last one of each key, as it was
// written: group metadata with its members, offsets with their commit
// time) at the end of the log, durably, in the order they were written,
// then moves the log start to them so that the segments before are
// deleted. It reads them from the log itself, holding appends back
// meanwhile: a batch appended but not yet durable is in the rewrite.
func (s *OffsetStore) Compact() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	live, err := s.liveRecords(s.log.HighWatermark())
	if err != nil {
		return err
	}
	records := make([]liveRecord, 0, len(live))
	for _, r := range live {
		records = append(records, r)
	}
	sort.Slice(records, func(i, j int) bool { return records[i].logOffset < records[j].logOffset })
	now := s.clock.Now().UnixMilli()
	start := s.log.LogEndOffset()
	var written int64
	for len(records) > 0 {
		n := min(len(records), 1000)
		batch := make([]record, n)
		for i, r := range records[:n] {
			batch[i] = record{key: r.key, value: r.value}
		}
		encoded := encodeBatch(batch, now)
		written += int64(len(encoded))
		if _, err := s.log.Append(encoded, storage.AppendOptions{Durable: true}); err != nil {
			return err
		}
		records = records[n:]
	}
	if _, err := s.log.DeleteRecords(start); err != nil {
		return err
	}
	s.liveBytes = written
	return nil
}
