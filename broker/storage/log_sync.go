package storage

import (
	"sync"
	"time"
)

// durableWrites lets the appender that is about to fsync (the leader) wait
// for the durable appends that other appenders have already begun, so one
// fsync covers them too. Without it, the first appender back from an fsync
// starts the next one at once, and each fsync covers two or three appends
// instead of all that are waiting.
type durableWrites struct {
	mu       sync.Mutex
	cond     sync.Cond
	begun    int64 // tickets handed out
	finished int64 // tickets whose write is done (or failed)
}

func (d *durableWrites) begin() {
	d.mu.Lock()
	d.begun++
	d.mu.Unlock()
}

func (d *durableWrites) finish() {
	d.mu.Lock()
	d.finished++
	if d.finished == d.begun {
		d.cond.Broadcast()
	}
	d.mu.Unlock()
}

// waitForBegun waits until every durable append begun before the call has
// written its batches. Appends begun later are not waited for, so a steady
// stream cannot hold the leader back.
func (d *durableWrites) waitForBegun() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for target := d.begun; d.finished < target; {
		d.cond.Wait()
	}
}

// groupCommit orders fsyncs: one runs at a time, and when it ends every
// waiter is woken at once by closing done. (A mutex or a sync.Cond hands
// the lock from waiter to waiter, waking them one by one, and the last ones
// then miss the next fsync.)
type groupCommit struct {
	mu      sync.Mutex
	running bool          // an fsync is under way
	done    chan struct{} // closed when it ends
}

// syncTo returns once every offset below target is durable. A caller that
// finds no fsync running becomes the leader: it waits for the durable
// appends already under way, then fsyncs everything written so far. The
// others wait for it and return if it covered them; otherwise one of them
// leads the next fsync. So one fsync serves every append waiting at that
// moment (group commit).
func (l *Log) syncTo(target int64) error {
	g := &l.groupCommit
	for l.syncedOffset.Load() < target {
		if err := l.failed(); err != nil {
			return err
		}
		g.mu.Lock()
		if g.running {
			done := g.done
			g.mu.Unlock()
			<-done
			continue
		}
		if l.syncedOffset.Load() >= target {
			g.mu.Unlock()
			return nil
		}
		g.running = true
		g.done = make(chan struct{})
		g.mu.Unlock()

		err := l.syncEverythingWritten()

		g.mu.Lock()
		g.running = false
		close(g.done)
		g.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// syncEverythingWritten fsyncs the active segment after the durable appends
// already under way have written, and advances the durable offset.
func (l *Log) syncEverythingWritten() error {
	l.durableWrites.waitForBegun()
	// Read the end before the segment: data below end is in this segment,
	// or in an older one that was synced when it rolled.
	end := l.logEndOffset.Load()
	active := l.activeSegment()
	began := time.Now() // a measurement for metrics, not a decision: the real clock
	if err := active.log.Sync(); err != nil {
		return l.fail(err)
	}
	l.syncStats.observe(time.Since(began))
	l.syncCount.Add(1)
	l.advanceSyncedOffset(end)
	return nil
}

func (l *Log) advanceSyncedOffset(offset int64) {
	for {
		current := l.syncedOffset.Load()
		if offset <= current || l.syncedOffset.CompareAndSwap(current, offset) {
			return
		}
	}
}

// Flush fsyncs everything appended so far.
func (l *Log) Flush() error {
	l.appendMu.Lock()
	l.unflushedMessages = 0
	l.lastFlush = l.clock.Now()
	l.appendMu.Unlock()
	return l.syncTo(l.logEndOffset.Load())
}
