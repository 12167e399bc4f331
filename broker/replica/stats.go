package replica

import (
	"slices"
	"sync/atomic"
	"time"
)

// isrChanges counts the ISR changes this broker proposed as leader and
// the quorum committed: Kafka's IsrShrinksPerSec and IsrExpandsPerSec,
// per partition. A change the controller made itself (fencing a broker)
// is not the leader's and is not counted, as in Kafka.
type isrChanges struct {
	shrinks, expands atomic.Uint64
}

// committed counts one committed ISR change: a join, or a shrink.
func (c *isrChanges) committed(expands bool) {
	if expands {
		c.expands.Add(1)
	} else {
		c.shrinks.Add(1)
	}
}

// Stats is what the metrics read of a replica at scrape time.
type Stats struct {
	// ISRShrinks and ISRExpands count the ISR changes this broker
	// committed as the partition's leader while it held the replica.
	ISRShrinks, ISRExpands uint64
	// Leading: this broker leads the partition; the fields below are
	// the leader's view, zero otherwise.
	Leading bool
	// MinISR is the partition's min.insync.replicas.
	MinISR int
	// ISR is the applied ISR.
	ISR []int32
	// Followers are the other replicas, by broker id.
	Followers []FollowerStats
}

// FollowerStats is how far one follower is behind the leader.
type FollowerStats struct {
	ID int32
	// LagRecords is the leader's log end minus the follower's fetch
	// offset; -1 while the follower has not fetched since this broker
	// began leading.
	LagRecords int64
	// SinceCaughtUp is the time since the follower last reached the
	// leader's log end (Kafka's lastCaughtUpTime rule); 0 while it is
	// there. Past replica.lag.time.max.ms it leaves the ISR.
	SinceCaughtUp time.Duration
}

// Stats returns the replica's counters and, on the leader, its
// followers' lag.
func (r *Replica) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{ISRShrinks: r.isrChanges.shrinks.Load(), ISRExpands: r.isrChanges.expands.Load(), Leading: r.leading}
	if !r.leading {
		return s
	}
	s.MinISR, s.ISR = r.minISR, slices.Clone(r.state.ISR)
	now, leaderEnd := r.opts.Clock.Now(), r.log.LogEndOffset()
	for id, f := range r.followers {
		follower := FollowerStats{ID: id, LagRecords: -1}
		if f.logEnd >= 0 {
			follower.LagRecords = max(leaderEnd-f.logEnd, 0)
		}
		if f.logEnd < leaderEnd {
			follower.SinceCaughtUp = max(now.Sub(f.lastCaughtUp), 0)
		}
		s.Followers = append(s.Followers, follower)
	}
	slices.SortFunc(s.Followers, func(a, b FollowerStats) int { return int(a.ID - b.ID) })
	return s
}
