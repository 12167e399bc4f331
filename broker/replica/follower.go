package replica

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/storage"
)

// FetchPosition is what a follower's next fetch asks the leader for.
type FetchPosition struct {
	Leader           int32
	LeaderEpoch      int32
	FetchOffset      int64
	LastFetchedEpoch int32
	LogStartOffset   int64
	// Adding: this broker is a replica being added by a reassignment (its
	// catch-up is throttled).
	Adding bool
}

// Position returns the fetch to send, false when this broker does not
// follow the partition (it leads it, or nobody does).
func (r *Replica) Position() (FetchPosition, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leading || r.state.Leader < 0 || r.state.Leader == r.opts.Self || r.log.Failed() != nil {
		return FetchPosition{}, false
	}
	return FetchPosition{Leader: r.state.Leader, LeaderEpoch: r.state.LeaderEpoch, FetchOffset: r.log.LogEndOffset(),
		LastFetchedEpoch: r.log.LatestLeaderEpoch(), LogStartOffset: r.log.LogStartOffset(),
		Adding: slices.Contains(r.state.Adding, r.opts.Self)}, true
}

// ErrMovedOn means a fetch's answer came after the replica's state or log
// changed: it is dropped, and the next fetch starts from the new position.
var ErrMovedOn = errors.New("the replica moved on since the fetch was sent")

// Fetched applies the leader's answer to a fetch sent at pos: it
// truncates where the logs diverged, or appends the batches as the leader
// wrote them; then takes the leader's HW as far as its log reaches and
// follows the leader's log start. It returns the offset WaitDurable must
// reach before the next fetch may report the new log end (0: none). An
// answer with an error code returns the error.
func (r *Replica) Fetched(pos FetchPosition, p *kmsg.FetchResponseTopicPartition, durable bool) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leading || r.state.Leader != pos.Leader || r.state.LeaderEpoch != pos.LeaderEpoch || r.log.LogEndOffset() != pos.FetchOffset {
		return 0, ErrMovedOn
	}
	if p.ErrorCode != 0 {
		return 0, kerr.ErrorForCode(p.ErrorCode)
	}
	if p.DivergingEpoch.Epoch >= 0 || p.DivergingEpoch.EndOffset >= 0 {
		return 0, r.truncateDivergedLocked(p.DivergingEpoch.Epoch, p.DivergingEpoch.EndOffset)
	}
	var durableAt int64
	if records := batchesFrom(p.RecordBatches, pos.FetchOffset); len(records) > 0 {
		result, err := r.log.Append(records, storage.AppendOptions{FromLeader: true, Durable: durable, DeferDurability: true})
		if err != nil {
			return 0, fmt.Errorf("%s-%d: appending the leader's batches at %d: %w", r.opts.Topic, r.opts.Index, pos.FetchOffset, err)
		}
		durableAt = result.DurableAt
	}
	if p.LogStartOffset > r.log.LogStartOffset() {
		if _, err := r.log.FollowLogStart(p.LogStartOffset); err != nil {
			return durableAt, fmt.Errorf("%s-%d: following the leader's log start %d: %w", r.opts.Topic, r.opts.Index, p.LogStartOffset, err)
		}
	}
	r.log.SetHighWatermark(max(min(p.HighWatermark, r.log.LogEndOffset()), r.log.LogStartOffset()))
	r.hwKnown = true
	return durableAt, nil
}

// batchesFrom returns the whole batches of a fetch answer that start at
// or after offset (a leader answers from the batch holding the fetch
// offset; the follower's log end is always a batch boundary of its own,
// and a batch that straddles it cannot be appended) and drops a partial
// batch at the end (the answer's size limit cut it).
func batchesFrom(records []byte, offset int64) []byte {
	start, end := -1, 0
	_ = storage.WalkBatchHeaders(records, func(h storage.BatchHeader) error {
		if h.Size() > len(records)-end {
			return errors.New("partial")
		}
		if start < 0 && h.BaseOffset >= offset {
			start = end
		}
		end += h.Size()
		return nil
	})
	if start < 0 {
		return nil
	}
	return records[start:end]
}

// truncateDivergedLocked applies Kafka's rule for a DivergingEpoch{epoch,
// endOffset} answer: where this log knows the epoch, it is cut to the
// smaller of the two ends; where it does not, to its own end of the
// largest epoch below, and the next fetch asks again from there.
func (r *Replica) truncateDivergedLocked(epoch int32, endOffset int64) error {
	localEpoch, localEnd := r.log.EndOffsetForEpoch(epoch)
	target := localEnd
	if localEpoch == epoch {
		target = min(endOffset, localEnd)
	}
	if localEpoch < 0 {
		target = r.log.LogStartOffset() // knows no epoch that old: from its start
	}
	target = min(target, r.log.LogEndOffset())
	before := r.log.LogEndOffset()
	end, err := r.log.TruncateTo(target)
	if err != nil {
		return fmt.Errorf("%s-%d: truncating to %d where the log diverged from the leader's: %w", r.opts.Topic, r.opts.Index, target, err)
	}
	r.opts.Logger.Info("truncated the log where it diverged from the leader's", "topic", r.opts.Topic, "partition", r.opts.Index,
		"leader_epoch", epoch, "leader_end_offset", endOffset, "log_end_offset_before", before, "log_end_offset", end)
	return nil
}

// ResetTo handles OFFSET_OUT_OF_RANGE from the leader, given its log start
// and end: a log past the leader's end (an unclean election kept less) is
// cut to it; one below the leader's start starts again there.
func (r *Replica) ResetTo(pos FetchPosition, leaderStart, leaderEnd int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.leading || r.state.LeaderEpoch != pos.LeaderEpoch || r.log.LogEndOffset() != pos.FetchOffset {
		return ErrMovedOn
	}
	end := r.log.LogEndOffset()
	switch {
	case r.log.LogStartOffset() > leaderEnd:
		// Even the start lies past the leader's end (an unclean election
		// kept a shorter log): start again at the leader's end.
		r.opts.Logger.Warn("this replica's log starts past the leader's end: it starts again there", "topic", r.opts.Topic, "partition", r.opts.Index,
			"log_start_offset", r.log.LogStartOffset(), "leader_log_end_offset", leaderEnd)
		return r.log.TruncateFullyAndStartAt(leaderEnd)
	case end > leaderEnd:
		_, err := r.log.TruncateTo(leaderEnd)
		return err
	case end < leaderStart:
		r.opts.Logger.Info("this replica is below the leader's log start: it starts again there", "topic", r.opts.Topic, "partition", r.opts.Index,
			"log_end_offset", end, "leader_log_start_offset", leaderStart)
		return r.log.TruncateFullyAndStartAt(leaderStart)
	}
	return nil
}
