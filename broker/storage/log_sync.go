package storage

// syncTo returns once every offset below target is durable. Callers that
// arrive while an fsync runs wait for it, then find their data covered by it
// or share the next one: one fsync serves every append waiting at that
// moment (group commit).
func (l *Log) syncTo(target int64) error {
	if l.syncedOffset.Load() >= target {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if err := l.failed(); err != nil {
		return err
	}
	if l.syncedOffset.Load() >= target {
		return nil
	}
	// Read the end before the segment: data below end is in this segment,
	// or in an older one that was synced when it rolled.
	end := l.logEndOffset.Load()
	active := l.activeSegment()
	if err := active.log.Sync(); err != nil {
		return l.fail(err)
	}
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
