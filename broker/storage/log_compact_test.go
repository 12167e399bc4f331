package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// appendRecords appends each group of records as one batch and returns
// every record as written, with its offset.
func appendRecords(t testing.TB, tl *testLog, codec int16, groups ...[]testRecord) []readRecord {
	t.Helper()
	var written []readRecord
	for _, group := range groups {
		result := tl.mustAppend(t, keyedBatch(t, codec, nil, group...), AppendOptions{})
		for i, r := range group {
			written = append(written, readRecord{offset: result.BaseOffset + int64(i), key: string(r.key), hasKey: r.key != nil,
				value: string(r.value), tombstone: r.value == nil, timestamp: r.timestamp})
		}
	}
	return written
}

// rounds writes rounds of one record per key, each round one batch of
// keys records, values "v<round>-<key>", at timestamps from ts on.
func rounds(n, keys int, ts int64) [][]testRecord {
	var groups [][]testRecord
	for round := range n {
		var group []testRecord
		for k := range keys {
			group = append(group, rec(fmt.Sprintf("k%d", k), fmt.Sprintf("v%d-%d", round, k), ts+int64(round)))
		}
		groups = append(groups, group)
	}
	return groups
}

func recordsEqual(t *testing.T, got, want []readRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d:\n got  %v\n want %v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.offset != w.offset || g.key != w.key || g.value != w.value || g.tombstone != w.tombstone {
			t.Fatalf("record %d: got %v, want %v\n got  %v\n want %v", i, g, w, got, want)
		}
	}
}

func TestCleanKeepsLastRecordOfEachKey(t *testing.T) {
	ts := testEpoch.UnixMilli()
	for _, codec := range []int16{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		t.Run(fmt.Sprintf("codec=%d", codec), func(t *testing.T) {
			tl := openTestLog(t, compactConfig())
			written := appendRecords(t, tl, codec, rounds(12, 5, ts)...)
			if tl.SegmentCount() < 4 {
				t.Fatalf("only %d segments; the test needs several", tl.SegmentCount())
			}
			active := tl.activeSegment().baseOffset
			result := tl.mustClean(t)
			if result.End != active || result.FirstDirty != 0 {
				t.Fatalf("cleaned [%d, %d), want [0, %d): the active segment is never cleaned", result.FirstDirty, result.End, active)
			}
			if len(result.Replaced) == 0 || result.BytesWritten >= result.BytesRead || result.RecordsKept >= result.RecordsRead {
				t.Fatalf("clean did not shrink the log: %+v", result)
			}
			got, headers := readRecords(t, tl.Log)
			recordsEqual(t, got, lastPerKey(written, active, -1<<62))
			for _, h := range headers {
				if h.BaseOffset < active && h.Compression() != int(codec) {
					t.Fatalf("cleaned batch at %d has codec %d, want %d", h.BaseOffset, h.Compression(), codec)
				}
			}
			if tl.CleanerCheckpoint() != active {
				t.Fatalf("checkpoint %d, want %d", tl.CleanerCheckpoint(), active)
			}
			// Cleaning again changes nothing.
			again, err := tl.Clean()
			if err != nil || again.End != active || len(again.Replaced) != 0 {
				t.Fatalf("second clean: %+v, %v", again, err)
			}
			// It survives a restart.
			if err := tl.Close(); err != nil {
				t.Fatal(err)
			}
			tl.reopen(t)
			reread, _ := readRecords(t, tl.Log)
			recordsEqual(t, reread, got)
		})
	}
}

// rollWith appends filler records under their own keys until the active
// segment rolls, so what came before is in closed segments.
func rollWith(t *testing.T, tl *testLog, timestamp int64) []readRecord {
	t.Helper()
	var written []readRecord
	for start := tl.SegmentCount(); tl.SegmentCount() == start; {
		written = append(written, appendRecords(t, tl, codecNone, []testRecord{
			rec(fmt.Sprintf("filler-%d", tl.LogEndOffset()), "x", timestamp)})...)
	}
	return written
}

func TestCleanRemovesTombstonesAfterDeleteRetention(t *testing.T) {
	cfg := compactConfig()
	cfg.DeleteRetention = time.Hour
	tl := openTestLog(t, cfg)
	ts := testEpoch.UnixMilli()
	var written []readRecord
	written = append(written, appendRecords(t, tl, codecNone, rounds(3, 4, ts)...)...)
	written = append(written, appendRecords(t, tl, codecNone, []testRecord{tombstone("k1", ts+10), tombstone("k2", ts+10)})...)
	// Later records, half an hour on: the log time is 30 minutes past the
	// tombstones, within the retention.
	written = append(written, rollWith(t, tl, ts+(30*time.Minute).Milliseconds())...)
	result := tl.mustClean(t)
	got, _ := readRecords(t, tl.Log)
	recordsEqual(t, got, lastPerKey(written, result.End, -1<<62))
	tombstones := 0
	for _, r := range got {
		if r.tombstone {
			tombstones++
		}
		if r.key == "k1" && !r.tombstone {
			t.Fatalf("k1's value survived its tombstone: %v", got)
		}
	}
	if tombstones != 2 {
		t.Fatalf("%d tombstones kept within delete.retention.ms, want 2: %v", tombstones, got)
	}

	// Two hours on, the tombstones are past the retention and go.
	written = append(written, rollWith(t, tl, ts+(2*time.Hour).Milliseconds())...)
	result = tl.mustClean(t)
	got, _ = readRecords(t, tl.Log)
	recordsEqual(t, got, lastPerKey(written, result.End, ts+time.Hour.Milliseconds()))
	for _, r := range got {
		if r.key == "k1" || r.key == "k2" {
			t.Fatalf("%v is still there two hours after its tombstone", r)
		}
	}
}

func TestCleanStopsAtTheHighWatermarkAndTheCompactionLag(t *testing.T) {
	now := testEpoch.UnixMilli()
	cases := []struct {
		name string
		// setup writes the log and returns the offset the clean must stop at.
		setup func(t *testing.T, tl *testLog) int64
	}{
		{"active segment", func(t *testing.T, tl *testLog) int64 {
			appendRecords(t, tl, codecNone, rounds(10, 4, now)...)
			return tl.activeSegment().baseOffset
		}},
		{"high watermark inside a segment", func(t *testing.T, tl *testLog) int64 {
			appendRecords(t, tl, codecNone, rounds(10, 4, now)...)
			segments := tl.snapshotSegments()
			holding := segments[len(segments)/2]
			tl.SetHighWatermark(holding.baseOffset + 2) // inside it
			return holding.baseOffset
		}},
		{"high watermark at a segment's base", func(t *testing.T, tl *testLog) int64 {
			appendRecords(t, tl, codecNone, rounds(10, 4, now)...)
			segments := tl.snapshotSegments()
			tl.SetHighWatermark(segments[2].baseOffset)
			return segments[2].baseOffset
		}},
		{"min compaction lag", func(t *testing.T, tl *testLog) int64 {
			cfg := tl.Config()
			cfg.MinCompactionLag = time.Hour
			if err := tl.SetConfig(cfg); err != nil {
				t.Fatal(err)
			}
			appendRecords(t, tl, codecNone, rounds(6, 4, now-(2*time.Hour).Milliseconds())...)
			rollWith(t, tl, now-(2*time.Hour).Milliseconds())
			young := tl.activeSegment().baseOffset
			appendRecords(t, tl, codecNone, rounds(6, 4, now-(10*time.Minute).Milliseconds())...)
			return young
		}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			tl := openTestLog(t, compactConfig())
			want := tt.setup(t, tl)
			before, _ := readRecords(t, tl.Log)
			result := tl.mustClean(t)
			if result.End != want {
				t.Fatalf("cleaned up to %d, want %d", result.End, want)
			}
			after, _ := readRecords(t, tl.Log)
			recordsEqual(t, after, lastPerKey(before, want, -1<<62))
		})
	}
}

func TestCompactedLogRefusesRecordsWithoutKey(t *testing.T) {
	ts := testEpoch.UnixMilli()
	for _, codec := range []int16{codecNone, codecSnappy, codecZstd} {
		tl := openTestLog(t, compactConfig())
		keyless := keyedBatch(t, codec, nil, rec("a", "1", ts), testRecord{value: []byte("no key"), timestamp: ts})
		_, err := tl.Append(keyless, AppendOptions{})
		var batchErr *BatchError
		if !errors.Is(err, ErrInvalidRecord) || !errors.As(err, &batchErr) ||
			!strings.Contains(err.Error(), "compacted topic cannot accept message without key") {
			t.Fatalf("codec %d: appending a record without a key: %v, want a *BatchError wrapping ErrInvalidRecord", codec, err)
		}
		if tl.LogEndOffset() != 0 {
			t.Fatalf("codec %d: the refused batch was appended", codec)
		}
		// An empty key is a key.
		tl.mustAppend(t, keyedBatch(t, codec, nil, rec("", "empty key", ts)), AppendOptions{})
		// A follower takes what its leader wrote.
		fromLeader := keyedBatch(t, codec, nil, testRecord{value: []byte("x"), timestamp: ts})
		setBaseOffset(fromLeader, tl.LogEndOffset())
		if _, err := tl.Append(fromLeader, AppendOptions{FromLeader: true}); err != nil {
			t.Fatalf("codec %d: a follower refused its leader's record without a key: %v", codec, err)
		}
	}

	// A log that was not compacted takes records without keys; once it is,
	// the cleaner removes them, as Kafka's does.
	cfg := compactConfig()
	cfg.Cleanup = CleanupDelete
	tl := openTestLog(t, cfg)
	written := appendRecords(t, tl, codecNone, []testRecord{{value: []byte("no key"), timestamp: ts}, rec("a", "1", ts)})
	written = append(written, rollWith(t, tl, ts)...)
	cfg.Cleanup = CleanupCompact
	if err := tl.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := tl.Append(keyedBatch(t, codecNone, nil, testRecord{value: []byte("x"), timestamp: ts}), AppendOptions{}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("after the switch to compact, a record without a key: %v", err)
	}
	result := tl.mustClean(t)
	got, _ := readRecords(t, tl.Log)
	recordsEqual(t, got, lastPerKey(written, result.End, -1<<62))
	if got[0].key != "a" {
		t.Fatalf("the record without a key survived: %v", got)
	}
}

func TestCleanKeepsTheLastBatchOfEachProducer(t *testing.T) {
	ts := testEpoch.UnixMilli()
	tl := openTestLog(t, compactConfig())
	// Producer 7 writes k0 and k1 twice, in four batches; then a plain
	// producer overwrites both keys, so every record of producer 7 goes.
	for sequence := range int32(4) {
		batch := keyedBatch(t, codecNone, &producerSpec{id: 7, sequence: sequence},
			rec(fmt.Sprintf("k%d", sequence%2), fmt.Sprintf("p7-%d", sequence), ts))
		tl.mustAppend(t, batch, AppendOptions{})
	}
	lastOfProducer := tl.LogEndOffset() - 1
	written := appendRecords(t, tl, codecNone, []testRecord{rec("k0", "plain", ts), rec("k1", "plain", ts)})
	rollWith(t, tl, ts)
	tl.mustClean(t)
	got, headers := readRecords(t, tl.Log)
	if got[0].key != "k0" || got[0].value != "plain" || got[0].offset != written[0].offset {
		t.Fatalf("records after the clean: %v", got)
	}
	var producerBatches []BatchHeader
	for _, h := range headers {
		if h.ProducerID == 7 {
			producerBatches = append(producerBatches, h)
		}
	}
	if len(producerBatches) != 1 {
		t.Fatalf("%d batches of producer 7 kept, want only its last, emptied: %+v", len(producerBatches), producerBatches)
	}
	if h := producerBatches[0]; h.BaseOffset != lastOfProducer || h.LastOffset() != lastOfProducer || h.RecordCount != 0 || h.BaseSequence != 3 {
		t.Fatalf("producer 7's last batch: %+v, want offset %d, no records, base sequence 3", h, lastOfProducer)
	}

	// Producer state rebuilt from the log alone (no snapshot) still knows
	// producer 7's sequence: a retry of sequence 3 is a duplicate, 4 follows.
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := tl.fs.ReadDir(tl.dir)
	for _, name := range names {
		if strings.HasSuffix(name, producerSnapshotSuffix) {
			if err := tl.fs.Remove(tl.dir + "/" + name); err != nil {
				t.Fatal(err)
			}
		}
	}
	tl.reopen(t)
	retry := tl.mustAppend(t, keyedBatch(t, codecNone, &producerSpec{id: 7, sequence: 3}, rec("k1", "p7-3", ts)), AppendOptions{})
	if !retry.Duplicate || retry.BaseOffset != lastOfProducer {
		t.Fatalf("retry of producer 7's last sequence: %+v, want a duplicate at %d", retry, lastOfProducer)
	}
	tl.mustAppend(t, keyedBatch(t, codecNone, &producerSpec{id: 7, sequence: 4}, rec("k2", "p7-4", ts)), AppendOptions{})
}

// waitForCleaner waits for a clean Maintain started.
func waitForCleaner(l *Log) { l.cleaner.wg.Wait() }

func TestMaintainCleansOnceTheDirtyRatioIsReached(t *testing.T) {
	ts := testEpoch.UnixMilli()
	cfg := compactConfig()
	cfg.MinCleanableDirtyRatio = 0.5
	tl := openTestLog(t, cfg)
	appendRecords(t, tl, codecNone, rounds(10, 4, ts)...)
	rollWith(t, tl, ts)
	if err := tl.Maintain(); err != nil {
		t.Fatal(err)
	}
	waitForCleaner(tl.Log)
	first := tl.CleanerCheckpoint()
	if first == 0 {
		t.Fatal("Maintain did not clean a log that was all dirty")
	}

	// A little more dirt stays below the ratio: no clean.
	appendRecords(t, tl, codecNone, rounds(1, 4, ts)...)
	rollWith(t, tl, ts)
	if err := tl.Maintain(); err != nil {
		t.Fatal(err)
	}
	waitForCleaner(tl.Log)
	if got := tl.CleanerCheckpoint(); got != first {
		t.Fatalf("Maintain cleaned at a dirty ratio below %v (checkpoint %d -> %d)", cfg.MinCleanableDirtyRatio, first, got)
	}

	// max.compaction.lag.ms cleans it anyway once the dirt is old enough.
	cfg.MaxCompactionLag = time.Hour
	if err := tl.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	tl.clock.Advance(2 * time.Hour)
	if err := tl.Maintain(); err != nil {
		t.Fatal(err)
	}
	waitForCleaner(tl.Log)
	if got := tl.CleanerCheckpoint(); got <= first {
		t.Fatalf("Maintain did not clean dirt older than max.compaction.lag.ms (checkpoint %d)", got)
	}
}

func TestRetentionByAgeAndSizeOnlyWithTheDeletePolicy(t *testing.T) {
	ts := testEpoch.UnixMilli()
	for _, policy := range []CleanupPolicy{CleanupCompact, CleanupCompactDelete} {
		cfg := compactConfig()
		cfg.Cleanup = policy
		cfg.RetentionAge = time.Hour
		tl := openTestLog(t, cfg)
		appendRecords(t, tl, codecNone, rounds(10, 4, ts)...)
		tl.clock.Advance(3 * time.Hour)
		deleted, err := tl.EnforceRetention()
		if err != nil {
			t.Fatal(err)
		}
		if policy.Deletes() != (deleted > 0) {
			t.Fatalf("cleanup.policy=%v: retention deleted %d segments", policy, deleted)
		}
	}
}

func TestCleanInSeveralPassesWhenTheKeysDoNotFit(t *testing.T) {
	ts := testEpoch.UnixMilli()
	cfg := compactConfig()
	cfg.SegmentBytes = 4096
	cfg.CleanerBufferBytes = 1024 // 42 slots: 37 entries
	tl := openTestLog(t, cfg)
	written := appendRecords(t, tl, codecNone, rounds(8, 30, ts)...)
	written = append(written, rollWith(t, tl, ts)...)
	active := tl.activeSegment().baseOffset
	passes := 0
	for end := int64(0); end < active; passes++ {
		result := tl.mustClean(t)
		if result.End <= end {
			t.Fatalf("pass %d made no progress (at %d)", passes, end)
		}
		end = result.End
		got, _ := readRecords(t, tl.Log)
		recordsEqual(t, got, lastPerKey(written, end, -1<<62))
	}
	if passes < 3 {
		t.Fatalf("%d passes; a 1 KiB key map should need more", passes)
	}
}

// replicate appends leader's batches from offset from on to follower, as a
// follower's fetches do, chunk bytes at a time.
func replicate(t *testing.T, leader, follower *testLog, chunk int) {
	t.Helper()
	for next := follower.LogEndOffset(); next < leader.HighWatermark(); {
		data, err := leader.Read(next, chunk)
		if err != nil || len(data) == 0 {
			t.Fatalf("leader read at %d: %d bytes, %v", next, len(data), err)
		}
		for len(data) > 0 && parseBatchHeader(data).BaseOffset < next {
			data = data[parseBatchHeader(data).Size():]
		}
		if len(data) == 0 {
			continue
		}
		if _, err := follower.Append(append([]byte(nil), data...), AppendOptions{FromLeader: true, Durable: true}); err != nil {
			t.Fatalf("follower append at %d: %v", next, err)
		}
		next = follower.LogEndOffset()
	}
}

func TestFollowerTakesACleanedLeadersGapsAndEmptyBatches(t *testing.T) {
	ts := testEpoch.UnixMilli()
	leader := openTestLog(t, compactConfig())
	for sequence := range int32(3) {
		leader.mustAppend(t, keyedBatch(t, codecSnappy, &producerSpec{id: 9, sequence: sequence}, rec("p", fmt.Sprint(sequence), ts)), AppendOptions{})
	}
	appendRecords(t, leader, codecNone, rounds(8, 4, ts)...)
	appendRecords(t, leader, codecNone, []testRecord{rec("p", "plain", ts)})
	rollWith(t, leader, ts)
	if _, err := leader.Clean(); err != nil {
		t.Fatal(err)
	}
	want, headers := readRecords(t, leader.Log)
	empty := 0
	for _, h := range headers {
		if h.RecordCount == 0 {
			empty++
		}
	}
	if empty != 1 {
		t.Fatalf("%d emptied batches on the leader, want producer 9's last", empty)
	}

	// One segment: the leader's gaps land in the follower's active segment.
	followerConfig := compactConfig()
	followerConfig.SegmentBytes = 1 << 20
	follower := openTestLog(t, followerConfig)
	replicate(t, leader, follower, 300)
	got, _ := readRecords(t, follower.Log)
	recordsEqual(t, got, want)
	if follower.LogEndOffset() != leader.LogEndOffset() {
		t.Fatalf("follower ends at %d, leader at %d", follower.LogEndOffset(), leader.LogEndOffset())
	}
	// The gaps are in the follower's active segment too; an unclean stop
	// must not take them for a torn tail.
	follower.fs.Crash()
	follower.fs = follower.fs.Restart(rand.New(rand.NewPCG(1, 2)))
	follower.reopen(t)
	if follower.LogEndOffset() != leader.LogEndOffset() {
		t.Fatalf("after an unclean stop the follower ends at %d, want %d", follower.LogEndOffset(), leader.LogEndOffset())
	}
	got, _ = readRecords(t, follower.Log)
	recordsEqual(t, got, want)
}

func TestReplicasCleanedToTheSamePointHoldTheSameBatches(t *testing.T) {
	ts := testEpoch.UnixMilli()
	build := func(segmentBytes int64) *testLog {
		cfg := compactConfig()
		cfg.SegmentBytes = segmentBytes
		cfg.DeleteRetention = time.Minute
		tl := openTestLog(t, cfg)
		sequence := int32(0)
		for round := range 30 {
			var group []testRecord
			for k := range 5 {
				key := fmt.Sprintf("k%d", (round*3+k)%11)
				if (round+k)%7 == 0 {
					group = append(group, tombstone(key, ts+int64(round)*10_000))
				} else {
					group = append(group, rec(key, fmt.Sprintf("v%d", round), ts+int64(round)*10_000))
				}
			}
			if round%10 == 9 {
				// A batch larger than either replica's segments rolls both
				// before it: the segment bases the test cleans to.
				group = append(group, rec("big", strings.Repeat("b", 800), ts+int64(round)*10_000))
			}
			codec := []int16{codecNone, codecSnappy, codecZstd, codecGzip, codecLZ4}[round%5]
			if round%10 == 9 {
				codec = codecNone // so it stays large
			}
			var producer *producerSpec
			if round%3 == 0 {
				producer = &producerSpec{id: 11, sequence: sequence}
				sequence += int32(len(group))
			}
			tl.mustAppend(t, keyedBatch(t, codec, producer, group...), AppendOptions{})
		}
		return tl
	}
	// Two replicas whose segments roll at different offsets, as a leader's
	// and a follower's do.
	a, b := build(400), build(700)
	var common []int64
	for _, sa := range a.snapshotSegments() {
		for _, sb := range b.snapshotSegments()[1:] {
			if sa.baseOffset == sb.baseOffset && sa.baseOffset < min(a.activeSegment().baseOffset, b.activeSegment().baseOffset) {
				common = append(common, sa.baseOffset)
			}
		}
	}
	if len(common) < 2 {
		t.Fatalf("the replicas share only segment bases %v; the test needs two", common)
	}
	// a is cleaned twice, to a common base and then to a later one; b once,
	// to the later one. Both end up with the same batches, byte for byte.
	first, second := common[0], common[len(common)-1]
	a.SetHighWatermark(first)
	if r, err := a.Clean(); err != nil || r.End != first {
		t.Fatalf("first clean of a: %+v, %v", r, err)
	}
	for _, l := range []*testLog{a, b} {
		l.SetHighWatermark(second)
		if r, err := l.Clean(); err != nil || r.End != second {
			t.Fatalf("clean to %d: %+v, %v", second, r, err)
		}
		l.SetHighWatermark(-1)
	}
	batchesA, batchesB := logBatches(t, a.Log), logBatches(t, b.Log)
	if len(batchesA) != len(batchesB) {
		t.Fatalf("%d batches on one replica, %d on the other", len(batchesA), len(batchesB))
	}
	for i := range batchesA {
		if !bytes.Equal(batchesA[i], batchesB[i]) {
			t.Fatalf("batch %d differs: %+v vs %+v", i, parseBatchHeader(batchesA[i]), parseBatchHeader(batchesB[i]))
		}
	}
	if len(batchesA) >= 30 {
		t.Fatalf("%d batches left of 30: the cleaner removed none", len(batchesA))
	}
}

// Cleaning runs beside appends, reads, retention (which deletes the
// oldest segments when the cleaner has emptied them, and may delete the
// ones it works on) and Close: readers always see whole batches in offset
// order, and when the writers stop, one more clean leaves exactly the last
// record of each key.
func TestCleanWhileAppendingReadingAndDeleting(t *testing.T) {
	ts := testEpoch.UnixMilli()
	cfg := compactConfig()
	cfg.Cleanup = CleanupCompactDelete
	cfg.RetentionAge = 30 * time.Minute // segments the cleaner emptied go
	cfg.RetentionBytes = 600
	cfg.MinCleanableDirtyRatio = 0.1
	tl := openTestLog(t, cfg)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	wg.Add(2)
	go func() { // reader
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			last := int64(-1)
			for next := tl.LogStartOffset(); next < tl.HighWatermark(); {
				data, err := tl.Read(next, 4096)
				if errors.Is(err, ErrOffsetOutOfRange) {
					break // retention moved the log start past next
				}
				if err != nil || len(data) == 0 {
					errs <- fmt.Errorf("read at %d: %d bytes, %v", next, len(data), err)
					return
				}
				for len(data) > 0 {
					h, err := checkBatchFrame(data)
					if err != nil || h.BaseOffset <= last {
						errs <- fmt.Errorf("read at %d: batch %+v after %d: %v", next, h, last, err)
						return
					}
					last, next = h.LastOffset(), h.LastOffset()+1
					data = data[h.Size():]
				}
			}
		}
	}()
	go func() { // maintenance
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			tl.clock.Advance(10 * time.Minute)
			if err := tl.Maintain(); err != nil {
				errs <- err
				return
			}
			waitForCleaner(tl.Log)
		}
	}()
	for round := range 300 {
		var group []testRecord
		for k := range 4 {
			group = append(group, rec(fmt.Sprintf("k%d", (round+k)%10), fmt.Sprint(round), tl.clock.Now().UnixMilli()))
		}
		tl.mustAppend(t, keyedBatch(t, []int16{codecNone, codecSnappy}[round%2], nil, group...), AppendOptions{})
		if round%20 == 0 {
			time.Sleep(time.Millisecond) // let maintenance interleave
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if tl.CleanerCheckpoint() == 0 {
		t.Fatal("the cleaner never ran beside the appends")
	}
	before, _ := readRecords(t, tl.Log)
	result := tl.mustClean(t)
	after, _ := readRecords(t, tl.Log)
	recordsEqual(t, after, lastPerKey(before, result.End, -1<<62))

	// Close stops a clean under way and waits for it.
	for range 20 {
		tl.mustAppend(t, keyedBatch(t, codecNone, nil, rounds(1, 10, ts)[0]...), AppendOptions{})
	}
	done := make(chan error, 1)
	go func() {
		_, err := tl.Clean()
		done <- err
	}()
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("a clean racing Close: %v", err)
	}
	if _, err := tl.Clean(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Clean after Close: %v", err)
	}
}

func TestEmptiedBatchesGoOnceTheirProducerWouldHaveExpired(t *testing.T) {
	ts := testEpoch.UnixMilli()
	tl := openTestLog(t, compactConfig())
	tl.mustAppend(t, keyedBatch(t, codecNone, &producerSpec{id: 3}, rec("a", "1", ts)), AppendOptions{})
	appendRecords(t, tl, codecNone, []testRecord{rec("a", "2", ts)})
	rollWith(t, tl, ts)
	emptied := func() int {
		_, headers := readRecords(t, tl.Log)
		n := 0
		for _, h := range headers {
			if h.RecordCount == 0 {
				n++
			}
		}
		return n
	}
	tl.mustClean(t)
	if emptied() != 1 {
		t.Fatal("producer 3's last batch was not kept")
	}
	// A day of log time later, producer 3 would have expired.
	rollWith(t, tl, ts+(ProducerExpiry+time.Hour).Milliseconds())
	tl.mustClean(t)
	if emptied() != 0 {
		t.Fatal("producer 3's emptied batch outlived the producer's expiry")
	}
}

// A read that finds only emptied batches goes on to a batch with records,
// in the same segment or the next, skipping nothing: segmentio/kafka-go
// cannot take a fetch answer of empty batches alone.
func TestReadGoesOnPastEmptiedBatches(t *testing.T) {
	ts := testEpoch.UnixMilli()
	tl := openTestLog(t, compactConfig())
	long := strings.Repeat("v", 110)
	tl.mustAppend(t, keyedBatch(t, codecNone, &producerSpec{id: 1}, rec("a", long, ts)), AppendOptions{})
	tl.mustAppend(t, keyedBatch(t, codecNone, &producerSpec{id: 2}, rec("b", long, ts)), AppendOptions{})
	rollWith(t, tl, ts)
	if first := tl.snapshotSegments()[1].baseOffset; first != 2 {
		t.Fatalf("the first segment holds offsets up to %d; the test wants the two producers' batches alone there", first)
	}
	written := appendRecords(t, tl, codecNone, []testRecord{rec("a", "2", ts), rec("b", "2", ts)})
	rollWith(t, tl, ts)
	tl.mustClean(t)
	for _, maxBytes := range []int{1, 1 << 20} {
		data, err := tl.Read(0, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		var headers []BatchHeader
		for len(data) > 0 {
			h := parseBatchHeader(data)
			headers = append(headers, h)
			data = data[h.Size():]
		}
		if len(headers) < 3 || headers[0].RecordCount != 0 || headers[1].RecordCount != 0 || headers[2].RecordCount == 0 ||
			headers[0].BaseOffset != 0 || headers[1].BaseOffset != 1 {
			t.Fatalf("read at 0 with max %d bytes: %+v, want both emptied batches and then records", maxBytes, headers)
		}
		if maxBytes == 1 && (len(headers) != 3 || headers[2].BaseOffset > written[0].offset) {
			t.Fatalf("read at 0 with max 1 byte: %+v, want up to the first batch with records", headers)
		}
	}
}

// With CleanerBytesPerSecond, a clean takes as long, on the log's clock,
// as its I/O at that rate; Close stops a clean that waits.
func TestCleanerIsThrottled(t *testing.T) {
	ts := testEpoch.UnixMilli()
	cfg := compactConfig()
	cfg.CleanerBytesPerSecond = 1000
	tl := openTestLog(t, cfg)
	appendRecords(t, tl, codecNone, rounds(20, 4, ts)...)
	rollWith(t, tl, ts)
	done := make(chan CleanResult, 1)
	go func() {
		result, err := tl.Clean()
		if err != nil {
			t.Error(err)
		}
		done <- result
	}()
	var waited time.Duration
	var result CleanResult
	for finished := false; !finished; {
		select {
		case result = <-done:
			finished = true
		case <-time.After(time.Millisecond):
			tl.clock.Advance(100 * time.Millisecond)
			waited += 100 * time.Millisecond
		}
	}
	io := result.BytesRead*2 + result.BytesWritten // read to map, read to rewrite, written
	if min := time.Duration(float64(io)/1000*float64(time.Second)) - time.Second; waited < min {
		t.Fatalf("a clean of %d bytes of I/O at 1000 B/s finished after %v of log time, want at least %v", io, waited, min)
	}

	appendRecords(t, tl, codecNone, rounds(20, 4, ts)...)
	rollWith(t, tl, ts)
	go func() {
		_, err := tl.Clean()
		if !errors.Is(err, ErrClosed) {
			t.Errorf("a throttled clean when the log closed: %v, want ErrClosed", err)
		}
		close(done)
	}()
	time.Sleep(10 * time.Millisecond)
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
}

// A follower cut back below its cleaning point cleans what it appends
// there again: the checkpoint follows the cut.
func TestTruncationBelowTheCleaningPoint(t *testing.T) {
	ts := testEpoch.UnixMilli()
	tl := openTestLog(t, compactConfig())
	appendRecords(t, tl, codecNone, rounds(10, 4, ts)...)
	rollWith(t, tl, ts)
	tl.mustClean(t)
	cleaned, _ := readRecords(t, tl.Log)
	cut := tl.CleanerCheckpoint() - 10
	end, err := tl.TruncateTo(cut)
	if err != nil {
		t.Fatal(err)
	}
	if got := tl.CleanerCheckpoint(); got != end {
		t.Fatalf("checkpoint %d after cutting the log to %d", got, end)
	}
	// What the cut leaves is what the clean had left below it. (Records a
	// clean removed because of later ones that the cut took are gone: the
	// cleaner stays below the high watermark, which only an unclean
	// election cuts back.)
	var kept []readRecord
	for _, r := range cleaned {
		if r.offset < end {
			kept = append(kept, r)
		}
	}
	// The leader's log went on differently from the cut.
	fromLeader := keyedBatch(t, codecNone, nil, rec("k0", "leader", ts), rec("k1", "leader", ts), rec("k0", "leader-again", ts))
	setBaseOffset(fromLeader, end)
	if _, err := tl.Append(fromLeader, AppendOptions{FromLeader: true}); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, readRecord{offset: end, key: "k0", value: "leader"}, readRecord{offset: end + 1, key: "k1", value: "leader"},
		readRecord{offset: end + 2, key: "k0", value: "leader-again"})
	kept = append(kept, rollWith(t, tl, ts)...)
	for i := range kept {
		kept[i].hasKey = true
	}
	result := tl.mustClean(t)
	if result.FirstDirty != end {
		t.Fatalf("the clean after the cut started at %d, want %d", result.FirstDirty, end)
	}
	got, _ := readRecords(t, tl.Log)
	recordsEqual(t, got, lastPerKey(kept, result.End, -1<<62))
}
