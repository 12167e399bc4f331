package storage

import (
	"sync/atomic"
	"time"
)

// SyncBuckets are the upper bounds of the fsync latency histogram.
var SyncBuckets = []time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second,
}

// syncStats counts a log's fsyncs of its data by latency, lock-free; the
// metrics endpoint reads them.
type syncStats struct {
	count   atomic.Uint64
	sumNs   atomic.Uint64
	buckets [14]atomic.Uint64 // one per SyncBuckets entry, then +Inf
}

func (s *syncStats) observe(d time.Duration) {
	s.count.Add(1)
	s.sumNs.Add(uint64(d))
	i := 0
	for i < len(SyncBuckets) && d > SyncBuckets[i] {
		i++
	}
	s.buckets[i].Add(1)
}

// SyncStats is a snapshot of a log's fsync latencies: Buckets[i] counts
// the fsyncs that took at most SyncBuckets[i] and more than the bound
// before it (not cumulative); the last entry counts those above them all.
type SyncStats struct {
	Count   uint64
	Sum     time.Duration
	Buckets []uint64
}

// SyncStats returns the fsync latencies of this log's data so far.
func (l *Log) SyncStats() SyncStats {
	s := &l.syncStats
	out := SyncStats{Count: s.count.Load(), Sum: time.Duration(s.sumNs.Load()), Buckets: make([]uint64, len(s.buckets))}
	for i := range s.buckets {
		out.Buckets[i] = s.buckets[i].Load()
	}
	return out
}
