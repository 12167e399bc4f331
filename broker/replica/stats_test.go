package replica

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kqstack/kqstack/broker/metadata"
)

// waitStats polls the replica's stats until done holds: the ISR change
// counters move once the proposal returns, on the proposing goroutine.
func (h *harness) waitStats(t *testing.T, what string, done func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := h.Stats()
		if done(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw %s: %+v", what, s)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) pendingChange() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pending != nil
}

// TestStatsCountISRChangesAndFollowerLag: the leader reports each
// follower's lag in records and the time since it last reached the log
// end; a committed shrink and a committed join are counted, a refused
// change is not.
func TestStatsCountISRChangesAndFollowerLag(t *testing.T) {
	h := newHarness(t, 1)
	state := metadata.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1}
	h.update(t, state, 2)
	s := h.Stats()
	if !s.Leading || s.MinISR != 2 || !slices.Equal(s.ISR, []int32{1, 2, 3}) {
		t.Fatalf("a new leader's stats: %+v", s)
	}
	if want := []FollowerStats{{ID: 2, LagRecords: -1}, {ID: 3, LagRecords: -1}}; !slices.Equal(s.Followers, want) {
		t.Fatalf("followers before any fetch: %+v, want %+v (lag unknown)", s.Followers, want)
	}

	h.append(t, 5)
	h.fetched(t, 2, 5)
	h.fetched(t, 3, 2)
	h.clock.Advance(4 * time.Second)
	if want := []FollowerStats{{ID: 2}, {ID: 3, LagRecords: 3, SinceCaughtUp: 4 * time.Second}}; !slices.Equal(h.Stats().Followers, want) {
		t.Fatalf("followers: %+v, want %+v", h.Stats().Followers, want)
	}

	// Follower 3 stays behind past replica.lag.time.max.ms: a shrink.
	h.clock.Advance(7 * time.Second)
	h.fetched(t, 2, 5)
	h.Tick()
	if shrink := h.nextProposal(t); !slices.Equal(shrink.ISR, []int32{1, 2}) {
		t.Fatalf("proposed %+v, want ISR [1 2]", shrink)
	}
	h.waitStats(t, "one shrink counted", func(s Stats) bool { return s.ISRShrinks == 1 })
	state.ISR, state.PartitionEpoch = []int32{1, 2}, 1
	h.update(t, state, 2)

	// It catches up: a join.
	h.fetched(t, 3, 5)
	if join := h.nextProposal(t); !slices.Equal(join.ISR, []int32{1, 2, 3}) {
		t.Fatalf("proposed %+v, want ISR [1 2 3]", join)
	}
	s = h.waitStats(t, "one expansion counted", func(s Stats) bool { return s.ISRExpands == 1 })
	if s.ISRShrinks != 1 {
		t.Fatalf("shrinks %d after a join, want still 1", s.ISRShrinks)
	}
	if want := []FollowerStats{{ID: 2}, {ID: 3}}; !slices.Equal(s.Followers, want) {
		t.Fatalf("followers at the log end: %+v, want %+v", s.Followers, want)
	}
	state.ISR, state.PartitionEpoch = []int32{1, 2, 3}, 2
	h.update(t, state, 2)

	// A shrink the quorum refuses (stale) is not counted.
	h.refuse = errors.New("the partition moved on")
	h.clock.Advance(11 * time.Second)
	h.fetched(t, 2, 5)
	h.Tick()
	h.nextProposal(t)
	for h.pendingChange() {
		time.Sleep(time.Millisecond)
	}
	if s := h.Stats(); s.ISRShrinks != 1 || s.ISRExpands != 1 {
		t.Fatalf("after a refused shrink: %d shrinks, %d expansions, want 1 and 1", s.ISRShrinks, s.ISRExpands)
	}

	// A follower is not the leader: no lag, the counters stay.
	h.update(t, metadata.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{2, 3}, Leader: 2, LeaderEpoch: 1, PartitionEpoch: 3}, 2)
	if s := h.Stats(); s.Leading || s.Followers != nil || s.ISRShrinks != 1 || s.ISRExpands != 1 {
		t.Fatalf("stats of a follower: %+v", s)
	}
}
