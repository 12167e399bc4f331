package storage

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
)

func TestValidateBatch(t *testing.T) {
	good := simpleBatch(3, 1000)
	recrc := func(b []byte) []byte {
		binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttributesAt:], crc32c))
		return b
	}
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		batch []byte
		want  error
	}{
		{"valid", good, nil},
		{"empty", nil, ErrCorruptMessage},
		{"shorter than header", good[:40], ErrCorruptMessage},
		{"truncated records", good[:len(good)-1], ErrCorruptMessage},
		{"length below header", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[batchLengthAt:], 10); return b }), ErrCorruptMessage},
		{"flipped bit in a value", edit(func(b []byte) []byte { b[len(b)-3] ^= 1; return b }), ErrCorruptMessage},
		{"magic 1", edit(func(b []byte) []byte { b[batchMagicAt] = 1; return b }), ErrInvalidRecord},
		{"zero records", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchRecordCountAt:], 0)
			return recrc(b)
		}), ErrInvalidRecord},
		{"offset delta disagrees with count", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[batchLastOffsetDeltaAt:], 7)
			return recrc(b)
		}), ErrInvalidRecord},
		{"unknown codec", edit(func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[batchAttributesAt:], 6)
			return recrc(b)
		}), ErrUnsupportedCompression},
		{"base offset and epoch are outside the CRC", edit(func(b []byte) []byte {
			setBaseOffset(b, 99)
			setLeaderEpoch(b, 7)
			return b
		}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ValidateBatch(tt.batch)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if h.RecordCount != 3 || h.Size() != len(good) {
					t.Fatalf("header %+v does not describe the batch", h)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var batchErr *BatchError
			if !errors.As(err, &batchErr) || batchErr.Reason == "" {
				t.Fatalf("error %v is not a *BatchError with a reason", err)
			}
		})
	}
}

func TestValidateBatchesReportsPosition(t *testing.T) {
	first := simpleBatch(2, 1)
	second := simpleBatch(1, 2)
	second[len(second)-1] ^= 0xff
	records := append(append([]byte(nil), first...), second...)
	_, _, err := ValidateBatches(records)
	var batchErr *BatchError
	if !errors.As(err, &batchErr) || batchErr.Position != len(first) || !errors.Is(err, ErrCorruptMessage) {
		t.Fatalf("got %v, want a corrupt-message error at byte %d", err, len(first))
	}
	batches, records2, err := ValidateBatches(append(append([]byte(nil), first...), simpleBatch(4, 3)...))
	if err != nil || batches != 2 || records2 != 6 {
		t.Fatalf("got %d batches, %d records, %v; want 2, 6, nil", batches, records2, err)
	}
}

func TestSetLogAppendTimeKeepsBatchValid(t *testing.T) {
	b := simpleBatch(3, 1000)
	setLogAppendTime(b, len(b), 5555)
	h, err := ValidateBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != 5555 || h.BaseTimestamp != 1000 {
		t.Fatalf("header after stamping: %+v", h)
	}
}

func TestEachRecordReadsKmsgRecords(t *testing.T) {
	b := simpleBatch(5, 1000)
	setBaseOffset(b, 40)
	h := parseBatchHeader(b)
	var offsets, timestamps []int64
	eachRecord(b, h, func(offset, timestamp int64) bool {
		offsets = append(offsets, offset)
		timestamps = append(timestamps, timestamp)
		return true
	})
	for i := range 5 {
		if offsets[i] != int64(40+i) || timestamps[i] != int64(1000+i) {
			t.Fatalf("record %d: offset %d timestamp %d", i, offsets[i], timestamps[i])
		}
	}
	offset, ts := firstRecordAtOrAfter(b, h, 0, 1003)
	if offset != 43 || ts != 1003 {
		t.Fatalf("first record at or after 1003: offset %d timestamp %d, want 43 1003", offset, ts)
	}
	offset, ts = firstRecordAtOrAfter(b, h, 44, 1000)
	if offset != 44 || ts != 1004 {
		t.Fatalf("first record at or after offset 44: offset %d timestamp %d, want 44 1004", offset, ts)
	}
}
