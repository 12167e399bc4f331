package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/kqstack/kqstack/broker/clock"
)

// storedBatch is a batch as the log should hold it.
type storedBatch struct {
	baseOffset int64
	bytes      []byte
}

// crashRun drives one log through cycles of concurrent appends, a crash at
// a random operation, and recovery, checking after every recovery that:
//   - offsets are dense from the log start, and every batch read back is
//     whole and passes its CRC (no partial batch is readable);
//   - everything the previous recovery kept is still there, unchanged;
//   - every append acknowledged as durable is there, unchanged, at the
//     offsets it was given;
//   - anything else is exactly a batch some appender wrote at that offset.
type crashRun struct {
	t      *testing.T
	rng    *rand.Rand
	fs     *MemFS
	clock  *clock.Manual
	cfg    Config
	before []storedBatch // what the last recovery found
}

const crashDir = "/data/crash-0"

func TestCrashRecoveryKeepsDurableAppends(t *testing.T) {
	crashPoints := 1000
	if testing.Short() {
		crashPoints = 100
	}
	crashes := 0
	for seed := range crashPoints / 2 {
		run := newCrashRun(t, uint64(seed))
		crashes += run.cycles(2)
	}
	if crashes < crashPoints {
		t.Fatalf("only %d crash points exercised, want %d", crashes, crashPoints)
	}
	t.Logf("%d crash points", crashes)
}

func newCrashRun(t *testing.T, seed uint64) *crashRun {
	rng := rand.New(rand.NewPCG(seed, 0xc7a54))
	cfg := DefaultConfig()
	cfg.SegmentBytes = int64(1024 + rng.IntN(8192))
	cfg.IndexIntervalBytes = 64 + rng.IntN(512)
	cfg.RetentionAge = -1
	if rng.IntN(4) == 0 {
		cfg.Flush = FlushPolicy{Mode: FlushByInterval, Messages: int64(1 + rng.IntN(20))}
	}
	return &crashRun{t: t, rng: rng, fs: NewMemFS(), clock: clock.NewManual(testEpoch), cfg: cfg}
}

// cycles runs n append-and-crash cycles and returns how many crashes it caused.
func (r *crashRun) cycles(n int) int {
	crashes := 0
	for cycle := range n {
		l := r.recover(fmt.Sprintf("cycle %d", cycle))
		acked, attempts := r.appendUntilCrash(l)
		crashes++
		r.fs = r.fs.Restart(r.rng)
		after := r.recover(fmt.Sprintf("after crash %d", cycle))
		r.check(after, acked, attempts)
		_ = after.Close()
		r.fs.Crash() // the next cycle starts from an unclean stop too
		r.fs = r.fs.Restart(r.rng)
	}
	return crashes
}

// recover opens the log, crashing some of the attempts midway through
// recovery, until one succeeds; it checks what the previous recovery kept.
func (r *crashRun) recover(when string) *Log {
	r.t.Helper()
	for attempt := 0; ; attempt++ {
		if attempt < 3 && r.rng.IntN(4) == 0 {
			r.fs.CrashAfter(1 + r.rng.IntN(6))
		}
		l, err := Open(crashDir, Options{FS: r.fs, Clock: r.clock, Logger: quietLogger(), Config: r.cfg})
		r.fs.CrashAfter(0)
		if errors.Is(err, ErrCrashed) {
			r.fs = r.fs.Restart(r.rng)
			continue
		}
		if err != nil {
			r.t.Fatalf("%s: open: %v", when, err)
		}
		found := r.readBack(l, when)
		for i, b := range r.before {
			if i >= len(found) || found[i].baseOffset != b.baseOffset || !bytes.Equal(found[i].bytes, b.bytes) {
				r.t.Fatalf("%s: batch at offset %d, kept by the previous recovery, is gone or changed", when, b.baseOffset)
			}
		}
		r.before = found
		return l
	}
}

// readBack reads the whole log, checking density and integrity.
func (r *crashRun) readBack(l *Log, when string) []storedBatch {
	r.t.Helper()
	var found []storedBatch
	next := l.LogStartOffset()
	for next < l.HighWatermark() {
		data, err := l.Read(next, 1<<16)
		if err != nil || len(data) == 0 {
			r.t.Fatalf("%s: read at %d (end %d): %d bytes, %v", when, next, l.HighWatermark(), len(data), err)
		}
		for len(data) > 0 {
			h, err := checkBatchFrame(data)
			if err != nil {
				r.t.Fatalf("%s: a damaged batch is readable at %d: %v", when, next, err)
			}
			if h.BaseOffset != next {
				r.t.Fatalf("%s: offsets not dense: batch at %d, want %d", when, h.BaseOffset, next)
			}
			found = append(found, storedBatch{h.BaseOffset, append([]byte(nil), data[:h.Size()]...)})
			next = h.LastOffset() + 1
			data = data[h.Size():]
		}
	}
	return found
}

// appendUntilCrash runs four appenders until the MemFS crashes at a random
// operation. It returns the appends acknowledged as durable and every batch
// that was given an offset, by base offset.
func (r *crashRun) appendUntilCrash(l *Log) (acked []storedBatch, attempts map[int64][]byte) {
	r.fs.CrashAfter(1 + r.rng.IntN(200))
	if r.rng.IntN(5) == 0 {
		r.fs.FailNextSync(errors.New("injected EIO"))
	}
	var mu sync.Mutex
	attempts = make(map[int64][]byte)
	var wg sync.WaitGroup
	for appender := range 4 {
		seed := r.rng.Uint64()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(appender)))
			for range 200 {
				batch := makeBatch(batchSpec{records: 1 + rng.IntN(5), valueSize: rng.IntN(300), firstTimestamp: int64(rng.IntN(1 << 20))})
				setBaseOffset(batch, -1) // Append rewrites it in place once it assigns an offset
				durable := rng.IntN(2) == 0
				result, err := l.Append(batch, AppendOptions{Durable: durable, LeaderEpoch: 3})
				mu.Lock()
				if h := parseBatchHeader(batch); h.BaseOffset >= 0 {
					attempts[h.BaseOffset] = batch
				}
				if err == nil && durable && r.cfg.Flush.Mode == FlushOnDurable {
					acked = append(acked, storedBatch{result.BaseOffset, batch})
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	r.fs.Crash()
	return acked, attempts
}

func (r *crashRun) check(l *Log, acked []storedBatch, attempts map[int64][]byte) {
	r.t.Helper()
	byOffset := make(map[int64][]byte, len(r.before))
	for _, b := range r.before {
		byOffset[b.baseOffset] = b.bytes
	}
	for _, a := range acked {
		got, ok := byOffset[a.baseOffset]
		if !ok || !bytes.Equal(got, a.bytes) {
			r.t.Fatalf("durable append at offset %d lost or changed after the crash (log end %d)", a.baseOffset, l.LogEndOffset())
		}
	}
	for _, b := range r.before {
		if want, ok := attempts[b.baseOffset]; ok && !bytes.Equal(want, b.bytes) {
			r.t.Fatalf("batch at offset %d is not the batch appended there", b.baseOffset)
		}
	}
}
