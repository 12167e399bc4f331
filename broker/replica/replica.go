// Package replica is this broker's part in replicating a partition, as
// Kafka's Partition and ReplicaFetcherThread do it.
//
// A Replica is this broker's copy of one partition. The metadata says who
// leads it, at which leader epoch, and who is in sync (the ISR); Update is
// told each new state and the replica acts as leader or follower:
//
//   - The leader appends producers' batches at its leader epoch, tracks how
//     far each follower has fetched, and moves the high watermark (HW) to
//     the lowest log end over the ISR: consumers read below it, acks=all
//     waits for it. While the ISR is smaller than min.insync.replicas the
//     HW stands still and acks=all appends are refused before appending.
//     A follower that has not caught up with the leader's log end for
//     replica.lag.time.max.ms leaves the ISR; one that reached the HW and
//     the start of the leader's epoch joins it. Both are changes the leader
//     proposes to the metadata quorum, naming the leader and partition
//     epochs they were decided on, one at a time; a shrink counts once the
//     quorum applied it, a join at once.
//   - A follower appends what it fetches from the leader as the leader
//     wrote it (the fetchers in fetcher.go), truncates where the leader's
//     log diverged from its own (DivergingEpoch), follows the leader's log
//     start, and takes the leader's HW as far as its own log reaches.
//
// Every change of a replica's log happens under its mu, after checking
// that the replica still has the role and epoch the change was decided at:
// an old leader never appends or acknowledges after the metadata moved on,
// and a fetch answered by an old leader is dropped.
package replica

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/storage"
)

// Proposer commits a partition change through the metadata quorum; an
// error means it was not applied (for example, it was stale).
type Proposer func(metadata.PartitionChangeRecord) error

// Options are what a Replica needs besides its log.
type Options struct {
	Self    int32 // this broker's id
	TopicID metadata.TopicID
	Topic   string
	Index   int32
	Clock   clock.Clock
	Logger  *slog.Logger
	// LagTimeMax is replica.lag.time.max.ms.
	LagTimeMax time.Duration
	// Propose commits the leader's ISR changes.
	Propose Proposer
}

// Replica is this broker's copy of one partition. Safe for concurrent use.
type Replica struct {
	opts Options
	log  *storage.Log

	mu     sync.Mutex
	state  metadata.Partition
	minISR int
	// leading: this broker leads at state.LeaderEpoch.
	leading bool
	// epochStart is the log end when this broker began leading: a follower
	// joins the ISR only once it reached it.
	epochStart int64
	followers  map[int32]*follower // leader only: every other replica
	// pending is the ISR change in flight (nil: none); retryAt holds the
	// next one back after a refusal.
	pending *metadata.PartitionChangeRecord
	retryAt time.Time
	// changed is closed and replaced when the HW rises, the ISR or the
	// leadership changes: acks=all waits on it.
	changed chan struct{}
	// hwKnown: the log's HW was set by replication (a log of one replica
	// leaves it following its end).
	hwKnown bool
	// isrChanges counts the committed ISR changes (stats.go).
	isrChanges isrChanges
}

// follower is what the leader knows of another replica.
type follower struct {
	logEnd int64 // its fetch offset; -1 until it fetched at this epoch
	// lastFetch and lastFetchLeaderEnd are the time of its previous fetch
	// and the leader's log end then.
	lastFetch          time.Time
	lastFetchLeaderEnd int64
	lastCaughtUp       time.Time
	// sentHW is the HW its last answer carried.
	sentHW int64
	// logStart is the log start its fetches report (-1 until it fetched at
	// this epoch), sentLogStart the leader's its last answer carried:
	// DeleteRecords waits for the followers' (delete_records.go).
	logStart, sentLogStart int64
}

// New returns the replica of a partition whose log this broker holds.
func New(log *storage.Log, opts Options) *Replica {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Replica{opts: opts, log: log, state: metadata.Partition{Leader: -1}, minISR: 1, changed: make(chan struct{})}
}

// Log is the replica's log.
func (r *Replica) Log() *storage.Log { return r.log }

// State is the partition's state this replica acts on.
func (r *Replica) State() metadata.Partition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

// Update tells the replica the partition's newest state and its
// min.insync.replicas. Becoming leader at a new epoch records the epoch at
// the log end, even before anything is written in it.
func (r *Replica) Update(state metadata.Partition, minISR int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.state
	r.state, r.minISR = state, max(minISR, 1)
	if r.pending != nil && state.PartitionEpoch != old.PartitionEpoch {
		r.pending = nil // applied, or overtaken by another change
	}
	defer r.notifyLocked()
	wasLeading := r.leading && old.LeaderEpoch == state.LeaderEpoch
	r.syncHighWatermarkModeLocked(old, state, wasLeading)
	if state.Leader != r.opts.Self {
		r.leading, r.followers = false, nil
		return nil
	}
	if wasLeading {
		r.syncFollowersLocked()
		r.maybeAdvanceHWLocked()
		return nil
	}
	if err := r.log.AssignLeaderEpoch(state.LeaderEpoch); err != nil {
		r.leading = false
		return fmt.Errorf("recording leader epoch %d: %w", state.LeaderEpoch, err)
	}
	r.leading, r.epochStart, r.followers, r.pending = true, r.log.LogEndOffset(), map[int32]*follower{}, nil
	r.syncFollowersLocked()
	r.maybeAdvanceHWLocked()
	return nil
}

// syncHighWatermarkModeLocked decides who sets the log's HW. A partition
// of one replica has every record committed once written: the HW follows
// the log end. One of several starts from the HW saved before a restart
// (or the log start: what it holds is not known to be committed), unless
// this broker led it alone until now, when all it has is committed.
func (r *Replica) syncHighWatermarkModeLocked(old, state metadata.Partition, wasLeading bool) {
	replicated := len(state.Replicas) > 1
	switch {
	case replicated && !r.hwKnown:
		hw := r.log.SavedHighWatermark()
		if wasLeading && len(old.Replicas) == 1 {
			hw = r.log.LogEndOffset()
		}
		r.log.SetHighWatermark(max(hw, r.log.LogStartOffset()))
		r.hwKnown = true
	case !replicated && r.hwKnown && state.Leader == r.opts.Self:
		r.log.SetHighWatermark(-1)
		r.hwKnown = false
	}
}

// Close ends the replica's part (this broker is no longer a replica, or
// the topic is gone) before its log closes: it leads no more, and
// produces waiting for acks=all are answered NOT_LEADER_OR_FOLLOWER.
func (r *Replica) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leading, r.followers, r.pending = false, nil, nil
	r.state.Leader = -1
	r.notifyLocked()
}

// syncFollowersLocked makes followers hold every other replica. A
// follower in the ISR counts as caught up from the moment this broker
// began leading (Kafka's rule), so a new leader does not shrink the ISR
// before the followers had the time to fetch.
func (r *Replica) syncFollowersLocked() {
	now := r.opts.Clock.Now()
	for _, id := range r.state.Replicas {
		if id == r.opts.Self || r.followers[id] != nil {
			continue
		}
		r.followers[id] = &follower{logEnd: -1, lastFetchLeaderEnd: -1, lastCaughtUp: now, sentHW: -1, logStart: -1, sentLogStart: -1}
	}
	for id := range r.followers {
		if !slices.Contains(r.state.Replicas, id) {
			delete(r.followers, id)
		}
	}
}

// notifyLocked wakes everyone waiting on changed.
func (r *Replica) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// checkLeaderLocked is nil when this broker leads at epoch (-1: any).
func (r *Replica) checkLeaderLocked(epoch int32) error {
	if !r.leading {
		return fmt.Errorf("%w: broker %d does not lead %s-%d (its leader is %d)", kerr.NotLeaderForPartition, r.opts.Self, r.opts.Topic, r.opts.Index, r.state.Leader)
	}
	if epoch >= 0 && epoch != r.state.LeaderEpoch {
		return fmt.Errorf("%w: %s-%d is at leader epoch %d, not %d", kerr.NotLeaderForPartition, r.opts.Topic, r.opts.Index, r.state.LeaderEpoch, epoch)
	}
	return nil
}

// inISRLocked reports whether id is in the ISR the HW counts (Kafka's
// maximal ISR): the applied one and a pending join; a pending shrink
// counts once applied.
func (r *Replica) inISRLocked(id int32) bool {
	return slices.Contains(r.state.ISR, id) || r.pending != nil && slices.Contains(r.pending.ISR, id)
}
