package storage

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkClean measures the cleaner on the OS file system: a compacted
// log of 128 MiB in 16 MiB segments, 1 KiB values of JSON-like text under
// 20,000 keys (about 6.5 versions of each, uncompressed; snappy packs more
// records in the same bytes), 16 records a batch, cleaned in one pass
// from nothing cleaned to the active segment. Each iteration cleans a
// fresh copy of the same log (the copy is not timed); the MB/s are bytes
// of log the cleaner processed, as Kafka's cleaner reports them.
func BenchmarkClean(b *testing.B) {
	for _, codec := range []int16{codecNone, codecSnappy} {
		b.Run(fmt.Sprintf("codec=%s", map[int16]string{codecNone: "none", codecSnappy: "snappy"}[codec]), func(b *testing.B) {
			pristine := b.TempDir()
			cfg := DefaultConfig()
			cfg.Cleanup = CleanupCompact
			cfg.SegmentBytes = 16 << 20
			l, err := Open(pristine, Options{Config: cfg, Logger: quietLogger()})
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			words := []string{"order", "payment", "status", "paid", "amount", "currency", "EUR", "customer", "created", "updated", "id", "true", "false", "null", "items", "sku"}
			ts := time.Now().UnixMilli()
			for l.Size() < 128<<20 {
				records := make([]testRecord, 16)
				for i := range records {
					// About 1 KiB of words: compresses about as JSON does.
					var value []byte
					for len(value) < 1024 {
						value = fmt.Appendf(value, `"%s":%d,`, words[rng.IntN(len(words))], rng.IntN(100000))
					}
					records[i] = testRecord{key: fmt.Appendf(nil, "key-%05d", rng.IntN(20000)), value: value[:1024], timestamp: ts}
				}
				if _, err := l.Append(keyedBatch(b, codec, nil, records...), AppendOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			size := l.Size()
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ResetTimer()
			var result CleanResult
			for i := range b.N {
				b.StopTimer()
				dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
				copyDir(b, pristine, dir)
				l, err := Open(dir, Options{Config: cfg, Logger: quietLogger()})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if result, err = l.Clean(); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				if err := os.RemoveAll(dir); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(result.BytesWritten)/float64(result.BytesRead)*100, "%written")
		})
	}
}

func copyDir(b *testing.B, from, to string) {
	b.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		b.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
