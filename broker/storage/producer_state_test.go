package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// idempotentBatch is a batch of n records from producer id/epoch starting
// at sequence.
func idempotentBatch(id int64, epoch int16, sequence int32, n int) []byte {
	b := makeBatch(batchSpec{records: n, valueSize: 8, firstTimestamp: testEpoch.UnixMilli(), producerID: id})
	binary.BigEndian.PutUint16(b[batchProducerEpochAt:], uint16(epoch))
	binary.BigEndian.PutUint32(b[batchBaseSequenceAt:], uint32(sequence))
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttributesAt:], crc32c))
	return b
}

func TestIdempotentProducer(t *testing.T) {
	type step struct {
		name      string
		batch     []byte
		wantBase  int64
		wantDup   bool
		wantError error
	}
	steps := []step{
		{"first batch", idempotentBatch(7, 0, 0, 3), 0, false, nil},
		{"next batch", idempotentBatch(7, 0, 3, 2), 3, false, nil},
		{"retry of the first: original offsets", idempotentBatch(7, 0, 0, 3), 0, true, nil},
		{"retry of the second", idempotentBatch(7, 0, 3, 2), 3, true, nil},
		{"gap", idempotentBatch(7, 0, 9, 1), 0, false, ErrOutOfOrderSequence},
		{"another producer is independent", idempotentBatch(8, 0, 0, 1), 5, false, nil},
		{"unknown producer past sequence 0", idempotentBatch(9, 0, 4, 1), 0, false, ErrUnknownProducerID},
		{"new epoch restarts at 0", idempotentBatch(7, 1, 0, 1), 6, false, nil},
		{"old epoch is fenced", idempotentBatch(7, 0, 5, 1), 0, false, ErrProducerFenced},
		{"new epoch must start at 0", idempotentBatch(8, 3, 1, 1), 0, false, ErrOutOfOrderSequence},
		{"non-idempotent batches pass", simpleBatch(2, 1), 7, false, nil},
	}
	run := func(t *testing.T, l *testLog, steps []step) {
		for _, s := range steps {
			result, err := l.Append(s.batch, AppendOptions{Durable: true})
			if !errors.Is(err, s.wantError) {
				t.Fatalf("%s: error %v, want %v", s.name, err, s.wantError)
			}
			if err == nil && (result.BaseOffset != s.wantBase || result.Duplicate != s.wantDup) {
				t.Fatalf("%s: base %d duplicate %v, want %d %v", s.name, result.BaseOffset, result.Duplicate, s.wantBase, s.wantDup)
			}
		}
	}
	l := openTestLog(t, smallConfig())
	run(t, l, steps)

	t.Run("clean restart: from the snapshot", func(t *testing.T) {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l.reopen(t)
		run(t, l, []step{
			{"retry after restart is still a duplicate", idempotentBatch(7, 1, 0, 1), 6, true, nil},
			{"fencing survives restart", idempotentBatch(7, 0, 5, 1), 0, false, ErrProducerFenced},
			// Only in the log, not in any snapshot: the next subtest replays it.
			{"sequence continues after restart", idempotentBatch(7, 1, 1, 1), 9, false, nil},
		})
	})
	t.Run("unclean restart: snapshot plus replay of the log", func(t *testing.T) {
		l.fs.Crash()
		l.fs = l.fs.Restart(rand.New(rand.NewPCG(3, 3)))
		l.reopen(t)
		run(t, l, []step{
			{"the replayed batch is a duplicate", idempotentBatch(7, 1, 1, 1), 9, true, nil},
			{"and the sequence goes on from it", idempotentBatch(7, 1, 2, 1), 10, false, nil},
			{"fencing survives", idempotentBatch(7, 0, 5, 1), 0, false, ErrProducerFenced},
		})
	})
}
