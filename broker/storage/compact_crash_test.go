package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kqstack/kqstack/broker/clock"
)

// compactionCrashLog writes the same compacted log for a seed every time:
// rounds of overwrites and tombstones of a few keys, some batches
// compressed, some of an idempotent producer, every append durable, and
// fillers with unique keys and the newest timestamps last, so the log time
// is the same however much of it a crash let the cleaner finish.
func compactionCrashLog(t *testing.T, seed uint64) (*testLog, []BatchHeader) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0xc1ea4))
	cfg := compactConfig()
	cfg.SegmentBytes = int64(300 + rng.IntN(900))
	cfg.IndexIntervalBytes = 64 + rng.IntN(256)
	cfg.DeleteRetention = time.Duration(rng.IntN(3)) * time.Minute
	if rng.IntN(3) == 0 {
		cfg.CleanerBufferBytes = 1024 // several passes
	}
	tl := &testLog{fs: NewMemFS(), clock: clock.NewManual(testEpoch), dir: "/data/compact-0", cfg: cfg}
	tl.reopen(t)
	ts := testEpoch.UnixMilli()
	sequence := int32(0)
	for round := range 20 + rng.IntN(30) {
		var group []testRecord
		for range 1 + rng.IntN(6) {
			key := fmt.Sprintf("k%d", rng.IntN(12))
			if rng.IntN(6) == 0 {
				group = append(group, tombstone(key, ts+int64(round)*20_000))
			} else {
				group = append(group, rec(key, fmt.Sprintf("v%d-%d", round, rng.IntN(1000)), ts+int64(round)*20_000))
			}
		}
		var producer *producerSpec
		if rng.IntN(3) == 0 {
			producer = &producerSpec{id: 5, sequence: sequence}
			sequence += int32(len(group))
		}
		codec := []int16{codecNone, codecNone, codecSnappy, codecZstd}[rng.IntN(4)]
		tl.mustAppend(t, keyedBatch(t, codec, producer, group...), AppendOptions{Durable: true})
	}
	for start := tl.SegmentCount(); tl.SegmentCount() == start; {
		tl.mustAppend(t, keyedBatch(t, codecNone, nil, rec(fmt.Sprintf("filler-%d", tl.LogEndOffset()), "x", ts+time.Hour.Milliseconds())), AppendOptions{Durable: true})
	}
	_, headers := readRecords(t, tl.Log)
	return tl, headers
}

// cleanFully cleans until the cleaner reaches the active segment.
func cleanFully(t *testing.T, l *Log) []CleanResult {
	t.Helper()
	var results []CleanResult
	for {
		result, err := l.Clean()
		if err != nil {
			t.Fatalf("clean: %v", err)
		}
		if result.End <= result.FirstDirty {
			return results
		}
		results = append(results, result)
	}
}

// batchesIn returns the batches of all whose base offset is in [from, to).
func batchesIn(all [][]byte, from, to int64) [][]byte {
	var out [][]byte
	for _, b := range all {
		if base := parseBatchHeader(b).BaseOffset; base >= from && base < to {
			out = append(out, b)
		}
	}
	return out
}

func sameBatches(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestCrashDuringCleanLeavesTheOldOrTheNewSegments crashes the machine at
// a random file operation of a clean (and, sometimes, again while the log
// recovers), then checks that each run of segments the cleaner replaces
// holds either exactly its old batches or exactly its cleaned ones, that
// nothing else changed, and that cleaning again gives what a clean without
// a crash gives.
func TestCrashDuringCleanLeavesTheOldOrTheNewSegments(t *testing.T) {
	seeds := 400
	if testing.Short() || raceDetector {
		seeds = 80
	}
	outcomes := map[string]int{}
	swapsFinished := 0
	for seed := range uint64(seeds) {
		// The clean without a crash, on an identical log.
		reference, _ := compactionCrashLog(t, seed)
		original := logBatches(t, reference.Log)
		results := cleanFully(t, reference.Log)
		cleaned := logBatches(t, reference.Log)
		if len(results) == 0 || len(results[0].Replaced) == 0 {
			t.Fatalf("seed %d: the reference clean replaced nothing", seed)
		}
		replaced := results[0].Replaced // the first pass is the one interrupted

		tl, _ := compactionCrashLog(t, seed)
		rng := rand.New(rand.NewPCG(seed, 0xc4a54))
		tl.fs.CrashAfter(1 + rng.IntN(120))
		_, err := tl.Clean()
		tl.fs.CrashAfter(0)
		if err == nil {
			outcomes["finished before the crash point"]++
			continue
		}
		if !errors.Is(err, ErrCrashed) && !errors.Is(err, ErrLogOffline) {
			t.Fatalf("seed %d: clean failed with %v, not the crash", seed, err)
		}
		tl.fs = tl.fs.Restart(rng)
		if names, _ := tl.fs.ReadDir(tl.dir); bytes.Contains([]byte(fmt.Sprint(names)), []byte(swapSuffix)) {
			swapsFinished++ // the crash fell after a commit point: Open finishes the swap
		}
		recovered := recoverAfterCrash(t, tl, rng)
		after := logBatches(t, recovered)
		previous := int64(-1)
		state := ""
		for _, r := range replaced {
			got := batchesIn(after, r.Base, r.End)
			switch {
			case sameBatches(got, batchesIn(original, r.Base, r.End)):
				state += "o"
			case sameBatches(got, batchesIn(cleaned, r.Base, r.End)):
				state += "n"
			default:
				t.Fatalf("seed %d: segments [%d, %d) hold a mix of old and cleaned batches after the crash", seed, r.Base, r.End)
			}
			if !sameBatches(batchesIn(after, previous, r.Base), batchesIn(original, previous, r.Base)) {
				t.Fatalf("seed %d: batches in [%d, %d), outside what the cleaner replaced, changed", seed, previous, r.Base)
			}
			previous = r.End
		}
		if !sameBatches(batchesIn(after, previous, 1<<62), batchesIn(original, previous, 1<<62)) {
			t.Fatalf("seed %d: batches from %d on, which the cleaner does not touch, changed", seed, previous)
		}
		outcomes[state]++
		cleanFully(t, recovered)
		if !sameBatches(logBatches(t, recovered), cleaned) {
			t.Fatalf("seed %d: cleaning again after the crash does not give what a clean without one gives", seed)
		}
		if err := recovered.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("outcomes by run of segments (o: old, n: new): %v; %d swaps finished by Open", outcomes, swapsFinished)
	mixed := 0
	for state := range outcomes {
		if bytes.Contains([]byte(state), []byte("n")) && bytes.Contains([]byte(state), []byte("o")) {
			mixed++
		}
	}
	if mixed == 0 || swapsFinished == 0 {
		t.Fatalf("the crashes never fell between two swaps, or never inside one: %v, %d swaps finished by Open", outcomes, swapsFinished)
	}
}

// recoverAfterCrash opens the log on the restarted machine, crashing some
// of the attempts midway through recovery (and restarting again), until
// one succeeds.
func recoverAfterCrash(t *testing.T, tl *testLog, rng *rand.Rand) *Log {
	t.Helper()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			tl.fs = tl.fs.Restart(rng)
		}
		if attempt < 3 && rng.IntN(3) == 0 {
			tl.fs.CrashAfter(1 + rng.IntN(8))
		}
		l, err := Open(tl.dir, Options{FS: tl.fs, Clock: tl.clock, Logger: quietLogger(), Config: tl.cfg})
		tl.fs.CrashAfter(0)
		if errors.Is(err, ErrCrashed) {
			continue
		}
		if err != nil {
			t.Fatalf("open after the crash: %v", err)
		}
		tl.Log = l
		return l
	}
}
