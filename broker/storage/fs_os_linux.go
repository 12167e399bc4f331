package storage

import "golang.org/x/sys/unix"

// Sync flushes the file's data and the metadata needed to read it back
// (its size), which is what a log needs; fdatasync skips the timestamps
// fsync would also write.
func (f osFile) Sync() error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
