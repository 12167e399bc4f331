package storage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/kqstack/kqstack/broker/clock"
)

// FuzzValidateBatches: any bytes are either refused with a *BatchError or
// accepted as batches that really are whole, magic 2, and CRC-correct.
func FuzzValidateBatches(f *testing.F) {
	f.Add(simpleBatch(1, 0))
	f.Add(append(simpleBatch(2, 5), simpleBatch(3, 9)...))
	f.Add(simpleBatch(3, 0)[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, records []byte) {
		batches, recordCount, err := ValidateBatches(records)
		if err != nil {
			var batchErr *BatchError
			if !errors.As(err, &batchErr) {
				t.Fatalf("error %v is not a *BatchError", err)
			}
			return
		}
		seen, count := 0, 0
		for at := 0; at < len(records); seen++ {
			h := parseBatchHeader(records[at:])
			if h.Magic != 2 || at+h.Size() > len(records) || crc32.Checksum(records[at+batchAttributesAt:at+h.Size()], crc32c) != h.CRC {
				t.Fatalf("accepted a bad batch at byte %d: %+v", at, h)
			}
			count += int(h.RecordCount)
			at += h.Size()
		}
		if seen != batches || count != recordCount {
			t.Fatalf("counted %d batches, %d records; reported %d, %d", seen, count, batches, recordCount)
		}
	})
}

// FuzzRecoverTail: whatever bytes follow the synced part of the active
// segment's log and index after a crash, Open never panics and either
// reports corruption or recovers a log that starts with every synced batch,
// is dense, and holds only whole, CRC-correct batches; and it takes appends.
func FuzzRecoverTail(f *testing.F) {
	valid := simpleBatch(2, 7)
	setBaseOffset(valid, 30)
	f.Add([]byte{}, []byte{})
	f.Add(valid, []byte{})
	f.Add(valid[:20], []byte{0, 0, 0, 1, 0, 0, 0, 2})
	f.Add(make([]byte, 100), []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add(append(append([]byte(nil), valid...), 1, 2, 3), binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 29), 1))
	f.Fuzz(func(t *testing.T, logTail, indexTail []byte) {
		fsys := NewMemFS()
		cfg := DefaultConfig()
		cfg.IndexIntervalBytes = 128
		opts := Options{FS: fsys, Clock: clock.NewManual(testEpoch), Logger: quietLogger(), Config: cfg}
		l, err := Open("/p", opts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if _, err := l.Append(simpleBatch(3, int64(i)), AppendOptions{Durable: true}); err != nil {
				t.Fatal(err)
			}
		}
		synced := readAll(t, l)
		fsys.Crash()
		fsys = fsys.Restart(rand.New(rand.NewPCG(1, 1)))
		appendToFile(t, fsys, segmentPath("/p", 0, logFileSuffix), logTail)
		appendToFile(t, fsys, segmentPath("/p", 0, indexFileSuffix), indexTail)

		opts.FS = fsys
		l, err = Open("/p", opts)
		if errors.Is(err, ErrLogCorrupt) {
			return
		}
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		recovered := readAll(t, l) // checks wholeness and CRCs
		if len(recovered) < len(synced) {
			t.Fatalf("recovered %d batches, fewer than the %d synced", len(recovered), len(synced))
		}
		for i, h := range recovered {
			if i < len(synced) && h != synced[i] {
				t.Fatalf("batch %d changed: %+v, was %+v", i, h, synced[i])
			}
			if i > 0 && h.BaseOffset != recovered[i-1].LastOffset()+1 {
				t.Fatalf("offsets not dense at batch %d", i)
			}
		}
		end := l.LogEndOffset()
		result, err := l.Append(simpleBatch(1, 1), AppendOptions{Durable: true})
		if err != nil || result.BaseOffset != end {
			t.Fatalf("append after recovery: %+v %v, want base %d", result, err, end)
		}
		if data, err := l.Read(end, 1); err != nil || !bytes.Equal(data[batchAttributesAt:], simpleBatch(1, 1)[batchAttributesAt:]) {
			t.Fatalf("read back the new append: %v", err)
		}
	})
}

func appendToFile(t *testing.T, fsys *MemFS, name string, data []byte) {
	t.Helper()
	f, err := fsys.OpenFile(name, true)
	if err != nil {
		t.Fatal(err)
	}
	size, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
