package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// dataDirLockFile is the data directory's lock, as Kafka's ".lock": the
// broker that holds an exclusive flock on it owns the directory. The file
// holds the owner's pid, for the message a second broker prints. The
// kernel drops the lock when its process dies, however it dies, so a file
// left behind by a killed broker never blocks the next start.
const dataDirLockFile = ".lock"

// DataDirInUseError is returned by Open when another process holds the
// data directory.
type DataDirInUseError struct {
	Dir string
	PID int // 0 when the owner's pid could not be read
}

func (e *DataDirInUseError) Error() string {
	owner := "another kqbroker"
	if e.PID > 0 {
		owner += " (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("data directory %s is in use by %s; stop it first, or give this broker its own -data-dir", e.Dir, owner)
}

// dataDirLock is a held lock; release gives it up.
type dataDirLock struct{ file *os.File }

// lockDataDir takes the exclusive lock of dir without waiting.
func lockDataDir(dir string) (*dataDirLock, error) {
	path := filepath.Join(dir, dataDirLockFile)
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		owner := readLockOwner(file)
		_ = file.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &DataDirInUseError{Dir: dir, PID: owner}
		}
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := file.Truncate(0); err == nil {
		_, err = file.WriteAt(pid, 0)
	}
	if err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("data directory lock %s: %w", path, err)
	}
	return &dataDirLock{file: file}, nil
}

func readLockOwner(file *os.File) int {
	var buf [32]byte
	n, _ := file.ReadAt(buf[:], 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		return 0
	}
	return pid
}

// release gives the directory up. The file stays: removing it would let a
// broker that opened it a moment ago lock a file no longer in the
// directory while a third one creates a new one.
func (l *dataDirLock) release() {
	if l != nil && l.file != nil {
		_ = l.file.Close() // closing the last descriptor drops the flock
		l.file = nil
	}
}
