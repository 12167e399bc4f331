package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks run on the OS file system in a temporary directory (set TMPDIR
// to benchmark another disk). Figures and commands: doc/benchmarks.md.

func openBenchLog(b *testing.B, dir string, cfg Config) *Log {
	b.Helper()
	l, err := Open(dir, Options{Config: cfg, Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// batchOfSize returns a valid batch of about size bytes (one record).
func batchOfSize(size int) []byte {
	return makeBatch(batchSpec{records: 1, valueSize: size - 80, firstTimestamp: time.Now().UnixMilli()})
}

// BenchmarkAppend16KiB: one appender, no fsync (acks=1).
func BenchmarkAppend16KiB(b *testing.B) {
	l := openBenchLog(b, b.TempDir(), DefaultConfig())
	defer l.Close()
	batch := batchOfSize(16 << 10)
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(batch, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDurableAppend16KiB: concurrent appenders, each append waiting
// for fsync (acks=all, default policy), sharing fsyncs by group commit.
func BenchmarkDurableAppend16KiB(b *testing.B) {
	for _, appenders := range []int{1, 8} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			l := openBenchLog(b, b.TempDir(), DefaultConfig())
			defer l.Close()
			b.SetBytes(int64(len(batchOfSize(16 << 10))))
			b.ReportAllocs()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					batch := batchOfSize(16 << 10) // Append rewrites its offset: one per appender
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(batch, AppendOptions{Durable: true}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/float64(max(l.SyncCount(), 1)), "appends/fsync")
		})
	}
}

// BenchmarkReadSequential: a consumer reading 1 MiB at a time from the page
// cache, into a reused buffer.
func BenchmarkReadSequential(b *testing.B) {
	l := openBenchLog(b, b.TempDir(), DefaultConfig())
	defer l.Close()
	batch := batchOfSize(16 << 10)
	for l.Size() < 256<<20 {
		if _, err := l.Append(batch, AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]byte, 0, 2<<20)
	offset := int64(0)
	var read int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		data, err := l.AppendRead(buf[:0], offset, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		read += int64(len(data))
		offset = parseLastBatchEnd(data)
		if offset >= l.HighWatermark() {
			offset = 0
		}
	}
	b.SetBytes(read / int64(b.N))
}

func parseLastBatchEnd(data []byte) int64 {
	var next int64
	for len(data) > 0 {
		h := parseBatchHeader(data)
		next = h.LastOffset() + 1
		data = data[h.Size():]
	}
	return next
}

// BenchmarkRecovery: Open after an unclean stop with 200 MiB and 2 GiB
// retained in 1 GiB segments, from the page cache. Every iteration starts
// from the worst case the sync schedule allows: no clean-shutdown marker,
// and the active segment's index entries for the last indexSyncInterval
// bytes lost, as an OS crash just before the next index fsync would leave
// them; so recovery rescans 64 MiB.
func BenchmarkRecovery(b *testing.B) {
	for _, retained := range []int64{200 << 20, 2<<30 - 1<<20} { // the second: a full segment and an almost full active one
		b.Run(fmt.Sprintf("retained=%dMiB", retained>>20), func(b *testing.B) {
			dir := b.TempDir()
			l := openBenchLog(b, dir, DefaultConfig())
			batch := batchOfSize(64 << 10)
			for l.Size() < retained {
				if _, err := l.Append(batch, AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			end := l.LogEndOffset()
			active := l.activeSegment()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			activeIndex := segmentPath(dir, active.baseOffset, indexFileSuffix)
			index, err := os.ReadFile(activeIndex)
			if err != nil {
				b.Fatal(err)
			}
			entries := decodeOffsetIndex(index, active.size.Load())
			kept := len(entries)
			for kept > 0 && int64(entries[kept-1].position) > active.size.Load()-indexSyncInterval {
				kept--
			}
			crashedIndex := index[:kept*indexEntrySize]
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				if err := os.WriteFile(activeIndex, crashedIndex, 0o644); err != nil {
					b.Fatal(err)
				}
				_ = os.Remove(filepath.Join(dir, cleanShutdownFile))
				b.StartTimer()
				l := openBenchLog(b, dir, DefaultConfig())
				if l.LogEndOffset() != end {
					b.Fatalf("recovered end %d, want %d", l.LogEndOffset(), end)
				}
				b.StopTimer()
				_ = l.closeSegments()
				b.StartTimer()
			}
		})
	}
}
