package quorum

import (
	"sync/atomic"
	"time"
)

// CommitBuckets are the upper bounds of the commit latency histogram.
var CommitBuckets = []time.Duration{
	500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
	250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// commitLatency counts this member's applied proposals by the time from
// Propose to applied here (forwarding to the leader included), lock-free.
type commitLatency struct {
	count   atomic.Uint64
	sumNs   atomic.Uint64
	buckets [15]atomic.Uint64 // one per CommitBuckets entry, then +Inf
}

func (c *commitLatency) observe(d time.Duration) {
	c.count.Add(1)
	c.sumNs.Add(uint64(d))
	i := 0
	for i < len(CommitBuckets) && d > CommitBuckets[i] {
		i++
	}
	c.buckets[i].Add(1)
}

// LatencyStats is a snapshot of a latency histogram: Buckets[i] counts
// the observations of at most CommitBuckets[i] and more than the bound
// before it (not cumulative); the last entry those above them all.
type LatencyStats struct {
	Count   uint64
	Sum     time.Duration
	Buckets []uint64
}

// Stats is this member's view of the quorum, for the metrics.
type Stats struct {
	// Leader is the leader's node id, -1 while none is known.
	Leader int32
	// IsLeader: this member leads (it is the active controller).
	IsLeader bool
	// Term is raft's current term: it grows with each election.
	Term uint64
	// CommitIndex is the last log index this member knows committed;
	// AppliedIndex the last it applied to its image.
	CommitIndex, AppliedIndex uint64
	// Commits are the latencies of the proposals made on this member
	// that were applied (refused and failed ones are not counted).
	Commits LatencyStats
}

// Stats returns this member's view of the quorum.
func (q *Quorum) Stats() Stats {
	leader, _ := q.Leader()
	s := Stats{Leader: leader, IsLeader: q.IsLeader(), Term: q.raft.CurrentTerm(), CommitIndex: q.raft.CommitIndex(), AppliedIndex: q.fsm.applied.Load(),
		Commits: LatencyStats{Count: q.commits.count.Load(), Sum: time.Duration(q.commits.sumNs.Load()), Buckets: make([]uint64, len(q.commits.buckets))}}
	for i := range q.commits.buckets {
		s.Commits.Buckets[i] = q.commits.buckets[i].Load()
	}
	return s
}
