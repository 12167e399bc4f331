package storage

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// crashAfterAppends builds a log with n synced 3-record batches, then
// returns it uncleanly stopped: the files as the process left them, no
// clean-shutdown marker.
func crashAfterAppends(t *testing.T, cfg Config, n int) *testLog {
	t.Helper()
	l := openTestLog(t, cfg)
	for range n {
		l.mustAppend(t, simpleBatch(3, 1000), AppendOptions{Durable: true})
	}
	l.fs.Crash()
	l.fs = l.fs.Restart(rand.New(rand.NewPCG(1, 2)))
	return l
}

func (tl *testLog) activeLogName() string {
	return segmentPath(tl.dir, tl.activeSegment().baseOffset, logFileSuffix)
}

// rewrite replaces a file's contents on the (restarted) MemFS.
func (tl *testLog) rewrite(t *testing.T, name string, edit func([]byte) []byte) {
	t.Helper()
	data, ok := tl.fs.ReadFileForTest(name)
	if !ok {
		t.Fatalf("no file %s", name)
	}
	data = edit(data)
	f, err := tl.fs.OpenFile(name, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestRecoveryCutsTornTails(t *testing.T) {
	batchSize := len(simpleBatch(3, 1000))
	tests := []struct {
		name    string
		edit    func(log []byte) []byte
		wantEnd int64
	}{
		{"intact", func(b []byte) []byte { return b }, 60},
		{"half a header", func(b []byte) []byte { return append(b, simpleBatch(3, 1)[:30]...) }, 60},
		{"half a batch", func(b []byte) []byte { return append(b, simpleBatch(3, 1)[:batchSize-5]...) }, 60},
		{"zeros", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, 60},
		{"last batch with a bad CRC", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }, 57},
		{"last batch cut short", func(b []byte) []byte { return b[:len(b)-1] }, 57},
		{"a batch with the wrong base offset", func(b []byte) []byte {
			extra := simpleBatch(3, 1)
			setBaseOffset(extra, 9999)
			return append(b, extra...)
		}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := smallConfig()
			cfg.SegmentBytes = 1 << 20
			l := crashAfterAppends(t, cfg, 20)
			l.rewrite(t, segmentPath(l.dir, 0, logFileSuffix), tt.edit)
			l.reopen(t)
			if l.LogEndOffset() != tt.wantEnd {
				t.Fatalf("log end %d after recovery, want %d", l.LogEndOffset(), tt.wantEnd)
			}
			headers := readAll(t, l.Log)
			if got := headers[len(headers)-1].LastOffset() + 1; got != tt.wantEnd {
				t.Fatalf("readable up to %d, want %d", got, tt.wantEnd)
			}
			if r := l.mustAppend(t, simpleBatch(1, 1), AppendOptions{Durable: true}); r.BaseOffset != tt.wantEnd {
				t.Fatalf("next append at %d, want %d", r.BaseOffset, tt.wantEnd)
			}
			readAll(t, l.Log)
		})
	}
}

func TestRecoveryRefusesCorruptionInTheMiddle(t *testing.T) {
	cfg := smallConfig()
	cfg.SegmentBytes = 1 << 20
	l := crashAfterAppends(t, cfg, 20)
	batchSize := len(simpleBatch(3, 1000))
	var original []byte
	name := segmentPath(l.dir, 0, logFileSuffix)
	// Damage the payload of the third batch from the end: intact batches
	// follow it, so this is not a torn write.
	l.rewrite(t, name, func(b []byte) []byte {
		original = append([]byte(nil), b...)
		b[len(b)-2*batchSize-10] ^= 0x40
		return b
	})
	_, err := Open(l.dir, Options{FS: l.fs, Clock: l.clock, Logger: quietLogger(), Config: cfg})
	var corruption *CorruptionError
	if !errors.As(err, &corruption) || !errors.Is(err, ErrLogCorrupt) {
		t.Fatalf("got %v, want a *CorruptionError", err)
	}
	if corruption.Offset != 51 || corruption.Position != int64(len(original)-3*batchSize) {
		t.Fatalf("corruption reported at offset %d byte %d", corruption.Offset, corruption.Position)
	}
	// Nothing was cut: the file is as it was.
	after, _ := l.fs.ReadFileForTest(name)
	if len(after) != len(original) {
		t.Fatalf("recovery cut the file from %d to %d bytes", len(original), len(after))
	}
}

func TestRecoveryRebuildsMissingAndDamagedIndexes(t *testing.T) {
	edits := []struct {
		name string
		edit func(tl *testLog, t *testing.T, base int64)
	}{
		{"index deleted", func(tl *testLog, t *testing.T, base int64) {
			if err := tl.fs.Remove(segmentPath(tl.dir, base, indexFileSuffix)); err != nil {
				t.Fatal(err)
			}
		}},
		{"time index deleted", func(tl *testLog, t *testing.T, base int64) {
			if err := tl.fs.Remove(segmentPath(tl.dir, base, timeIndexFileSuffix)); err != nil {
				t.Fatal(err)
			}
		}},
		{"index garbage", func(tl *testLog, t *testing.T, base int64) {
			tl.rewrite(t, segmentPath(tl.dir, base, indexFileSuffix), func(b []byte) []byte {
				for i := range b {
					b[i] = byte(i * 7)
				}
				return b
			})
		}},
		{"index torn", func(tl *testLog, t *testing.T, base int64) {
			tl.rewrite(t, segmentPath(tl.dir, base, indexFileSuffix), func(b []byte) []byte { return b[:len(b)-3] })
		}},
	}
	for _, tt := range edits {
		for _, which := range []string{"older segment", "active segment"} {
			t.Run(tt.name+" in the "+which, func(t *testing.T) {
				cfg := smallConfig()
				l := openTestLog(t, cfg)
				for l.SegmentCount() < 3 {
					l.mustAppend(t, simpleBatch(3, 1000), AppendOptions{})
				}
				for range 10 {
					l.mustAppend(t, simpleBatch(3, 2000), AppendOptions{})
				}
				want := readAll(t, l.Log)
				base := l.snapshotSegments()[0].baseOffset
				if which == "active segment" {
					base = l.activeSegment().baseOffset
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				tt.edit(l, t, base)
				l.reopen(t)
				got := readAll(t, l.Log)
				if len(got) != len(want) {
					t.Fatalf("%d batches after the rebuild, want %d", len(got), len(want))
				}
				for offset := int64(0); offset < l.LogEndOffset(); offset += 5 {
					data, err := l.Read(offset, 1)
					if err != nil {
						t.Fatal(err)
					}
					if h := parseBatchHeader(data); offset < h.BaseOffset || offset > h.LastOffset() {
						t.Fatalf("offset %d read batch [%d,%d]", offset, h.BaseOffset, h.LastOffset())
					}
				}
				if offset, ts, found, err := l.OffsetForTimestamp(2000); err != nil || !found || ts != 2000 || offset != want[len(want)-10].BaseOffset {
					t.Fatalf("timestamp lookup after rebuild: %d %d %v %v", offset, ts, found, err)
				}
			})
		}
	}
}

func TestCleanMarkerWithTornTailFallsBackToRecovery(t *testing.T) {
	l := openTestLog(t, smallConfig())
	for range 5 {
		l.mustAppend(t, simpleBatch(3, 1000), AppendOptions{})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.rewrite(t, l.activeLogName(), func(b []byte) []byte { return append(b, 0, 0, 0, 0, 0, 1) })
	l.reopen(t)
	if l.LogEndOffset() != 15 {
		t.Fatalf("log end %d, want 15", l.LogEndOffset())
	}
	readAll(t, l.Log)
}
