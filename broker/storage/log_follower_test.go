package storage

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// TestAppendFromLeader: a follower writes the leader's batches as they
// are (offsets, epochs, producer ids), its epoch cache is rebuilt from
// them, and the two logs read back byte for byte the same.
func TestAppendFromLeader(t *testing.T) {
	leader := openTestLog(t, smallConfig())
	follower := openTestLog(t, smallConfig())
	follower.dir = "/data/orders-0-follower"
	follower.reopen(t)
	for i := range 30 {
		epoch := int32(2)
		if i >= 20 {
			epoch = 5
		}
		leader.mustAppend(t, makeBatch(batchSpec{records: 3, valueSize: 100, firstTimestamp: int64(i)}), AppendOptions{LeaderEpoch: epoch})
	}
	leader.mustAppend(t, idempotentBatch(9, 0, 0, 2), AppendOptions{LeaderEpoch: 5}) // 90-91

	for offset := int64(0); offset < leader.LogEndOffset(); {
		data, err := leader.AppendReadUpTo(nil, offset, 700, leader.LogEndOffset())
		if err != nil {
			t.Fatal(err)
		}
		r, err := follower.Append(data, AppendOptions{FromLeader: true, LeaderEpoch: 99, LogAppendTime: true})
		if err != nil {
			t.Fatalf("follower append at %d: %v", offset, err)
		}
		offset = r.LastOffset + 1
	}
	if want, got := readEverything(t, leader.Log), readEverything(t, follower.Log); !bytes.Equal(want, got) {
		t.Fatalf("the follower's log differs from the leader's: %d bytes against %d", len(got), len(want))
	}
	for _, epoch := range []int32{2, 5} {
		le, lo := leader.EndOffsetForEpoch(epoch)
		fe, fo := follower.EndOffsetForEpoch(epoch)
		if le != fe || lo != fo {
			t.Fatalf("epoch %d: leader (%d, %d), follower (%d, %d)", epoch, le, lo, fe, fo)
		}
	}
	// The producer's state came along: a retry is a duplicate on the
	// follower once it leads.
	if r := follower.mustAppend(t, idempotentBatch(9, 0, 0, 2), AppendOptions{LeaderEpoch: 6}); !r.Duplicate || r.BaseOffset != 90 {
		t.Fatalf("retry on the follower: %+v, want the duplicate at 90", r)
	}
	// A batch that does not start at the log end is refused.
	stale, _ := leader.AppendReadUpTo(nil, 0, 1, leader.LogEndOffset())
	if _, err := follower.Append(stale, AppendOptions{FromLeader: true}); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("a batch from the past: %v, want ErrOffsetOutOfRange", err)
	}
}

// TestHighWatermark: set by replication, it bounds what Read returns but
// not what a follower reads, offsets between it and the log end are not
// out of range, and a rise wakes long polls.
func TestHighWatermark(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	for i := range 10 {
		tl.mustAppend(t, simpleBatch(1, int64(i)), AppendOptions{})
	}
	if tl.HighWatermark() != 10 {
		t.Fatalf("an unreplicated log's high watermark is its end: %d", tl.HighWatermark())
	}
	tl.SetHighWatermark(4)
	if h := readAll(t, tl.Log); len(h) != 4 {
		t.Fatalf("read %d batches below the high watermark 4", len(h))
	}
	if data, err := tl.Read(7, 1<<20); err != nil || len(data) != 0 {
		t.Fatalf("read at 7, between the high watermark and the end: %d bytes, %v; want none and no error", len(data), err)
	}
	if data, err := tl.AppendReadUpTo(nil, 7, 1<<20, tl.LogEndOffset()); err != nil || parseLastOffset(data) != 9 {
		t.Fatalf("a follower's read at 7: %v", err)
	}
	if _, err := tl.Read(11, 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	wake := tl.Appended()
	tl.SetHighWatermark(8)
	select {
	case <-wake:
	default:
		t.Fatal("a rising high watermark did not wake the long poll")
	}
	if end, err := tl.TruncateTo(6); err != nil || end != 6 || tl.HighWatermark() != 6 {
		t.Fatalf("truncated below the high watermark: end %d, high watermark %d (%v)", end, tl.HighWatermark(), err)
	}
	if start, err := tl.FollowLogStart(50); err != nil || start != 6 {
		t.Fatalf("a leader's log start past this log's end: %d %v, want 6", start, err)
	}
}

func parseLastOffset(data []byte) int64 {
	last := int64(-1)
	_ = WalkBatchHeaders(data, func(h BatchHeader) error { last = h.LastOffset(); return nil })
	return last
}

func readEverything(t *testing.T, l *Log) []byte {
	t.Helper()
	var all []byte
	for offset := l.LogStartOffset(); offset < l.LogEndOffset(); {
		data, err := l.AppendReadUpTo(nil, offset, 1<<20, l.LogEndOffset())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
		offset = parseLastOffset(data) + 1
	}
	return all
}

// TestTruncateFullyAndStartAt: a follower left below the leader's log
// start empties its log and goes on from the leader's start, also after a
// restart.
func TestTruncateFullyAndStartAt(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	for i := range 5 {
		tl.mustAppend(t, simpleBatch(2, int64(i)), AppendOptions{LeaderEpoch: 1})
	}
	if err := tl.TruncateFullyAndStartAt(40); err != nil {
		t.Fatal(err)
	}
	if tl.LogStartOffset() != 40 || tl.LogEndOffset() != 40 {
		t.Fatalf("start %d end %d, want 40 and 40", tl.LogStartOffset(), tl.LogEndOffset())
	}
	leader := openTestLog(t, smallConfig())
	leader.dir = "/data/leader"
	leader.reopen(t)
	if err := leader.TruncateFullyAndStartAt(40); err != nil {
		t.Fatal(err)
	}
	leader.mustAppend(t, simpleBatch(3, 9), AppendOptions{LeaderEpoch: 4})
	data, _ := leader.AppendReadUpTo(nil, 40, 1<<20, 43)
	if _, err := tl.Append(data, AppendOptions{FromLeader: true}); err != nil {
		t.Fatal(err)
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	tl.reopen(t)
	if tl.LogStartOffset() != 40 || tl.LogEndOffset() != 43 || tl.LatestLeaderEpoch() != 4 {
		t.Fatalf("after a restart: start %d end %d epoch %d", tl.LogStartOffset(), tl.LogEndOffset(), tl.LatestLeaderEpoch())
	}
}

// TestTruncateAtTheEndDropsAnEmptyEpoch: a broker that led an epoch
// without writing in it, then follows, forgets that epoch when it
// truncates to its own end, so its next fetch names the epoch before.
func TestTruncateAtTheEndDropsAnEmptyEpoch(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	tl.mustAppend(t, simpleBatch(3, 1), AppendOptions{LeaderEpoch: 4})
	if err := tl.AssignLeaderEpoch(5); err != nil {
		t.Fatal(err)
	}
	if tl.LatestLeaderEpoch() != 5 {
		t.Fatalf("latest epoch %d, want 5", tl.LatestLeaderEpoch())
	}
	if end, err := tl.TruncateTo(3); err != nil || end != 3 {
		t.Fatalf("truncate to the end: %d %v", end, err)
	}
	if tl.LatestLeaderEpoch() != 4 {
		t.Fatalf("latest epoch after the truncation %d, want 4", tl.LatestLeaderEpoch())
	}
}

// TestHighWatermarkCheckpoint: a replicated log's high watermark survives
// a clean close and a save before a crash; an unreplicated one saves none.
func TestHighWatermarkCheckpoint(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	for i := range 6 {
		tl.mustAppend(t, simpleBatch(1, int64(i)), AppendOptions{Durable: true})
	}
	if err := tl.SaveHighWatermark(); err != nil || tl.SavedHighWatermark() != -1 {
		t.Fatalf("an unreplicated log saved a high watermark: %d %v", tl.SavedHighWatermark(), err)
	}
	tl.SetHighWatermark(4)
	if err := tl.SaveHighWatermark(); err != nil {
		t.Fatal(err)
	}
	tl.SetHighWatermark(5) // not saved before the crash
	tl.fs = tl.fs.Restart(rand.New(rand.NewPCG(2, 2)))
	tl.reopen(t)
	if got := tl.SavedHighWatermark(); got != 4 {
		t.Fatalf("after a crash: saved high watermark %d, want 4", got)
	}
	tl.SetHighWatermark(6)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	tl.reopen(t)
	if got := tl.SavedHighWatermark(); got != 6 {
		t.Fatalf("after a clean close: saved high watermark %d, want 6", got)
	}
}

// TestTruncateFullyForgetsProducers: after a follower starts again at the
// leader's log start, its old producers' batches are gone and a retry of
// one is appended, not taken for a duplicate of records that do not exist.
func TestTruncateFullyForgetsProducers(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	tl.mustAppend(t, idempotentBatch(3, 0, 0, 2), AppendOptions{})
	if err := tl.Close(); err != nil { // a producer snapshot at offset 2
		t.Fatal(err)
	}
	tl.reopen(t)
	if err := tl.TruncateFullyAndStartAt(2); err != nil {
		t.Fatal(err)
	}
	if r := tl.mustAppend(t, idempotentBatch(3, 0, 0, 2), AppendOptions{}); r.Duplicate || r.BaseOffset != 2 {
		t.Fatalf("the producer's batch after the reset: %+v, want appended at 2", r)
	}
}

// TestRetentionStopsAtTheHighWatermark: segments the followers may not
// have yet are kept, however old.
func TestRetentionStopsAtTheHighWatermark(t *testing.T) {
	cfg := smallConfig()
	cfg.RetentionAge = time.Hour
	tl := openTestLog(t, cfg)
	for i := range 60 {
		tl.mustAppend(t, makeBatch(batchSpec{records: 1, valueSize: 200, firstTimestamp: testEpoch.UnixMilli() + int64(i)}), AppendOptions{})
	}
	tl.SetHighWatermark(3)
	tl.clock.Advance(2 * time.Hour)
	if _, err := tl.EnforceRetention(); err != nil {
		t.Fatal(err)
	}
	if start := tl.LogStartOffset(); start > 3 {
		t.Fatalf("retention moved the log start to %d, past the high watermark 3", start)
	}
	tl.SetHighWatermark(-1)
	if _, err := tl.EnforceRetention(); err != nil || tl.LogStartOffset() <= 3 {
		t.Fatalf("with the high watermark at the end: start %d, %v", tl.LogStartOffset(), err)
	}
}
