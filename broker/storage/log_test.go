package storage

import (
	"errors"
	"testing"
	"time"
)

func TestAppendAssignsOffsetsAndReadReturnsWholeBatches(t *testing.T) {
	l := openTestLog(t, smallConfig())
	sizes := []int{1, 3, 2, 5}
	var want []AppendResult
	for i, n := range sizes {
		want = append(want, l.mustAppend(t, simpleBatch(n, int64(1000+i)), AppendOptions{LeaderEpoch: 4}))
	}
	offset := int64(0)
	for i, r := range want {
		if r.BaseOffset != offset || r.LastOffset != offset+int64(sizes[i])-1 {
			t.Fatalf("append %d: got [%d,%d], want base %d", i, r.BaseOffset, r.LastOffset, offset)
		}
		offset += int64(sizes[i])
	}
	if l.LogEndOffset() != 11 || l.HighWatermark() != 11 || l.LogStartOffset() != 0 {
		t.Fatalf("offsets: start %d end %d hw %d", l.LogStartOffset(), l.LogEndOffset(), l.HighWatermark())
	}

	tests := []struct {
		name      string
		offset    int64
		maxBytes  int
		wantBases []int64
		wantErr   error
	}{
		{"from the start", 0, 1 << 20, []int64{0, 1, 4, 6}, nil},
		{"middle of a batch returns that batch", 5, 1 << 20, []int64{4, 6}, nil},
		{"last record", 10, 1 << 20, []int64{6}, nil},
		{"at the high watermark: nothing", 11, 1 << 20, nil, nil},
		{"max bytes 1 still returns one whole batch", 1, 1, []int64{1}, nil},
		{"above the high watermark", 12, 100, nil, ErrOffsetOutOfRange},
		{"negative", -1, 100, nil, ErrOffsetOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := l.Read(tt.offset, tt.maxBytes)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			var bases []int64
			for len(data) > 0 {
				h, err := checkBatchFrame(data)
				if err != nil {
					t.Fatal(err)
				}
				if h.PartitionLeaderEpoch != 4 {
					t.Fatalf("leader epoch %d, want 4", h.PartitionLeaderEpoch)
				}
				bases = append(bases, h.BaseOffset)
				data = data[h.Size():]
			}
			if !equalInt64s(bases, tt.wantBases) {
				t.Fatalf("batches %v, want %v", bases, tt.wantBases)
			}
		})
	}
}

func TestAppendRejectsBadBatchesAndKeepsTheLog(t *testing.T) {
	l := openTestLog(t, smallConfig())
	l.mustAppend(t, simpleBatch(2, 1), AppendOptions{})
	bad := simpleBatch(2, 1)
	bad[len(bad)-1] ^= 1
	records := append(simpleBatch(1, 1), bad...)
	if _, err := l.Append(records, AppendOptions{}); !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("got %v, want ErrCorruptMessage", err)
	}
	if l.LogEndOffset() != 2 {
		t.Fatalf("a refused append moved the end to %d", l.LogEndOffset())
	}
	if r := l.mustAppend(t, simpleBatch(1, 1), AppendOptions{}); r.BaseOffset != 2 {
		t.Fatalf("next append at %d, want 2", r.BaseOffset)
	}
}

func TestAppendSeveralBatchesInOneCall(t *testing.T) {
	l := openTestLog(t, smallConfig())
	records := append(simpleBatch(2, 10), simpleBatch(3, 20)...)
	r := l.mustAppend(t, records, AppendOptions{})
	if r.BaseOffset != 0 || r.LastOffset != 4 {
		t.Fatalf("got [%d,%d], want [0,4]", r.BaseOffset, r.LastOffset)
	}
	headers := readAll(t, l.Log)
	if len(headers) != 2 || headers[1].BaseOffset != 2 {
		t.Fatalf("headers %+v", headers)
	}
}

func TestIndexLookupReadsFewHeaders(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IndexIntervalBytes = 512
	l := openTestLog(t, cfg)
	for i := range 400 {
		l.mustAppend(t, simpleBatch(1+i%3, int64(i)), AppendOptions{})
	}
	s := l.activeSegment()
	s.mu.RLock()
	entries := append([]indexEntry(nil), s.offsets...)
	s.mu.RUnlock()
	if len(entries) < 10 {
		t.Fatalf("only %d index entries for %d bytes at interval 512", len(entries), s.size.Load())
	}
	for i := 1; i < len(entries); i++ {
		gap := entries[i].position - entries[i-1].position
		if gap < 512 || gap > 512+200 {
			t.Fatalf("entries %d and %d are %d bytes apart; want about one interval", i-1, i, gap)
		}
	}
	// Every offset is found through the index.
	for offset := int64(0); offset < l.LogEndOffset(); offset += 7 {
		data, err := l.Read(offset, 1)
		if err != nil {
			t.Fatal(err)
		}
		h := parseBatchHeader(data)
		if offset < h.BaseOffset || offset > h.LastOffset() {
			t.Fatalf("read at %d returned batch [%d,%d]", offset, h.BaseOffset, h.LastOffset())
		}
	}
}

func TestRollBySizeAndByAge(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentAge = time.Hour
	l := openTestLog(t, cfg)
	batch := simpleBatch(4, 0)
	perSegment := int(cfg.SegmentBytes) / len(batch)
	for range perSegment {
		l.mustAppend(t, simpleBatch(4, testEpoch.UnixMilli()), AppendOptions{})
	}
	if l.SegmentCount() != 1 {
		t.Fatalf("%d segments before the segment is full", l.SegmentCount())
	}
	l.mustAppend(t, simpleBatch(4, testEpoch.UnixMilli()), AppendOptions{})
	if l.SegmentCount() != 2 {
		t.Fatalf("%d segments after the segment is full, want 2", l.SegmentCount())
	}
	if base := l.activeSegment().baseOffset; base != int64(perSegment*4) {
		t.Fatalf("new segment base %d, want %d", base, perSegment*4)
	}
	l.clock.Advance(time.Hour + time.Second)
	l.mustAppend(t, simpleBatch(1, l.clock.Now().UnixMilli()), AppendOptions{})
	if l.SegmentCount() != 3 {
		t.Fatalf("%d segments after the segment aged, want 3", l.SegmentCount())
	}
	if headers := readAll(t, l.Log); headers[len(headers)-1].LastOffset() != l.LogEndOffset()-1 {
		t.Fatal("reading across segments lost the end")
	}
}

func TestRetention(t *testing.T) {
	tests := []struct {
		name           string
		retentionAge   time.Duration
		retentionBytes int64
		advance        time.Duration
		wantSegments   int
	}{
		{"nothing expired", time.Hour, -1, 30 * time.Minute, 4},
		{"all but the active segment expired", time.Hour, -1, 2 * time.Hour, 1},
		{"forever keeps everything", -1, -1, 1000 * time.Hour, 4},
		{"size keeps the log at least the limit", -1, 5000, 0, 3},
		{"size deletes down to the segments the limit needs", -1, 1000, 0, 2},
		{"size 0 keeps only the active segment", -1, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig()
			cfg.RetentionAge, cfg.RetentionBytes = tt.retentionAge, tt.retentionBytes
			l := openTestLog(t, cfg)
			for l.SegmentCount() < 4 {
				l.mustAppend(t, simpleBatch(4, l.clock.Now().UnixMilli()), AppendOptions{})
			}
			l.clock.Advance(tt.advance)
			end := l.LogEndOffset()
			if err := l.Maintain(); err != nil {
				t.Fatal(err)
			}
			if l.SegmentCount() != tt.wantSegments {
				t.Fatalf("%d segments, want %d", l.SegmentCount(), tt.wantSegments)
			}
			if want := l.activeSegmentsFirstBase(tt.wantSegments); l.LogStartOffset() != want {
				t.Fatalf("log start %d, want %d", l.LogStartOffset(), want)
			}
			if l.LogEndOffset() != end {
				t.Fatal("retention changed the log end")
			}
			if _, err := l.Read(l.LogStartOffset()-1, 100); l.LogStartOffset() > 0 && !errors.Is(err, ErrOffsetOutOfRange) {
				t.Fatalf("read below the start: %v", err)
			}
			readAll(t, l.Log)
			names, _ := l.fs.ReadDir(l.dir)
			if got := countSuffix(names, logFileSuffix); got != tt.wantSegments {
				t.Fatalf("%d .log files on disk, want %d", got, tt.wantSegments)
			}
		})
	}
}

func (tl *testLog) activeSegmentsFirstBase(int) int64 {
	tl.segmentsMu.RLock()
	defer tl.segmentsMu.RUnlock()
	return tl.segments[0].baseOffset
}

func TestDeleteRecords(t *testing.T) {
	l := openTestLog(t, smallConfig())
	for l.SegmentCount() < 3 {
		l.mustAppend(t, simpleBatch(4, 1), AppendOptions{})
	}
	secondBase := l.snapshotSegments()[1].baseOffset
	target := secondBase + 2
	start, err := l.DeleteRecords(target)
	if err != nil || start != target {
		t.Fatalf("DeleteRecords: %d, %v", start, err)
	}
	if l.SegmentCount() != 2 {
		t.Fatalf("%d segments, want the first deleted", l.SegmentCount())
	}
	if _, err := l.Read(target-1, 10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	if _, err := l.DeleteRecords(l.HighWatermark() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("delete past the high watermark: %v", err)
	}
	// The start survives a restart even though it is inside a segment.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.reopen(t)
	if l.LogStartOffset() != target {
		t.Fatalf("after restart the log start is %d, want %d", l.LogStartOffset(), target)
	}
	if start, _ := l.DeleteRecords(-1); start != l.HighWatermark() {
		t.Fatalf("DeleteRecords(-1) moved the start to %d, want the high watermark %d", start, l.HighWatermark())
	}
}

func TestOffsetsByTime(t *testing.T) {
	cfg := smallConfig()
	l := openTestLog(t, cfg)
	// Batch i holds records with timestamps 1000*i .. 1000*i+2.
	for i := 1; i <= 30; i++ {
		l.mustAppend(t, simpleBatch(3, int64(1000*i)), AppendOptions{})
	}
	if l.SegmentCount() < 2 {
		t.Fatal("want several segments")
	}
	tests := []struct {
		ts            int64
		wantOffset    int64
		wantTimestamp int64
		wantFound     bool
	}{
		{0, 0, 1000, true},
		{1000, 0, 1000, true},
		{1001, 1, 1001, true},
		{1003, 3, 2000, true},
		{15002, 44, 15002, true},
		{30002, 89, 30002, true},
		{30003, -1, -1, false},
	}
	check := func(t *testing.T) {
		for _, tt := range tests {
			offset, ts, found, err := l.OffsetForTimestamp(tt.ts)
			if err != nil {
				t.Fatal(err)
			}
			if offset != tt.wantOffset || ts != tt.wantTimestamp || found != tt.wantFound {
				t.Errorf("timestamp %d: got offset %d ts %d found %v, want %d %d %v", tt.ts, offset, ts, found, tt.wantOffset, tt.wantTimestamp, tt.wantFound)
			}
		}
		offset, ts, err := l.MaxTimestamp()
		if err != nil || offset != 89 || ts != 30002 {
			t.Errorf("max timestamp: offset %d ts %d %v, want 89 30002", offset, ts, err)
		}
	}
	t.Run("live", check)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.reopen(t)
	t.Run("after restart, with lazily loaded indexes", check)
}

func TestLogAppendTime(t *testing.T) {
	l := openTestLog(t, smallConfig())
	r := l.mustAppend(t, simpleBatch(3, 5), AppendOptions{LogAppendTime: true})
	if r.LogAppendTime != testEpoch.UnixMilli() {
		t.Fatalf("log append time %d, want %d", r.LogAppendTime, testEpoch.UnixMilli())
	}
	data, err := l.Read(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ValidateBatch(data)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != r.LogAppendTime {
		t.Fatalf("stored batch %+v, %v", h, err)
	}
	offset, ts, found, _ := l.OffsetForTimestamp(r.LogAppendTime)
	if !found || offset != 0 || ts != r.LogAppendTime {
		t.Fatalf("lookup by append time: %d %d %v", offset, ts, found)
	}
}

func TestCleanRestartKeepsEverything(t *testing.T) {
	l := openTestLog(t, smallConfig())
	for range 50 {
		l.mustAppend(t, simpleBatch(3, 7), AppendOptions{})
	}
	before := readAll(t, l.Log)
	segments := l.SegmentCount()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(simpleBatch(1, 1), AppendOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, ok := l.fs.ReadFileForTest(l.dir + "/" + cleanShutdownFile); !ok {
		t.Fatal("no clean-shutdown marker after Close")
	}
	l.reopen(t)
	if _, ok := l.fs.ReadFileForTest(l.dir + "/" + cleanShutdownFile); ok {
		t.Fatal("clean-shutdown marker still there after Open")
	}
	after := readAll(t, l.Log)
	if len(after) != len(before) || l.SegmentCount() != segments || l.LogEndOffset() != 150 {
		t.Fatalf("after restart %d batches in %d segments, end %d; before %d in %d", len(after), l.SegmentCount(), l.LogEndOffset(), len(before), segments)
	}
	if r := l.mustAppend(t, simpleBatch(1, 1), AppendOptions{}); r.BaseOffset != 150 {
		t.Fatalf("offsets do not continue: %d", r.BaseOffset)
	}
}

func TestFlushPolicies(t *testing.T) {
	t.Run("durable appends are fsynced before they return", func(t *testing.T) {
		l := openTestLog(t, smallConfig())
		l.mustAppend(t, simpleBatch(2, 1), AppendOptions{})
		if l.DurableOffset() != 0 {
			t.Fatalf("acks=1 append was fsynced: durable offset %d", l.DurableOffset())
		}
		l.mustAppend(t, simpleBatch(2, 1), AppendOptions{Durable: true})
		if l.DurableOffset() != 4 {
			t.Fatalf("durable offset %d after a durable append, want 4", l.DurableOffset())
		}
	})
	t.Run("interval mode flushes by message count and by time", func(t *testing.T) {
		cfg := smallConfig()
		cfg.Flush = FlushPolicy{Mode: FlushByInterval, Messages: 5, Interval: time.Second}
		l := openTestLog(t, cfg)
		l.mustAppend(t, simpleBatch(2, 1), AppendOptions{Durable: true})
		if l.DurableOffset() != 0 {
			t.Fatal("interval mode waited for fsync")
		}
		l.mustAppend(t, simpleBatch(3, 1), AppendOptions{})
		if l.DurableOffset() != 5 {
			t.Fatalf("durable offset %d after 5 messages, want 5", l.DurableOffset())
		}
		l.mustAppend(t, simpleBatch(1, 1), AppendOptions{})
		if err := l.Maintain(); err != nil || l.DurableOffset() != 5 {
			t.Fatalf("flushed before the interval: %d %v", l.DurableOffset(), err)
		}
		l.clock.Advance(time.Second)
		if err := l.Maintain(); err != nil || l.DurableOffset() != 6 {
			t.Fatalf("durable offset %d after the interval, want 6 (%v)", l.DurableOffset(), err)
		}
	})
}

func TestFailedSyncTakesTheLogOffline(t *testing.T) {
	l := openTestLog(t, smallConfig())
	l.mustAppend(t, simpleBatch(1, 1), AppendOptions{Durable: true})
	l.fs.FailNextSync(errors.New("EIO"))
	if _, err := l.Append(simpleBatch(1, 1), AppendOptions{Durable: true}); !errors.Is(err, ErrLogOffline) {
		t.Fatalf("durable append over a failed fsync: %v", err)
	}
	if _, err := l.Append(simpleBatch(1, 1), AppendOptions{}); !errors.Is(err, ErrLogOffline) {
		t.Fatalf("append to an offline log: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrLogOffline) {
		t.Fatalf("close of an offline log: %v", err)
	}
	if _, ok := l.fs.ReadFileForTest(l.dir + "/" + cleanShutdownFile); ok {
		t.Fatal("an offline log was marked clean")
	}
	l.reopen(t)
	if l.LogEndOffset() < 1 {
		t.Fatal("the durable append was lost")
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []func(*Config){
		func(c *Config) { c.SegmentBytes = 10 },
		func(c *Config) { c.SegmentBytes = 1 << 40 },
		func(c *Config) { c.SegmentAge = 0 },
		func(c *Config) { c.IndexIntervalBytes = 0 },
		func(c *Config) { c.Flush.Mode = 9 },
		func(c *Config) { c.Flush.Messages = -1 },
		func(c *Config) { c.Flush.Interval = -time.Second },
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for i, f := range bad {
		c := DefaultConfig()
		f(&c)
		if c.Validate() == nil {
			t.Errorf("case %d: %+v accepted", i, c)
		}
		if _, err := Open("/x", Options{FS: NewMemFS(), Config: c}); err == nil {
			t.Errorf("case %d: Open accepted a bad config", i)
		}
	}
}

func equalInt64s(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func countSuffix(names []string, suffix string) int {
	n := 0
	for _, name := range names {
		if len(name) > len(suffix) && name[len(name)-len(suffix):] == suffix {
			n++
		}
	}
	return n
}

func TestAppendedWakesLongPolls(t *testing.T) {
	l := openTestLog(t, smallConfig())
	l.mustAppend(t, simpleBatch(1, 1), AppendOptions{}) // nobody waits: nothing to wake
	wake := l.Appended()
	select {
	case <-wake:
		t.Fatal("woken before any append")
	default:
	}
	l.mustAppend(t, simpleBatch(1, 1), AppendOptions{})
	select {
	case <-wake:
	default:
		t.Fatal("an append did not wake the waiter")
	}
	if next := l.Appended(); next == wake {
		t.Fatal("the channel was not replaced")
	}
}
