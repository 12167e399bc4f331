package storage

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// leaderEpochFile is the partition's leader-epoch checkpoint, in Kafka's
// text form (leader-epoch-checkpoint): a version line, a count line, then
// one "epoch start_offset" line per epoch, oldest first.
//
//	0
//	2
//	0 0
//	3 1250
//
// Written temp -> fsync -> rename -> fsync directory whenever an epoch is
// added or entries are cut. An epoch is recorded before the first batch
// that carries it is written, so the file always covers the log, and an
// epoch whose leader has written nothing yet (start offset = log end) is
// kept: followers need it to find where their logs diverge.
const leaderEpochFile = "leader-epoch-checkpoint"

// UndefinedEpoch is Kafka's "no epoch" (-1), answered with offset -1.
const UndefinedEpoch = -1

// epochEntry is the first offset written in a leader epoch.
type epochEntry struct {
	epoch       int32
	startOffset int64
}

// leaderEpochs is the epoch cache: entries by increasing epoch and start
// offset. Owned by the Log, under appendMu.
type leaderEpochs struct {
	entries []epochEntry
}

func (c *leaderEpochs) latest() (epochEntry, bool) {
	if len(c.entries) == 0 {
		return epochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

// assign records that epoch starts at startOffset, and reports whether
// anything changed. An epoch at or below the latest one with a later start
// changes nothing; otherwise entries that conflict with it (an epoch as
// new, or a start as late) are dropped first, as Kafka's cache does.
func (c *leaderEpochs) assign(epoch int32, startOffset int64) bool {
	if epoch < 0 {
		return false
	}
	if last, ok := c.latest(); ok {
		if epoch == last.epoch && startOffset >= last.startOffset {
			return false
		}
		if epoch < last.epoch && startOffset >= last.startOffset {
			return false // an older leader's batch copied late: the cache knows better
		}
	}
	for n := len(c.entries); n > 0; n-- {
		if e := c.entries[n-1]; e.epoch < epoch && e.startOffset < startOffset {
			break
		}
		c.entries = c.entries[:n-1]
	}
	c.entries = append(c.entries, epochEntry{epoch: epoch, startOffset: startOffset})
	return true
}

// endOffsetFor answers OffsetForLeaderEpoch for a log ending at
// logEndOffset: the largest epoch at or below the one asked for, and the
// offset where the next epoch began (the log end for the latest epoch).
// An epoch newer than any known, or -1, gets (-1, -1).
func (c *leaderEpochs) endOffsetFor(requested int32, logEndOffset int64) (int32, int64) {
	last, ok := c.latest()
	switch {
	case requested == UndefinedEpoch || !ok:
		return UndefinedEpoch, -1
	case requested == last.epoch:
		return requested, logEndOffset
	case requested > last.epoch:
		return UndefinedEpoch, -1
	}
	// The first entry above the requested epoch ends it.
	i := 0
	for i < len(c.entries) && c.entries[i].epoch <= requested {
		i++
	}
	if i == 0 {
		// Older than every epoch kept: it ended where the oldest began.
		return requested, c.entries[0].startOffset
	}
	return c.entries[i-1].epoch, c.entries[i].startOffset
}

// truncateFromEnd drops the epochs that start at or after endOffset (the
// log was cut there).
func (c *leaderEpochs) truncateFromEnd(endOffset int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].startOffset >= endOffset {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n]
	return changed
}

// truncateFromStart forgets what lies before startOffset (retention,
// DeleteRecords): the epoch holding it now starts there.
func (c *leaderEpochs) truncateFromStart(startOffset int64) bool {
	i := 0
	for i+1 < len(c.entries) && c.entries[i+1].startOffset <= startOffset {
		i++
	}
	if len(c.entries) == 0 || (i == 0 && c.entries[0].startOffset >= startOffset) {
		return false
	}
	c.entries = c.entries[i:]
	c.entries[0].startOffset = max(c.entries[0].startOffset, startOffset)
	return true
}

// isDefault: the cache is epoch 0 from the log start, which is how a log
// without a checkpoint file is read.
func (c *leaderEpochs) isDefault(logStart int64) bool {
	return len(c.entries) == 1 && c.entries[0] == epochEntry{epoch: 0, startOffset: logStart}
}

func (c *leaderEpochs) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(c.entries))
	for _, e := range c.entries {
		fmt.Fprintf(&b, "%d %d\n", e.epoch, e.startOffset)
	}
	return b.Bytes()
}

func decodeLeaderEpochs(data []byte) (leaderEpochs, error) {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) < 2 || lines[0] != "0" {
		return leaderEpochs{}, fmt.Errorf("%s: want version 0 and a count", leaderEpochFile)
	}
	count, err := strconv.Atoi(lines[1])
	if err != nil || count != len(lines)-2 {
		return leaderEpochs{}, fmt.Errorf("%s: count %q does not match %d entries", leaderEpochFile, lines[1], len(lines)-2)
	}
	var c leaderEpochs
	for _, line := range lines[2:] {
		epochText, offsetText, ok := strings.Cut(line, " ")
		epoch, err1 := strconv.ParseInt(epochText, 10, 32)
		offset, err2 := strconv.ParseInt(offsetText, 10, 64)
		if !ok || err1 != nil || err2 != nil || epoch < 0 || offset < 0 {
			return leaderEpochs{}, fmt.Errorf("%s: bad entry %q", leaderEpochFile, line)
		}
		if last, ok := c.latest(); ok && (int32(epoch) <= last.epoch || offset < last.startOffset) {
			return leaderEpochs{}, fmt.Errorf("%s: entry %q out of order", leaderEpochFile, line)
		}
		c.entries = append(c.entries, epochEntry{epoch: int32(epoch), startOffset: offset})
	}
	return c, nil
}

// loadLeaderEpochs reads the checkpoint at open. A log written before
// epochs were kept (no file, batches all of epoch 0) starts with epoch 0
// at its start. Entries past the log end (a crash cut the log after the
// file was written) are dropped; one at the log end is an empty epoch and
// stays.
func (l *Log) loadLeaderEpochs() error {
	data, err := ReadWholeFile(l.fsys, filepath.Join(l.dir, leaderEpochFile), 1<<20)
	switch {
	case isNotExist(err):
		if l.logEndOffset.Load() > l.logStartOffset.Load() {
			l.epochs.assign(0, l.logStartOffset.Load())
		}
		return nil
	case err != nil:
		return err
	}
	if l.epochs, err = decodeLeaderEpochs(data); err != nil {
		return err
	}
	cutEnd := l.epochs.truncateFromEnd(l.logEndOffset.Load() + 1)
	cutStart := l.epochs.truncateFromStart(l.logStartOffset.Load())
	if cutEnd || cutStart {
		return l.writeLeaderEpochsLocked()
	}
	return nil
}

// writeLeaderEpochsLocked saves the cache. Called under appendMu (or
// before the log is shared).
func (l *Log) writeLeaderEpochsLocked() error {
	return WriteFileAtomic(l.fsys, filepath.Join(l.dir, leaderEpochFile), l.epochs.encode())
}

// AssignLeaderEpoch records that epoch begins at the log end: called when
// this broker becomes the partition's leader at epoch, before it appends
// anything, and kept even if it never does.
func (l *Log) AssignLeaderEpoch(epoch int32) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.assignEpochLocked(epoch, l.logEndOffset.Load())
}

// assignEpochLocked records an epoch's start and saves the cache when it
// changed, unless it is just epoch 0 from the log start: what a log
// without the file is read as. Called under appendMu.
func (l *Log) assignEpochLocked(epoch int32, startOffset int64) error {
	if !l.epochs.assign(epoch, startOffset) || l.epochs.isDefault(l.logStartOffset.Load()) {
		return nil
	}
	return l.writeLeaderEpochsLocked()
}

// LatestLeaderEpoch is the newest epoch the log knows, UndefinedEpoch when
// it knows none.
func (l *Log) LatestLeaderEpoch() int32 {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if last, ok := l.epochs.latest(); ok {
		return last.epoch
	}
	return UndefinedEpoch
}

// EndOffsetForEpoch is OffsetForLeaderEpoch's answer from this log (see
// leaderEpochs.endOffsetFor).
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	return l.epochs.endOffsetFor(epoch, l.logEndOffset.Load())
}

// EpochAt is the leader epoch offset was written in (UndefinedEpoch if
// the log knows none that old).
func (l *Log) EpochAt(offset int64) int32 {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	epoch := int32(UndefinedEpoch)
	for _, e := range l.epochs.entries {
		if e.startOffset > offset {
			break
		}
		epoch = e.epoch
	}
	return epoch
}
