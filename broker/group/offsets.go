package group

import (
	"fmt"
	"log/slog"
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
	writer Writer
	// ownsLog: Close closes the log (a private one; a partition's belongs
	// to the broker's partition).
	ownsLog bool
	clock   clock.Clock
	logger  *slog.Logger

	// queueMu guards queue and loaded. It is taken under Coordinator.mu
	// and holds no other lock.
	queueMu sync.Mutex
	queue   []*pendingWrite
	loaded  map[string]*storedGroup // replayed at open, until the coordinator takes it
	taken   bool

	// writeMu is held by whoever appends the queue. It is never taken
	// under Coordinator.mu, so no disk write or fsync happens under that
	// lock.
	writeMu sync.Mutex
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
	baseOffset int64        // of the first record
	wait       func() error // until durable (and replicated); nil when there is nothing to wait for
}

// Writer appends the store's batches to its log: the log itself for a
// private log (LocalWriter), or, for a partition of the replicated
// __consumer_offsets, the leader's replica: batches stamped with its
// leader epoch and waited for until the in-sync replicas have them.
type Writer interface {
	// Append appends batches (several, back to back). wait returns once
	// they are durable, when durable is set or the flush policy wants it,
	// and replicated.
	Append(batches []byte, durable bool) (baseOffset int64, wait func() error, err error)
}

// LocalWriter writes to a log of this broker alone.
type LocalWriter struct{ Log *storage.Log }

// Append appends with an fsync deferred to wait (shared by every waiter:
// group commit).
func (w LocalWriter) Append(batches []byte, durable bool) (int64, func() error, error) {
	result, err := w.Log.Append(batches, storage.AppendOptions{Durable: durable, DeferDurability: true})
	if err != nil {
		return 0, nil, err
	}
	var wait func() error
	if result.DurableAt > 0 {
		wait = func() error { return w.Log.WaitDurable(result.DurableAt) }
	}
	return result.BaseOffset, wait, nil
}

// OpenOffsetStore opens (or creates) a private offsets log in dir and
// replays it.
func OpenOffsetStore(dir string, opts storage.Options) (*OffsetStore, error) {
	log, err := storage.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	s, err := LoadOffsetStore(log, LocalWriter{log}, log.HighWatermark(), opts.Clock, opts.Logger)
	if err != nil {
		_ = log.Close()
		return nil, err
	}
	s.ownsLog = true
	return s, nil
}

// LoadOffsetStore replays log up to end and writes through w from then on:
// a new leader of a partition of __consumer_offsets loads it to its log
// end (what it has is what its followers will have). The log stays
// open when the store is closed.
func LoadOffsetStore(log *storage.Log, w Writer, end int64, clk clock.Clock, logger *slog.Logger) (*OffsetStore, error) {
	s := &OffsetStore{log: log, writer: w, clock: clk, logger: logger}
	if s.clock == nil {
		s.clock = clock.System{}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	live, err := s.liveRecords(end)
	if err != nil {
		return nil, fmt.Errorf("replaying %s: %w", log.Dir(), err)
	}
	s.loaded = loadGroups(live)
	return s, nil
}

// Close closes the offsets log if the store opened it.
func (s *OffsetStore) Close() error {
	if !s.ownsLog {
		return nil
	}
	return s.log.Close()
}

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
	offset, wait, err := s.writer.Append(batches, durable)
	for _, w := range writes {
		w.err, w.baseOffset = err, offset
		if w.durable || !durable {
			// A write that did not ask for an fsync waits for one only
			// when the flush policy wants it now and no durable write of
			// this append will run it.
			w.wait = wait
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
	if w.wait != nil {
		return w.wait()
	}
	return nil
}
