package replica

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/storage"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// harness is one replica on an in-memory log with a manual clock; the
// test plays the metadata quorum: proposals arrive on proposed and the
// test applies them (or not) with Update.
type harness struct {
	*Replica
	clock    *clock.Manual
	proposed chan metadata.PartitionChangeRecord
	refuse   error
}

func newHarness(t *testing.T, self int32) *harness {
	t.Helper()
	h := &harness{clock: clock.NewManual(t0), proposed: make(chan metadata.PartitionChangeRecord, 8)}
	log, err := storage.Open("/data/orders-0", storage.Options{FS: storage.NewMemFS(), Clock: h.clock, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = log.Close() })
	h.Replica = New(log, Options{Self: self, Topic: "orders", Clock: h.clock, Logger: quiet(), LagTimeMax: 10 * time.Second,
		Propose: func(c metadata.PartitionChangeRecord) error { h.proposed <- c; return h.refuse }})
	return h
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (h *harness) update(t *testing.T, state metadata.Partition, minISR int) {
	t.Helper()
	if err := h.Update(state, minISR); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) append(t *testing.T, n int) (storage.AppendResult, int32) {
	t.Helper()
	result, epoch, err := h.Append(batch(n), -1, storage.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return result, epoch
}

// advanceWhenWaiting moves the clock by d once the replica waits on a
// timer of it.
func (h *harness) advanceWhenWaiting(t *testing.T, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); h.clock.Waiters() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not start waiting")
		}
	}
	h.clock.Advance(d)
}

func (h *harness) fetched(t *testing.T, id int32, offset int64) int64 {
	t.Helper()
	hw, _, err := h.FollowerFetched(id, offset, 0)
	if err != nil {
		t.Fatal(err)
	}
	return hw
}

func (h *harness) nextProposal(t *testing.T) metadata.PartitionChangeRecord {
	t.Helper()
	select {
	case c := <-h.proposed:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no ISR change was proposed")
	}
	return metadata.PartitionChangeRecord{}
}

// TestHighWatermarkAndAcks: the HW is the lowest log end over the ISR,
// unknown until every follower fetched at this epoch; acks=all waits for
// it; a shrink counts once applied, and one below min.insync.replicas
// fails the waiting produce with NOT_ENOUGH_REPLICAS_AFTER_APPEND.
func TestHighWatermarkAndAcks(t *testing.T) {
	h := newHarness(t, 1)
	state := metadata.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1}
	h.update(t, state, 2)
	result, epoch := h.append(t, 3)
	if hw := h.fetched(t, 2, 3); hw != 0 {
		t.Fatalf("HW %d before follower 3 fetched, want 0", hw)
	}
	if hw := h.fetched(t, 3, 2); hw != 2 {
		t.Fatalf("HW %d, want 2 (follower 3's log end)", hw)
	}
	// The wait times out on the replica's clock, not the wall's.
	timedOut := make(chan error, 1)
	go func() {
		timedOut <- h.WaitReplicated(result.LastOffset+1, epoch, h.clock.Now().Add(20*time.Millisecond))
	}()
	h.advanceWhenWaiting(t, 20*time.Millisecond)
	if err := <-timedOut; !errors.Is(err, kerr.RequestTimedOut) {
		t.Fatalf("acks=all with a follower behind: %v, want REQUEST_TIMED_OUT", err)
	}
	h.fetched(t, 3, 3)
	if err := h.WaitReplicated(result.LastOffset+1, epoch, h.clock.Now().Add(time.Second)); err != nil {
		t.Fatalf("acks=all once every ISR member has the records: %v", err)
	}

	// Follower 3 stops fetching; while it is still in the applied ISR the
	// produce waits, and the shrink releases it.
	result, epoch = h.append(t, 3)
	h.clock.Advance(11 * time.Second)
	h.fetched(t, 2, 6)
	done := make(chan error, 1)
	go func() { done <- h.WaitReplicated(result.LastOffset+1, epoch, h.clock.Now().Add(5*time.Second)) }()
	h.Tick()
	shrink := h.nextProposal(t)
	if !slices.Equal(shrink.ISR, []int32{1, 2}) || *shrink.ExpectPartitionEpoch != 0 || *shrink.FromLeader != 1 {
		t.Fatalf("proposed %+v, want ISR [1 2] at partition epoch 0 from broker 1", shrink)
	}
	select {
	case err := <-done:
		t.Fatalf("acks=all answered (%v) before the shrink was applied", err)
	case <-time.After(50 * time.Millisecond):
	}
	state.ISR, state.PartitionEpoch = []int32{1, 2}, 1
	h.update(t, state, 2)
	if err := <-done; err != nil {
		t.Fatalf("acks=all after the shrink: %v", err)
	}

	// Follower 2 falls behind too: the ISR goes below min.insync.replicas.
	result, epoch = h.append(t, 1)
	go func() { done <- h.WaitReplicated(result.LastOffset+1, epoch, h.clock.Now().Add(5*time.Second)) }()
	state.ISR, state.PartitionEpoch = []int32{1}, 2
	h.update(t, state, 2)
	if err := <-done; !errors.Is(err, kerr.NotEnoughReplicasAfterAppend) {
		t.Fatalf("acks=all when the ISR shrank below min.insync.replicas: %v", err)
	}
	if _, _, err := h.Append(batch(1), -1, storage.AppendOptions{}); !errors.Is(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all append with the ISR below min.insync.replicas: %v", err)
	}
	if hw := h.Log().HighWatermark(); hw != 6 {
		t.Fatalf("HW %d with the ISR below min.insync.replicas, want it held at 6", hw)
	}
}

// TestJoinAndFencedLeader: a follower joins the ISR once it reached both
// the HW and the start of the leader's epoch; a leader whose leadership
// moved refuses appends and fails its waiting produces.
func TestJoinAndFencedLeader(t *testing.T) {
	h := newHarness(t, 1)
	state := metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 3, PartitionEpoch: 7}
	if _, _, err := h.Append(batch(1), 1, storage.AppendOptions{}); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("append before the replica knows it leads: %v", err)
	}
	h.update(t, state, 1)
	h.append(t, 4)
	if hw := h.fetched(t, 2, 2); hw != 4 {
		t.Fatalf("HW %d with the leader alone in the ISR, want its log end 4", hw)
	}
	select {
	case c := <-h.proposed:
		t.Fatalf("follower 2 proposed for the ISR below the HW: %+v", c)
	default:
	}
	h.fetched(t, 2, 4)
	join := h.nextProposal(t)
	if !slices.Equal(join.ISR, []int32{1, 2}) || *join.ExpectLeaderEpoch != 3 || *join.ExpectPartitionEpoch != 7 {
		t.Fatalf("proposed %+v", join)
	}
	// A pending join counts for the HW at once.
	result, epoch := h.append(t, 2)
	if hw := h.Log().HighWatermark(); hw != 4 {
		t.Fatalf("HW %d moved past follower 2 with its join pending", hw)
	}

	done := make(chan error, 1)
	go func() { done <- h.WaitReplicated(result.LastOffset+1, epoch, h.clock.Now().Add(5*time.Second)) }()
	// Broker 2 takes over at epoch 4: this broker must not answer.
	h.update(t, metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 4, PartitionEpoch: 8}, 1)
	if err := <-done; !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("a produce waiting on a leader that lost its leadership: %v", err)
	}
	if _, _, err := h.Append(batch(1), 1, storage.AppendOptions{}); !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("append on a former leader: %v", err)
	}
	if pos, ok := h.Position(); !ok || pos.Leader != 2 || pos.LeaderEpoch != 4 || pos.FetchOffset != 6 {
		t.Fatalf("the former leader's fetch position: %+v %v", pos, ok)
	}
}

// TestFollowerTruncatesWhereTheLogsDiverged: a follower whose log holds
// an epoch the new leader never had is cut back to where the leader's
// epoch ended, then appends the leader's batches as they are.
func TestFollowerTruncatesWhereTheLogsDiverged(t *testing.T) {
	leader := newHarness(t, 2)
	follower := newHarness(t, 1)
	// Epoch 1: broker 1 led, and wrote 4 records; only 2 reached broker 2.
	follower.update(t, metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1}, 1)
	follower.append(t, 2)
	follower.append(t, 2)
	leader.update(t, metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1, LeaderEpoch: 1}, 1)
	first, _ := follower.Log().AppendReadUpTo(nil, 0, 1<<20, 4)
	if _, err := leader.Log().Append(first[:batchSize(first)], storage.AppendOptions{FromLeader: true}); err != nil {
		t.Fatal(err)
	}
	// Epoch 2: broker 2 leads and writes 3 records.
	state := metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 2, PartitionEpoch: 1}
	leader.update(t, state, 1)
	leader.append(t, 3)
	follower.update(t, state, 1)

	for range 3 {
		pos, ok := follower.Position()
		if !ok {
			t.Fatal("the follower does not follow")
		}
		answer := kmsg.NewFetchResponseTopicPartition()
		if epoch, end := leader.Log().EndOffsetForEpoch(pos.LastFetchedEpoch); epoch != pos.LastFetchedEpoch || end < pos.FetchOffset {
			answer.DivergingEpoch.Epoch, answer.DivergingEpoch.EndOffset = epoch, end
		} else {
			answer.RecordBatches, _ = leader.Log().AppendReadUpTo(nil, pos.FetchOffset, 1<<20, leader.Log().LogEndOffset())
		}
		hw, _, err := leader.FollowerFetched(1, pos.FetchOffset, pos.LogStartOffset)
		if err != nil {
			t.Fatal(err)
		}
		answer.HighWatermark = hw
		if _, err := follower.Fetched(pos, &answer, true); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := follower.Log().AppendReadUpTo(nil, 0, 1<<20, follower.Log().LogEndOffset())
	want, _ := leader.Log().AppendReadUpTo(nil, 0, 1<<20, leader.Log().LogEndOffset())
	if string(got) != string(want) || follower.Log().LogEndOffset() != 5 {
		t.Fatalf("after the truncation the follower ends at %d with %d bytes; the leader at %d with %d", follower.Log().LogEndOffset(), len(got), leader.Log().LogEndOffset(), len(want))
	}
	if e, end := follower.Log().EndOffsetForEpoch(1); e != 1 || end != 2 {
		t.Fatalf("the follower's epoch 1 ends at %d (%d), want 2", end, e)
	}
}

func batchSize(records []byte) int { return 12 + int(binary.BigEndian.Uint32(records[8:])) }

// batch is a magic-v2 batch of n small records, encoded by kmsg.
func batch(n int) []byte {
	var records []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("value")}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		records = r.AppendTo(records)
	}
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: int32(n), Records: records}
	out := b.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32.Checksum(out[21:], crc32.MakeTable(crc32.Castagnoli)))
	return out
}

// TestFollowerFetchNews: a follower's fetch learns what it does not know
// yet: a moved high watermark is news for soon (a parked fetch carries it
// within HighWatermarkNewsDelay, or with the next records), told once.
func TestFollowerFetchNews(t *testing.T) {
	h := newHarness(t, 1)
	h.update(t, metadata.Partition{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1}, 1)
	h.append(t, 3)
	news := func(offset int64) News {
		t.Helper()
		_, n, err := h.FollowerFetched(2, offset, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := news(0); n != LogStartNews {
		t.Fatalf("the first fetch: %v, want LogStartNews (the follower learns the log start now)", n)
	}
	if n := news(0); n != NoNews {
		t.Fatalf("the second, the HW still 0: %v, want NoNews", n)
	}
	if n := news(3); n != HighWatermarkNews {
		t.Fatalf("the fetch that moved the HW to 3: %v, want HighWatermarkNews", n)
	}
	if n := news(3); n != NoNews {
		t.Fatalf("the HW told already: %v, want NoNews", n)
	}
}
