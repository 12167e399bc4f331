package storage

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// FS is every file operation the storage engine performs. The engine never
// touches the os package directly, so tests can run it on MemFS and simulate
// crashes that lose unsynced writes.
//
// Durability follows POSIX: File.Sync makes a file's contents durable;
// creating, renaming or removing a file is durable only after SyncDir on the
// directory that holds it.
type FS interface {
	// OpenFile opens name for reading and writing, creating it when create is
	// true. Opening a missing file without create returns an error for which
	// errors.Is(err, fs.ErrNotExist) holds.
	OpenFile(name string, create bool) (File, error)
	// ReadDir lists the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
	MkdirAll(dir string) error
	Remove(name string) error
	// RemoveAll removes path and everything under it; a missing path is
	// no error.
	RemoveAll(path string) error
	// Rename replaces newName with oldName atomically; oldName may be a
	// directory (newName must not exist then).
	Rename(oldName, newName string) error
	// Link gives the file oldName a second name, newName, which must not
	// exist (a hard link). The cleaner uses it to put a segment in place
	// while the name it was written under still holds it.
	Link(oldName, newName string) error
	// SyncDir makes the directory's entries durable.
	SyncDir(dir string) error
}

// File is an open file. WriteAt and ReadAt may be called concurrently on
// disjoint ranges.
type File interface {
	io.ReaderAt
	io.WriterAt
	Size() (int64, error)
	Truncate(size int64) error
	Sync() error
	Close() error
}

// OSFS is the FS of the operating system.
type OSFS struct{}

var _ FS = OSFS{}

func (OSFS) OpenFile(name string, create bool) (File, error) {
	flag := os.O_RDWR
	if create {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(name, flag, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (OSFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (OSFS) Remove(name string) error { return os.Remove(name) }

func (OSFS) RemoveAll(path string) error { return os.RemoveAll(path) }

func (OSFS) Rename(oldName, newName string) error { return os.Rename(oldName, newName) }

func (OSFS) Link(oldName, newName string) error { return os.Link(oldName, newName) }

func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	syncErr := d.Sync()
	closeErr := d.Close()
	return errors.Join(syncErr, closeErr)
}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}

// WriteFileAtomic replaces name with data durably: temp file, fsync, rename,
// fsync of the directory.
func WriteFileAtomic(fsys FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, true)
	if err != nil {
		return err
	}
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt(data, 0)
	}
	if err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}

// ReadWholeFile returns the contents of name, or fs.ErrNotExist.
func ReadWholeFile(fsys FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.OpenFile(name, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > limit {
		return nil, errors.New(name + ": file larger than expected")
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// ReadFile returns the whole content of name.
func ReadFile(fsys FS, name string) ([]byte, error) {
	f, err := fsys.OpenFile(name, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return data, nil
}

// Exists reports whether name is a file or directory of fsys.
func Exists(fsys FS, name string) bool {
	if _, err := fsys.ReadDir(name); err == nil {
		return true
	}
	f, err := fsys.OpenFile(name, false)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}
