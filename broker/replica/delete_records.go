package replica

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
)

// DeleteRecords moves the partition's log start up to offset (-1: the HW)
// on the leader, then waits until every in-sync follower moved its own as
// far, and returns that low watermark: the lowest log start over the
// leader and its in-sync followers, as Kafka answers. A follower learns
// the new start from its next fetch; one out of the ISR learns it when it
// catches up. REQUEST_TIMED_OUT at the deadline, NOT_LEADER_OR_FOLLOWER
// when the leadership moved.
func (r *Replica) DeleteRecords(offset int64, deadline time.Time) (int64, error) {
	r.mu.Lock()
	err := r.checkLeaderLocked(-1)
	epoch := r.state.LeaderEpoch
	r.mu.Unlock()
	if err != nil {
		return 0, err
	}
	start, err := r.log.DeleteRecords(offset)
	if err != nil {
		return 0, err
	}
	var timer clock.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		r.mu.Lock()
		err := r.checkLeaderLocked(epoch)
		low, changed := r.lowWatermarkLocked(), r.changed
		r.mu.Unlock()
		switch {
		case err != nil:
			return 0, err
		case low >= start:
			return low, nil
		}
		if timer == nil {
			timer = r.opts.Clock.NewTimer(deadline.Sub(r.opts.Clock.Now()))
		}
		select {
		case <-changed:
		case <-timer.C():
			return 0, fmt.Errorf("%w: %s-%d: the in-sync replicas did not all move their log start to %d in time (the lowest is %d)",
				kerr.RequestTimedOut, r.opts.Topic, r.opts.Index, start, low)
		}
	}
}

// lowWatermarkLocked is the lowest log start over the leader and its
// in-sync followers (-1 while one has not fetched at this epoch).
func (r *Replica) lowWatermarkLocked() int64 {
	low := r.log.LogStartOffset()
	for _, id := range r.state.ISR {
		if id == r.opts.Self {
			continue
		}
		f := r.followers[id]
		if f == nil {
			return -1
		}
		low = min(low, f.logStart)
	}
	return low
}
