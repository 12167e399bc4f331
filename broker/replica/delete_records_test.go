package replica

import (
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/metadata"
)

// TestDeleteRecordsWaitsForTheInSyncFollowers: the leader moves its log
// start at once and answers DeleteRecords when every in-sync follower
// reports its own log start as far (Kafka's low watermark); a follower's
// next fetch is answered without a long poll so that it learns the start.
func TestDeleteRecordsWaitsForTheInSyncFollowers(t *testing.T) {
	h := newHarness(t, 1)
	state := metadata.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1}
	h.update(t, state, 2)
	h.append(t, 10)
	for _, id := range []int32{2, 3} {
		if _, _, err := h.FollowerFetched(id, 10, 0); err != nil {
			t.Fatal(err)
		}
	}
	timedOut := make(chan error, 1)
	go func() { _, err := h.DeleteRecords(4, h.clock.Now().Add(20*time.Millisecond)); timedOut <- err }()
	h.advanceWhenWaiting(t, 20*time.Millisecond)
	if err := <-timedOut; !errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("DeleteRecords with followers still at log start 0: %v, want REQUEST_TIMED_OUT", err)
	}
	if start := h.Log().LogStartOffset(); start != 4 {
		t.Fatalf("leader log start %d, want 4", start)
	}

	done := make(chan error, 1)
	var low int64
	go func() {
		var err error
		low, err = h.DeleteRecords(6, h.clock.Now().Add(5*time.Second))
		done <- err
	}()
	waitUntil(t, func() bool { return h.Log().LogStartOffset() == 6 })
	_, news, err := h.FollowerFetched(2, 10, 6)
	if err != nil || news != LogStartNews {
		t.Fatalf("a follower's fetch after the log start moved: news %v, err %v; want LogStartNews (answer at once)", news, err)
	}
	select {
	case err := <-done:
		t.Fatalf("DeleteRecords answered (%v) before follower 3 moved its log start", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, _, err := h.FollowerFetched(3, 10, 6); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || low != 6 {
		t.Fatalf("DeleteRecords once every in-sync follower moved: low watermark %d, %v; want 6", low, err)
	}

	// A follower out of the ISR is not waited for.
	state.ISR, state.PartitionEpoch = []int32{1, 2}, 1
	h.update(t, state, 2)
	go func() {
		var err error
		low, err = h.DeleteRecords(8, h.clock.Now().Add(5*time.Second))
		done <- err
	}()
	waitUntil(t, func() bool { return h.Log().LogStartOffset() == 8 })
	if _, _, err := h.FollowerFetched(2, 10, 8); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || low != 8 {
		t.Fatalf("DeleteRecords with follower 3 out of the ISR: %d, %v; want 8", low, err)
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5 s")
		}
	}
}
