package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kqstack/kqstack/broker/storage"
)

// logStore is the Raft log and the Raft vote, in files of the quorum's
// directory, through storage.FS:
//
//	raft.log    frame*                 append-only; the log's entries
//	frame       | size u32 | crc32c u32 | entry |      crc covers entry
//	entry       | index u64 | term u64 | type u8 | appended_at i64 (unix ns)
//	            | data_len u32 | data | extensions_len u32 | extensions |
//	raft.vote   | current_term u64 | last_vote_term u64 | last_vote_candidate |
//	            written temp -> fsync -> rename -> fsync dir
//
// Every append is fsynced before it returns. The entries are also kept in
// memory (the metadata log is small, and snapshots cut its head), so reads
// never touch the disk. At open a torn or CRC-failing tail, the trace of a
// crash during an append, is cut off. A failed write or fsync fails the
// store closed: every later call returns the error, so the node stops
// taking part rather than vote or acknowledge on a log it cannot trust.
type logStore struct {
	fsys storage.FS
	dir  string

	mu      sync.Mutex
	file    storage.File
	entries []raft.Log // in index order, contiguous
	offsets []int64    // file offset of each entry's frame
	size    int64      // file size
	stable  map[string][]byte
	failed  error
}

const (
	logFileName    = "raft.log"
	stableFileName = "raft.vote"
	frameHeader    = 8
	// maxEntryBytes bounds an entry read back from disk before allocating.
	maxEntryBytes = 64 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// errNotFound is the StableStore's answer for a key never set; raft
// compares the text.
var errNotFound = errors.New("not found")

func openLogStore(fsys storage.FS, dir string) (*logStore, error) {
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, err
	}
	s := &logStore{fsys: fsys, dir: dir, stable: map[string][]byte{}}
	if err := s.readStable(); err != nil {
		return nil, err
	}
	file, err := fsys.OpenFile(filepath.Join(dir, logFileName), true)
	if err != nil {
		return nil, err
	}
	s.file = file
	if err := s.recover(); err != nil {
		_ = file.Close()
		return nil, err
	}
	return s, nil
}

// recover reads every frame; a torn tail is cut off.
func (s *logStore) recover() error {
	size, err := s.file.Size()
	if err != nil {
		return err
	}
	offset := int64(0)
	for offset < size {
		body, state, err := s.frameAt(offset, size)
		if err != nil {
			return err
		}
		switch state {
		case frameTooLong:
			// Appends write whole frames, so a torn one still has its true
			// length: an impossible one is damage, not a tear.
			return fmt.Errorf("%s is corrupt: the entry at offset %d claims more than %d bytes; restore the quorum directory from another voter", logFileName, offset, maxEntryBytes)
		case frameBadChecksum:
			if _, next, _ := s.frameAt(offset+frameHeader+int64(len(body)), size); next == frameIntact {
				return fmt.Errorf("%s is corrupt: the entry at offset %d fails its checksum and intact entries follow; restore the quorum directory from another voter", logFileName, offset)
			}
		}
		if state != frameIntact {
			break
		}
		entry, err := decodeEntry(body)
		if err != nil {
			return fmt.Errorf("%s at offset %d: %w", logFileName, offset, err)
		}
		if n := len(s.entries); n > 0 && entry.Index != s.entries[n-1].Index+1 {
			return fmt.Errorf("%s at offset %d: entry %d follows entry %d", logFileName, offset, entry.Index, s.entries[n-1].Index)
		}
		s.entries = append(s.entries, entry)
		s.offsets = append(s.offsets, offset)
		offset += frameHeader + int64(len(body))
	}
	if offset < size {
		// The tail of an append that a crash interrupted: it was never
		// acknowledged, since appends return after their fsync.
		if err := s.file.Truncate(offset); err != nil {
			return err
		}
		if err := s.file.Sync(); err != nil {
			return err
		}
	}
	s.size = offset
	return nil
}

// What frameAt found.
const (
	frameIntact      = iota
	frameTorn        // the file ends inside it
	frameTooLong     // its length is more than an entry may be
	frameBadChecksum // whole, but its checksum fails
)

// frameAt reads the frame at offset of a file of size bytes, and its body
// when the file holds it whole.
func (s *logStore) frameAt(offset, size int64) ([]byte, int, error) {
	var header [frameHeader]byte
	if size-offset < frameHeader {
		return nil, frameTorn, nil
	}
	if _, err := s.file.ReadAt(header[:], offset); err != nil {
		return nil, frameTorn, err
	}
	length := int64(binary.BigEndian.Uint32(header[:4]))
	if length > maxEntryBytes {
		return nil, frameTooLong, nil
	}
	if offset+frameHeader+length > size {
		return nil, frameTorn, nil
	}
	body := make([]byte, length)
	if _, err := s.file.ReadAt(body, offset+frameHeader); err != nil {
		return nil, frameTorn, err
	}
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(header[4:]) {
		return body, frameBadChecksum, nil
	}
	return body, frameIntact, nil
}

// lastCommandIndex is the index of the newest entry of records (not one of
// raft's own) at or below index, 0 if none is kept.
func (s *logStore) lastCommandIndex(index uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.entries) - 1; i >= 0; i-- {
		if e := s.entries[i]; e.Index <= index && e.Type == raft.LogCommand {
			return e.Index
		}
	}
	return 0
}

// lastIndex is LastIndex without its error (a failed store keeps its
// entries in memory).
func (s *logStore) lastIndex() uint64 {
	last, _ := s.LastIndex()
	return last
}

// IsMonotonic tells raft (MonotonicLogStore) that entries must follow one
// another: after installing a snapshot it empties the log before storing
// what follows the snapshot, rather than leave a gap.
func (s *logStore) IsMonotonic() bool { return true }

// FirstIndex is the index of the oldest entry kept, 0 when empty.
func (s *logStore) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return 0, s.failed
	}
	return s.entries[0].Index, s.failed
}

// LastIndex is the index of the newest entry, 0 when empty.
func (s *logStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.entries) == 0 {
		return 0, s.failed
	}
	return s.entries[len(s.entries)-1].Index, s.failed
}

// GetLog reads the entry at index.
func (s *logStore) GetLog(index uint64, log *raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	i, ok := s.position(index)
	if !ok {
		return raft.ErrLogNotFound
	}
	*log = s.entries[i]
	return nil
}

func (s *logStore) position(index uint64) (int, bool) {
	if len(s.entries) == 0 || index < s.entries[0].Index || index > s.entries[len(s.entries)-1].Index {
		return 0, false
	}
	return int(index - s.entries[0].Index), true
}

// StoreLog appends one entry.
func (s *logStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs appends entries with one write and one fsync.
func (s *logStore) StoreLogs(logs []*raft.Log) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	var frames []byte
	offsets := make([]int64, 0, len(logs))
	next := uint64(0)
	if n := len(s.entries); n > 0 {
		next = s.entries[n-1].Index + 1
	}
	for _, log := range logs {
		if len(log.Data)+len(log.Extensions)+64 > maxEntryBytes {
			return fmt.Errorf("raft log: entry %d is %d bytes; entries are at most %d", log.Index, len(log.Data)+len(log.Extensions), maxEntryBytes)
		}
		if next != 0 && log.Index != next {
			return fmt.Errorf("raft log: entry %d appended after %d", log.Index, next-1)
		}
		next = log.Index + 1
		offsets = append(offsets, s.size+int64(len(frames)))
		frames = appendFrame(frames, *log)
	}
	if _, err := s.file.WriteAt(frames, s.size); err != nil {
		return s.fail(err)
	}
	if err := s.file.Sync(); err != nil {
		return s.fail(err)
	}
	for _, log := range logs {
		s.entries = append(s.entries, *log)
	}
	s.offsets = append(s.offsets, offsets...)
	s.size += int64(len(frames))
	return nil
}

// DeleteRange removes entries from to to. Raft removes either a suffix (a
// conflicting tail on a follower) or a prefix (entries a snapshot holds).
func (s *logStore) DeleteRange(from, to uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if len(s.entries) == 0 {
		return nil
	}
	first, last := s.entries[0].Index, s.entries[len(s.entries)-1].Index
	from, to = max(from, first), min(to, last)
	if from > to {
		return nil
	}
	switch {
	case to == last: // a suffix: cut the file
		i, _ := s.position(from)
		if err := s.file.Truncate(s.offsets[i]); err != nil {
			return s.fail(err)
		}
		if err := s.file.Sync(); err != nil {
			return s.fail(err)
		}
		s.size = s.offsets[i]
		s.entries, s.offsets = s.entries[:i], s.offsets[:i]
		return nil
	case from == first: // a prefix: rewrite what is kept
		i, _ := s.position(to + 1)
		return s.rewrite(s.entries[i:])
	}
	return fmt.Errorf("raft log: deleting entries %d to %d from the middle of %d to %d", from, to, first, last)
}

// rewrite replaces the log file with the kept entries: temp, fsync,
// rename, fsync directory.
func (s *logStore) rewrite(kept []raft.Log) error {
	var frames []byte
	offsets := make([]int64, 0, len(kept))
	for _, e := range kept {
		offsets = append(offsets, int64(len(frames)))
		frames = appendFrame(frames, e)
	}
	path := filepath.Join(s.dir, logFileName)
	if err := storage.WriteFileAtomic(s.fsys, path, frames); err != nil {
		return s.fail(err)
	}
	file, err := s.fsys.OpenFile(path, false)
	if err != nil {
		return s.fail(err)
	}
	_ = s.file.Close()
	s.file, s.size = file, int64(len(frames))
	s.entries, s.offsets = append([]raft.Log(nil), kept...), offsets
	return nil
}

func (s *logStore) fail(err error) error {
	s.failed = fmt.Errorf("raft log in %s failed and is closed; restart the broker once the disk is fixed: %w", s.dir, err)
	return s.failed
}

// Close closes the log file.
func (s *logStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.Close()
}

// Set, Get, SetUint64 and GetUint64 are the StableStore: raft's current
// term and vote, written durably before raft acts on them.
func (s *logStore) Set(key []byte, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	s.stable[string(key)] = append([]byte(nil), value...)
	return s.writeStable()
}

func (s *logStore) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	value, ok := s.stable[string(key)]
	if !ok {
		return nil, errNotFound
	}
	return append([]byte(nil), value...), nil
}

func (s *logStore) SetUint64(key []byte, value uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, value))
}

func (s *logStore) GetUint64(key []byte) (uint64, error) {
	value, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(value) != 8 {
		return 0, fmt.Errorf("%s: key %q holds %d bytes, want 8", stableFileName, key, len(value))
	}
	return binary.BigEndian.Uint64(value), nil
}

// The vote file: | crc32c u32 | (key_len u16 | key | value_len u32 | value)* |.
func (s *logStore) writeStable() error {
	var body []byte
	for key, value := range s.stable {
		body = binary.BigEndian.AppendUint16(body, uint16(len(key)))
		body = append(body, key...)
		body = binary.BigEndian.AppendUint32(body, uint32(len(value)))
		body = append(body, value...)
	}
	data := binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, crcTable))
	if err := storage.WriteFileAtomic(s.fsys, filepath.Join(s.dir, stableFileName), append(data, body...)); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *logStore) readStable() error {
	file, err := s.fsys.OpenFile(filepath.Join(s.dir, stableFileName), false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer file.Close()
	size, err := file.Size()
	if err != nil {
		return err
	}
	data := make([]byte, min(size, 1<<20))
	if _, err := file.ReadAt(data, 0); err != nil {
		return err
	}
	// Written by rename, so never torn: a bad checksum is corruption.
	if len(data) < 4 || crc32.Checksum(data[4:], crcTable) != binary.BigEndian.Uint32(data) {
		return fmt.Errorf("%s is corrupt: raft's term and vote cannot be trusted", filepath.Join(s.dir, stableFileName))
	}
	for body := data[4:]; len(body) > 0; {
		if len(body) < 2 {
			return fmt.Errorf("%s: truncated", stableFileName)
		}
		keyLen := int(binary.BigEndian.Uint16(body))
		if len(body) < 2+keyLen+4 {
			return fmt.Errorf("%s: truncated", stableFileName)
		}
		key := string(body[2 : 2+keyLen])
		valueLen := int(binary.BigEndian.Uint32(body[2+keyLen:]))
		body = body[2+keyLen+4:]
		if len(body) < valueLen {
			return fmt.Errorf("%s: truncated", stableFileName)
		}
		s.stable[key] = append([]byte(nil), body[:valueLen]...)
		body = body[valueLen:]
	}
	return nil
}

func appendFrame(dst []byte, log raft.Log) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, frameHeader)...)
	dst = binary.BigEndian.AppendUint64(dst, log.Index)
	dst = binary.BigEndian.AppendUint64(dst, log.Term)
	dst = append(dst, byte(log.Type))
	dst = binary.BigEndian.AppendUint64(dst, uint64(log.AppendedAt.UnixNano()))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(log.Data)))
	dst = append(dst, log.Data...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(log.Extensions)))
	dst = append(dst, log.Extensions...)
	body := dst[start+frameHeader:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(body)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(body, crcTable))
	return dst
}

func decodeEntry(body []byte) (raft.Log, error) {
	const fixed = 8 + 8 + 1 + 8 + 4
	if len(body) < fixed+4 {
		return raft.Log{}, errors.New("entry too short")
	}
	log := raft.Log{Index: binary.BigEndian.Uint64(body), Term: binary.BigEndian.Uint64(body[8:]), Type: raft.LogType(body[16]),
		AppendedAt: time.Unix(0, int64(binary.BigEndian.Uint64(body[17:])))}
	dataLen := int(binary.BigEndian.Uint32(body[25:]))
	rest := body[fixed:]
	if dataLen > len(rest)-4 {
		return raft.Log{}, errors.New("entry data overruns the entry")
	}
	log.Data = append([]byte(nil), rest[:dataLen]...)
	rest = rest[dataLen:]
	extLen := int(binary.BigEndian.Uint32(rest))
	if extLen != len(rest)-4 {
		return raft.Log{}, errors.New("entry extensions do not fill the entry")
	}
	if extLen > 0 {
		log.Extensions = append([]byte(nil), rest[4:]...)
	}
	return log, nil
}
