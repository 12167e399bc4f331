package storage

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ErrCrashed is returned by every operation on a MemFS after it crashed.
var ErrCrashed = errors.New("memfs: crashed")

// MemFS is an in-memory FS that can simulate a machine crash. It remembers,
// for every file, what was made durable by Sync and, for every directory
// entry, what was made durable by SyncDir. Crash stops all further
// operations; Restart then builds the file system a rebooted machine would
// see: synced data intact, unsynced appends lost, kept in part, or kept with
// a torn tail of junk, and unsynced creates, links, renames and removes
// either applied or not, each name on its own (so an unsynced rename can
// lose both names).
type MemFS struct {
	mu            sync.Mutex
	current       map[string]*memNode // the namespace the running process sees
	durable       map[string]*memNode // the namespace as of the last SyncDir of each directory
	dirs          map[string]bool
	crashed       bool
	opsUntilCrash int   // when > 0, the FS crashes as this count of mutating operations reaches 0
	failNextSync  error // returned, once, by the next File.Sync or SyncDir, which then syncs nothing
}

type memNode struct {
	data      []byte
	syncedLen int
	// synced holds the durable contents when data was changed below
	// syncedLen since the last Sync; nil while the file was only appended to.
	synced []byte
}

var _ FS = (*MemFS)(nil)

// NewMemFS returns an empty MemFS.
func NewMemFS() *MemFS {
	return &MemFS{
		current: make(map[string]*memNode),
		durable: make(map[string]*memNode),
		dirs:    map[string]bool{"/": true, ".": true},
	}
}

// CrashAfter makes the FS crash just before its n-th next mutating operation
// (write, truncate, sync, rename, remove). n <= 0 disarms it.
func (m *MemFS) CrashAfter(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.opsUntilCrash = n
}

// Crash stops the machine now: every later operation returns ErrCrashed.
func (m *MemFS) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashed = true
}

// FailNextSync makes the next File.Sync or SyncDir return err without
// syncing anything, as a disk that reports a write error would.
func (m *MemFS) FailNextSync(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNextSync = err
}

// Restart returns the file system a machine would find after the crash,
// choosing among the outcomes the durability rules allow with rng. It
// crashes m first if it has not crashed yet.
func (m *MemFS) Restart(rng *rand.Rand) *MemFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashed = true
	after := NewMemFS()
	for dir := range m.dirs {
		after.dirs[dir] = true
	}
	names := make([]string, 0, len(m.current)+len(m.durable))
	for name := range m.current {
		names = append(names, name)
	}
	for name := range m.durable {
		if _, ok := m.current[name]; !ok {
			names = append(names, name)
		}
	}
	sort.Strings(names) // a fixed order keeps a seed reproducible
	survivors := make(map[*memNode]*memNode)
	for _, name := range names {
		node := m.current[name]
		if durableNode := m.durable[name]; durableNode != node && rng.IntN(2) == 0 {
			node = durableNode // the unsynced directory change was lost
		}
		if node == nil {
			continue
		}
		survivor, ok := survivors[node]
		if !ok {
			survivor = &memNode{data: node.afterCrash(rng)}
			survivor.syncedLen = len(survivor.data)
			survivors[node] = survivor
		}
		after.current[name] = survivor
		after.durable[name] = survivor
	}
	return after
}

// afterCrash returns what survives of the node's contents.
func (n *memNode) afterCrash(rng *rand.Rand) []byte {
	if n.synced != nil { // rewritten or truncated below the synced length
		if rng.IntN(2) == 0 {
			return append([]byte(nil), n.synced...)
		}
		return append([]byte(nil), n.data...)
	}
	kept := n.syncedLen + rng.IntN(len(n.data)-n.syncedLen+1)
	out := append([]byte(nil), n.data[:kept]...)
	if kept < len(n.data) && rng.IntN(3) == 0 {
		junk := make([]byte, 1+rng.IntN(96))
		if rng.IntN(2) == 0 {
			for i := range junk {
				junk[i] = byte(rng.Uint32())
			}
		}
		out = append(out, junk...) // a torn sector: zeros or noise
	}
	return out
}

// ReadFileForTest returns a copy of a file's current contents.
func (m *MemFS) ReadFileForTest(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	node, ok := m.current[filepath.Clean(name)]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), node.data...), true
}

// beginLocked counts one mutating operation and reports whether the machine
// is still up.
func (m *MemFS) beginLocked() error {
	if m.crashed {
		return ErrCrashed
	}
	if m.opsUntilCrash > 0 {
		m.opsUntilCrash--
		if m.opsUntilCrash == 0 {
			m.crashed = true
			return ErrCrashed
		}
	}
	return nil
}

func (m *MemFS) OpenFile(name string, create bool) (File, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return nil, ErrCrashed
	}
	node, ok := m.current[name]
	if !ok {
		if !create {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		if !m.dirs[filepath.Dir(name)] {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		node = &memNode{}
		m.current[name] = node
	}
	return &memFile{fs: m, node: node}, nil
}

func (m *MemFS) ReadDir(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return nil, ErrCrashed
	}
	if !m.dirs[dir] {
		return nil, &fs.PathError{Op: "readdir", Path: dir, Err: fs.ErrNotExist}
	}
	var names []string
	for name := range m.current {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	for sub := range m.dirs {
		if sub != dir && filepath.Dir(sub) == dir {
			names = append(names, filepath.Base(sub))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (m *MemFS) MkdirAll(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return ErrCrashed
	}
	for d := dir; !m.dirs[d]; d = filepath.Dir(d) {
		m.dirs[d] = true
		if strings.Count(d, string(filepath.Separator)) == 0 {
			break
		}
	}
	return nil
}

func (m *MemFS) Remove(name string) error {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.beginLocked(); err != nil {
		return err
	}
	if _, ok := m.current[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.current, name)
	return nil
}

func (m *MemFS) RemoveAll(path string) error {
	path = filepath.Clean(path)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.beginLocked(); err != nil {
		return err
	}
	under := func(name string) bool {
		return name == path || strings.HasPrefix(name, path+string(filepath.Separator))
	}
	for name := range m.current {
		if under(name) {
			delete(m.current, name)
		}
	}
	for dir := range m.dirs {
		if under(dir) {
			delete(m.dirs, dir)
		}
	}
	return nil
}

func (m *MemFS) Rename(oldName, newName string) error {
	oldName, newName = filepath.Clean(oldName), filepath.Clean(newName)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.beginLocked(); err != nil {
		return err
	}
	if m.dirs[oldName] {
		// A directory: everything under it moves.
		if m.dirs[newName] {
			return &fs.PathError{Op: "rename", Path: newName, Err: fs.ErrExist}
		}
		moved := func(name string) (string, bool) {
			if name == oldName {
				return newName, true
			}
			if rest, ok := strings.CutPrefix(name, oldName+string(filepath.Separator)); ok {
				return filepath.Join(newName, rest), true
			}
			return "", false
		}
		for dir := range m.dirs {
			if to, ok := moved(dir); ok {
				delete(m.dirs, dir)
				m.dirs[to] = true
			}
		}
		for name, node := range m.current {
			if to, ok := moved(name); ok {
				delete(m.current, name)
				m.current[to] = node
			}
		}
		return nil
	}
	node, ok := m.current[oldName]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldName, Err: fs.ErrNotExist}
	}
	delete(m.current, oldName)
	m.current[newName] = node
	return nil
}

func (m *MemFS) Link(oldName, newName string) error {
	oldName, newName = filepath.Clean(oldName), filepath.Clean(newName)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.beginLocked(); err != nil {
		return err
	}
	node, ok := m.current[oldName]
	if !ok {
		return &fs.PathError{Op: "link", Path: oldName, Err: fs.ErrNotExist}
	}
	if _, exists := m.current[newName]; exists || m.dirs[newName] {
		return &fs.PathError{Op: "link", Path: newName, Err: fs.ErrExist}
	}
	if !m.dirs[filepath.Dir(newName)] {
		return &fs.PathError{Op: "link", Path: newName, Err: fs.ErrNotExist}
	}
	m.current[newName] = node
	return nil
}

func (m *MemFS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.beginLocked(); err != nil {
		return err
	}
	if err := m.failNextSync; err != nil {
		m.failNextSync = nil
		return err
	}
	for name := range m.durable {
		if filepath.Dir(name) == dir {
			if _, ok := m.current[name]; !ok {
				delete(m.durable, name)
			}
		}
	}
	for name, node := range m.current {
		if filepath.Dir(name) == dir {
			m.durable[name] = node
		}
	}
	return nil
}

type memFile struct {
	fs     *MemFS
	node   *memNode
	closed bool
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.crashed {
		return 0, ErrCrashed
	}
	if f.closed {
		return 0, fs.ErrClosed
	}
	if off < 0 {
		return 0, errors.New("memfs: negative offset")
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.beginLocked(); err != nil {
		return 0, err
	}
	if f.closed {
		return 0, fs.ErrClosed
	}
	node := f.node
	if off < int64(node.syncedLen) {
		node.keepSyncedCopy()
	}
	end := int(off) + len(p)
	if oldLen := len(node.data); end > oldLen {
		if end > cap(node.data) {
			grown := make([]byte, oldLen, max(end, 2*cap(node.data)))
			copy(grown, node.data)
			node.data = grown
		}
		node.data = node.data[:end]
		if int(off) > oldLen {
			clear(node.data[oldLen:off]) // a hole reads as zeros
		}
	}
	copy(node.data[off:], p)
	return len(p), nil
}

func (n *memNode) keepSyncedCopy() {
	if n.synced == nil {
		n.synced = append([]byte(nil), n.data[:n.syncedLen]...)
	}
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.crashed {
		return 0, ErrCrashed
	}
	return int64(len(f.node.data)), nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.beginLocked(); err != nil {
		return err
	}
	node := f.node
	if size < int64(node.syncedLen) {
		node.keepSyncedCopy()
	}
	if size <= int64(len(node.data)) {
		node.data = node.data[:size]
		return nil
	}
	node.data = append(node.data, make([]byte, int(size)-len(node.data))...)
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.beginLocked(); err != nil {
		return err
	}
	if err := f.fs.failNextSync; err != nil {
		f.fs.failNextSync = nil
		return err
	}
	f.node.syncedLen = len(f.node.data)
	f.node.synced = nil
	return nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.closed = true
	return nil
}
