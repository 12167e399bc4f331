package replica

import (
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/storage"
)

// retryAfterRefusal holds back the next ISR change after one was not
// committed (stale, or the quorum unreachable).
const retryAfterRefusal = 500 * time.Millisecond

// Append appends a producer's batches as the leader, at its leader epoch.
// With acks=-1 and the ISR below min.insync.replicas nothing is appended:
// NOT_ENOUGH_REPLICAS. It returns the epoch the batches were written at,
// for WaitReplicated.
func (r *Replica) Append(records []byte, acks int16, opts storage.AppendOptions) (storage.AppendResult, int32, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLeaderLocked(-1); err != nil {
		return storage.AppendResult{}, 0, err
	}
	if acks == -1 && len(r.state.ISR) < r.minISR {
		return storage.AppendResult{}, 0, fmt.Errorf("%w: %s-%d has %d in-sync replicas %v, min.insync.replicas is %d; nothing was written",
			kerr.NotEnoughReplicas, r.opts.Topic, r.opts.Index, len(r.state.ISR), r.state.ISR, r.minISR)
	}
	opts.LeaderEpoch = r.state.LeaderEpoch
	result, err := r.log.Append(records, opts)
	if err == nil {
		r.maybeAdvanceHWLocked()
	}
	return result, r.state.LeaderEpoch, err
}

// WaitReplicated waits until the HW reaches offset (acks=all), with this
// broker still leading at epoch: NOT_ENOUGH_REPLICAS_AFTER_APPEND when the
// ISR shrank below min.insync.replicas meanwhile, REQUEST_TIMED_OUT at
// the deadline, NOT_LEADER_OR_FOLLOWER when the leadership moved (the
// producer retries at the new leader; an idempotent one is answered there
// with the original offsets if the batch survived).
func (r *Replica) WaitReplicated(offset int64, epoch int32, deadline time.Time) error {
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		r.mu.Lock()
		err := r.checkLeaderLocked(epoch)
		hw, isr, minISR, changed := r.log.HighWatermark(), slices.Clone(r.state.ISR), r.minISR, r.changed
		r.mu.Unlock()
		switch {
		case err != nil:
			return err
		case hw >= offset:
			return nil
		case len(isr) < minISR:
			return fmt.Errorf("%w: the ISR of %s-%d shrank to %v, below min.insync.replicas %d, before the records were replicated",
				kerr.NotEnoughReplicasAfterAppend, r.opts.Topic, r.opts.Index, isr, minISR)
		}
		if timer == nil {
			timer = r.opts.Clock.NewTimer(deadline.Sub(r.opts.Clock.Now()))
		}
		select {
		case <-changed:
		case <-timer.C():
			return fmt.Errorf("%w: %s-%d: the in-sync replicas %v did not all reach offset %d in time (the high watermark is %d)",
				kerr.RequestTimedOut, r.opts.Topic, r.opts.Index, isr, offset, hw)
		}
	}
}

// News is what a follower's fetch would tell it that it does not know
// yet, and so how soon a fetch parked for records should answer anyway.
type News uint8

const (
	NoNews News = iota
	// HighWatermarkNews: the HW moved. The follower needs it to serve its
	// own reads after a failover, but not at once: a parked fetch answers
	// within HighWatermarkNewsDelay, or sooner with the next records, so
	// a steady stream of acks=all appends costs one round trip each to a
	// follower, not two.
	HighWatermarkNews
	// LogStartNews: the leader's log start moved, and a DeleteRecords
	// waits for the follower's to follow: answer now.
	LogStartNews
)

// HighWatermarkNewsDelay bounds how long a follower's parked fetch holds
// back a new high watermark.
const HighWatermarkNewsDelay = 10 * time.Millisecond

// FollowerFetched records a follower's fetch from fetchOffset, its log
// end, with logStart its log start, and returns the HW to answer with and
// what of it, or of the leader's log start, is news to the follower.
func (r *Replica) FollowerFetched(id int32, fetchOffset, logStart int64) (hw int64, news News, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.checkLeaderLocked(-1); err != nil {
		return 0, NoNews, err
	}
	f := r.followers[id]
	if f == nil {
		return 0, NoNews, fmt.Errorf("%w: broker %d is not a replica of %s-%d (replicas %v)", kerr.NotLeaderForPartition, id, r.opts.Topic, r.opts.Index, r.state.Replicas)
	}
	now := r.opts.Clock.Now()
	leaderEnd := r.log.LogEndOffset()
	// Kafka's rule: caught up now if it reached the log end, or since its
	// previous fetch if it reached the log end of then.
	switch {
	case fetchOffset >= leaderEnd:
		f.lastCaughtUp = now
	case fetchOffset >= f.lastFetchLeaderEnd && f.lastFetch.After(f.lastCaughtUp):
		f.lastCaughtUp = f.lastFetch
	}
	f.logEnd, f.lastFetch, f.lastFetchLeaderEnd = fetchOffset, now, leaderEnd
	r.maybeJoinISRLocked(id, f, now)
	r.maybeAdvanceHWLocked()
	if logStart > f.logStart {
		f.logStart = logStart
		r.notifyLocked() // a DeleteRecords may be waiting for it
	}
	hw = r.log.HighWatermark()
	leaderStart := r.log.LogStartOffset()
	switch {
	case leaderStart != f.sentLogStart:
		news = LogStartNews
	case hw != f.sentHW:
		news = HighWatermarkNews
	}
	f.sentHW, f.sentLogStart = hw, leaderStart
	return hw, news, nil
}

// Tick takes out of the ISR the followers that have not caught up for
// replica.lag.time.max.ms. The leader calls it every half of that.
func (r *Replica) Tick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.Clock.Now()
	if !r.leading || r.pending != nil || now.Before(r.retryAt) {
		return
	}
	var isr, out []int32
	for _, id := range r.state.ISR {
		if f := r.followers[id]; id != r.opts.Self && (f == nil || now.Sub(f.lastCaughtUp) > r.opts.LagTimeMax) {
			out = append(out, id)
			continue
		}
		isr = append(isr, id)
	}
	if len(out) == 0 {
		return
	}
	r.opts.Logger.Info("shrinking the ISR: followers behind for replica.lag.time.max.ms", "topic", r.opts.Topic, "partition", r.opts.Index,
		"isr", r.state.ISR, "new_isr", isr, "out", out, "replica_lag_time_max_ms", r.opts.LagTimeMax.Milliseconds())
	r.proposeLocked(isr)
}

// maybeJoinISRLocked proposes a follower for the ISR once it reached the
// HW and the start of this leader's epoch.
func (r *Replica) maybeJoinISRLocked(id int32, f *follower, now time.Time) {
	if r.inISRLocked(id) || r.pending != nil || now.Before(r.retryAt) {
		return
	}
	if f.logEnd < r.log.HighWatermark() || f.logEnd < r.epochStart {
		return
	}
	var isr []int32
	for _, replica := range r.state.Replicas { // in the replicas' order
		if replica == id || slices.Contains(r.state.ISR, replica) {
			isr = append(isr, replica)
		}
	}
	r.opts.Logger.Info("expanding the ISR: a follower caught up", "topic", r.opts.Topic, "partition", r.opts.Index, "isr", r.state.ISR, "new_isr", isr, "follower", id)
	r.proposeLocked(isr)
}

// proposeLocked sends one ISR change to the quorum, decided on the state
// now; Update clears it once applied, a refusal here.
func (r *Replica) proposeLocked(isr []int32) {
	leaderEpoch, partitionEpoch, self := r.state.LeaderEpoch, r.state.PartitionEpoch, r.opts.Self
	change := &metadata.PartitionChangeRecord{TopicID: r.opts.TopicID, Partition: r.opts.Index, ISR: isr,
		ExpectLeaderEpoch: &leaderEpoch, ExpectPartitionEpoch: &partitionEpoch, FromLeader: &self}
	r.pending = change
	expands := len(isr) > len(r.state.ISR)
	go func() {
		err := r.opts.Propose(*change)
		if err == nil {
			r.isrChanges.committed(expands)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.pending == change {
			r.pending = nil
			r.retryAt = r.opts.Clock.Now().Add(retryAfterRefusal)
			r.notifyLocked()
		}
		r.opts.Logger.Info("the ISR change was not committed; the next check decides again", "topic", r.opts.Topic, "partition", r.opts.Index, "isr", isr, "err", err)
	}()
}

// maybeAdvanceHWLocked moves the HW to the lowest log end over the ISR
// (with a pending join), unless the ISR is below min.insync.replicas
// (KIP-966: the HW waits). It never moves back.
func (r *Replica) maybeAdvanceHWLocked() {
	if !r.leading || !r.hwKnown {
		return // a log of one replica: its HW follows its end
	}
	if len(r.state.ISR) < min(r.minISR, len(r.state.Replicas)) {
		return
	}
	hw := r.log.LogEndOffset()
	for id, f := range r.followers {
		if !r.inISRLocked(id) {
			continue
		}
		if f.logEnd < 0 {
			return // not heard from at this epoch
		}
		hw = min(hw, f.logEnd)
	}
	if hw > r.log.HighWatermark() {
		r.log.SetHighWatermark(hw)
		r.notifyLocked()
	}
}
