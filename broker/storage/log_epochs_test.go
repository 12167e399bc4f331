package storage

import (
	"math/rand/v2"
	"testing"
)

func TestLogLeaderEpochs(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	if tl.LatestLeaderEpoch() != UndefinedEpoch {
		t.Fatal("a new log knows an epoch")
	}
	tl.mustAppend(t, simpleBatch(5, 1), AppendOptions{LeaderEpoch: 0}) // 0-4
	tl.mustAppend(t, simpleBatch(5, 1), AppendOptions{LeaderEpoch: 0}) // 5-9
	// This broker becomes leader at epoch 2 and writes nothing yet: the
	// empty epoch is kept, across a restart too.
	if err := tl.AssignLeaderEpoch(2); err != nil {
		t.Fatal(err)
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	tl.reopen(t)
	if epoch, end := tl.EndOffsetForEpoch(0); epoch != 0 || end != 10 {
		t.Fatalf("epoch 0 ends at (%d, %d), want (0, 10)", epoch, end)
	}
	if epoch, end := tl.EndOffsetForEpoch(2); epoch != 2 || end != 10 {
		t.Fatalf("the empty epoch 2: (%d, %d), want (2, 10)", epoch, end)
	}
	if epoch, end := tl.EndOffsetForEpoch(1); epoch != 0 || end != 10 {
		t.Fatalf("epoch 1, never held: (%d, %d), want (0, 10)", epoch, end)
	}
	tl.mustAppend(t, simpleBatch(3, 1), AppendOptions{LeaderEpoch: 2}) // 10-12
	tl.mustAppend(t, simpleBatch(3, 1), AppendOptions{LeaderEpoch: 4}) // 13-15
	if epoch, end := tl.EndOffsetForEpoch(2); epoch != 2 || end != 13 {
		t.Fatalf("epoch 2 after epoch 4 began: (%d, %d), want (2, 13)", epoch, end)
	}
	if epoch, end := tl.EndOffsetForEpoch(4); epoch != 4 || end != 16 {
		t.Fatalf("the latest epoch: (%d, %d), want (4, 16)", epoch, end)
	}
	// Every batch carries the epoch it was written in.
	for _, h := range readAll(t, tl.Log) {
		want := int32(0)
		switch {
		case h.BaseOffset >= 13:
			want = 4
		case h.BaseOffset >= 10:
			want = 2
		}
		if h.PartitionLeaderEpoch != want {
			t.Fatalf("batch at %d has epoch %d, want %d", h.BaseOffset, h.PartitionLeaderEpoch, want)
		}
	}

	// A crash anywhere keeps the epochs of what was acknowledged.
	fs := tl.fs
	for seed := range uint64(10) {
		tl.fs = fs.Restart(rand.New(rand.NewPCG(seed, 3)))
		tl.reopen(t)
		if epoch, end := tl.EndOffsetForEpoch(2); epoch != 2 || end != 13 {
			t.Fatalf("after a crash (seed %d): epoch 2 (%d, %d)", seed, epoch, end)
		}
		fs = tl.fs
	}

	// Records deleted from the start: the epoch holding the new start now
	// starts there.
	if _, err := tl.DeleteRecords(11); err != nil {
		t.Fatal(err)
	}
	if epoch, end := tl.EndOffsetForEpoch(0); epoch != 0 || end != 11 {
		t.Fatalf("epoch 0, gone with the deleted records: (%d, %d), want (0, 11): older than any kept", epoch, end)
	}
}

func TestLogWithoutEpochsStartsAtEpochZero(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	tl.mustAppend(t, simpleBatch(4, 1), AppendOptions{})
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	// A log written before epochs were kept has no checkpoint; nor does
	// one that only ever had epoch 0 (the file would say what its absence
	// does).
	if _, ok := tl.fs.ReadFileForTest(tl.dir + "/" + leaderEpochFile); ok {
		t.Fatal("a log of epoch 0 only wrote a checkpoint")
	}
	tl.reopen(t)
	if epoch, end := tl.EndOffsetForEpoch(0); epoch != 0 || end != 4 {
		t.Fatalf("(%d, %d), want epoch 0 to the end", epoch, end)
	}
}

func TestTruncateTo(t *testing.T) {
	tl := openTestLog(t, smallConfig()) // 4 KiB segments: the cut crosses several
	var ends []int64
	for i := range 40 {
		epoch := int32(1)
		if i >= 30 {
			epoch = 3
		}
		r := tl.mustAppend(t, makeBatch(batchSpec{records: 2, valueSize: 200, firstTimestamp: int64(i)}), AppendOptions{LeaderEpoch: epoch})
		ends = append(ends, r.LastOffset+1)
	}
	segmentsBefore := len(tl.snapshotSegments())
	tl.mustAppend(t, idempotentBatch(7, 0, 0, 2), AppendOptions{LeaderEpoch: 3}) // 80-81
	tl.mustAppend(t, idempotentBatch(7, 0, 2, 2), AppendOptions{LeaderEpoch: 3}) // 82-83

	// The leader's log agrees up to offset 61 (inside the batch 60-61):
	// that batch goes too.
	end, err := tl.TruncateTo(61)
	if err != nil || end != 60 {
		t.Fatalf("truncate to 61: end %d (%v), want 60", end, err)
	}
	if tl.LogEndOffset() != 60 || len(tl.snapshotSegments()) >= segmentsBefore {
		t.Fatalf("log end %d, %d segments (from %d)", tl.LogEndOffset(), len(tl.snapshotSegments()), segmentsBefore)
	}
	if epoch, end := tl.EndOffsetForEpoch(3); epoch != UndefinedEpoch || end != -1 {
		t.Fatalf("epoch 3 began at 60 and is gone: (%d, %d), want (-1, -1)", epoch, end)
	}
	if epoch, end := tl.EndOffsetForEpoch(1); epoch != 1 || end != 60 {
		t.Fatalf("epoch 1 is the latest again: (%d, %d), want (1, 60)", epoch, end)
	}
	// The producer's batches were cut: its retry is appended again, not
	// answered as a duplicate of records that are gone.
	r := tl.mustAppend(t, idempotentBatch(7, 0, 0, 2), AppendOptions{LeaderEpoch: 5, Durable: true})
	if r.Duplicate || r.BaseOffset != 60 {
		t.Fatalf("the producer's first batch after the cut: %+v, want appended at 60", r)
	}
	headers := readAll(t, tl.Log)
	if last := headers[len(headers)-1]; last.BaseOffset != 60 || last.PartitionLeaderEpoch != 5 {
		t.Fatalf("last batch %+v", last)
	}
	for i, h := range headers[:len(headers)-1] {
		if h.BaseOffset != int64(2*i) {
			t.Fatalf("batch %d at %d", i, h.BaseOffset)
		}
	}
	// What the cut left is durable, and it reopens the same.
	tl.fs = tl.fs.Restart(rand.New(rand.NewPCG(1, 1)))
	tl.reopen(t)
	if tl.LogEndOffset() != 62 {
		t.Fatalf("after a crash: log end %d, want 62", tl.LogEndOffset())
	}
	if epoch, end := tl.EndOffsetForEpoch(1); epoch != 1 || end != 60 {
		t.Fatalf("after a crash: epoch 1 (%d, %d)", epoch, end)
	}
	// Cutting past the end changes nothing; cutting below the start empties.
	if end, err := tl.TruncateTo(1000); err != nil || end != 62 {
		t.Fatalf("truncate past the end: %d %v", end, err)
	}
	if end, err := tl.TruncateTo(-5); err != nil || end != 0 || tl.LogEndOffset() != 0 {
		t.Fatalf("truncate below the start: %d %v", end, err)
	}
	tl.mustAppend(t, simpleBatch(1, 1), AppendOptions{LeaderEpoch: 6})
	if h := readAll(t, tl.Log); len(h) != 1 || h[0].BaseOffset != 0 {
		t.Fatalf("after emptying: %+v", h)
	}
}

// TestTruncateToTheLogStart: a cut at or into the batch that holds the log
// start (DeleteRecords moved it inside a batch) empties the log and starts
// it again at its start, never with its end below its start.
func TestTruncateToTheLogStart(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	tl.mustAppend(t, simpleBatch(10, 1), AppendOptions{LeaderEpoch: 1}) // 0-9
	tl.mustAppend(t, simpleBatch(10, 1), AppendOptions{LeaderEpoch: 1}) // 10-19
	if _, err := tl.DeleteRecords(5); err != nil {
		t.Fatal(err)
	}
	end, err := tl.TruncateTo(8)
	if err != nil || end != 5 || tl.LogEndOffset() != 5 || tl.LogStartOffset() != 5 {
		t.Fatalf("truncate into the start's batch: end %d (%v), log %d..%d; want 5..5", end, err, tl.LogStartOffset(), tl.LogEndOffset())
	}
	if epoch, _ := tl.EndOffsetForEpoch(1); epoch != UndefinedEpoch {
		t.Fatalf("epochs kept after emptying: %d", epoch)
	}
	r := tl.mustAppend(t, simpleBatch(2, 1), AppendOptions{LeaderEpoch: 2, Durable: true})
	if r.BaseOffset != 5 {
		t.Fatalf("next append at %d, want 5", r.BaseOffset)
	}
	tl.fs = tl.fs.Restart(rand.New(rand.NewPCG(2, 2)))
	tl.reopen(t)
	if tl.LogStartOffset() != 5 || tl.LogEndOffset() != 7 {
		t.Fatalf("after a crash: %d..%d, want 5..7", tl.LogStartOffset(), tl.LogEndOffset())
	}
	if epoch, end := tl.EndOffsetForEpoch(2); epoch != 2 || end != 7 {
		t.Fatalf("after a crash: epoch 2 (%d, %d)", epoch, end)
	}
}

// TestEpochsBelowTheStartAreDroppedAtOpen: both cuts apply at open.
func TestEpochsBelowTheStartAreDroppedAtOpen(t *testing.T) {
	tl := openTestLog(t, smallConfig())
	tl.mustAppend(t, simpleBatch(5, 1), AppendOptions{LeaderEpoch: 1}) // 0-4
	tl.mustAppend(t, simpleBatch(5, 1), AppendOptions{LeaderEpoch: 2}) // 5-9
	if err := tl.AssignLeaderEpoch(4); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.DeleteRecords(7); err != nil {
		t.Fatal(err)
	}
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	tl.reopen(t)
	if epoch, end := tl.EndOffsetForEpoch(1); epoch != 1 || end != 7 {
		t.Fatalf("epoch 1, all below the start: (%d, %d), want (1, 7): older than every epoch kept", epoch, end)
	}
	if epoch, end := tl.EndOffsetForEpoch(4); epoch != 4 || end != 10 {
		t.Fatalf("the empty epoch 4: (%d, %d)", epoch, end)
	}
}
