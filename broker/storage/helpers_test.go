package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/clock"
)

// testEpoch is the manual clock's start: 2026-01-01T00:00:00Z.
var testEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// batchSpec describes a batch for makeBatch.
type batchSpec struct {
	records        int
	valueSize      int
	firstTimestamp int64 // record i gets firstTimestamp + i
	compression    int16 // only the attribute bits: records stay uncompressed
	producerID     int64
}

// makeBatch encodes a magic-v2 record batch with kmsg, Kafka's own message
// definitions, so the storage code is checked against an independent encoder.
func makeBatch(spec batchSpec) []byte {
	var records []byte
	for i := 0; i < spec.records; i++ {
		value := bytes.Repeat([]byte{byte('a' + i%26)}, spec.valueSize)
		record := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("key-%d", i)),
			Value:            value,
		}
		body := record.AppendTo(nil)
		record.Length = int32(len(body) - 1) // the zero length varint is one byte
		records = record.AppendTo(records)
	}
	producerID := spec.producerID
	if producerID == 0 {
		producerID = -1
	}
	batch := kmsg.RecordBatch{
		Magic:           2,
		Attributes:      spec.compression,
		LastOffsetDelta: int32(spec.records - 1),
		FirstTimestamp:  spec.firstTimestamp,
		MaxTimestamp:    spec.firstTimestamp + int64(max(spec.records-1, 0)),
		ProducerID:      producerID,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(spec.records),
		Records:         records,
	}
	out := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(out[batchLengthAt:], uint32(len(out)-batchLogOverhead))
	binary.BigEndian.PutUint32(out[batchCRCAt:], crc32.Checksum(out[batchAttributesAt:], crc32c))
	return out
}

// simpleBatch is a batch of n records of 16-byte values at timestamp ts.
func simpleBatch(n int, ts int64) []byte {
	return makeBatch(batchSpec{records: n, valueSize: 16, firstTimestamp: ts})
}

// testLog opens a log on a fresh MemFS with a manual clock.
type testLog struct {
	*Log
	fs    *MemFS
	clock *clock.Manual
	dir   string
	cfg   Config
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError + 1}))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// mustClean runs one clean of the log now and fails the test on an error.
func (tl *testLog) mustClean(t testing.TB) CleanResult {
	t.Helper()
	result, err := tl.Clean()
	if err != nil {
		t.Fatal(err)
	}
	return result
}

func openTestLog(t testing.TB, cfg Config) *testLog {
	t.Helper()
	tl := &testLog{fs: NewMemFS(), clock: clock.NewManual(testEpoch), dir: "/data/orders-0", cfg: cfg}
	tl.reopen(t)
	return tl
}

// reopen opens the log again on the same MemFS (after Close or a Restart).
func (tl *testLog) reopen(t testing.TB) {
	t.Helper()
	l, err := Open(tl.dir, Options{FS: tl.fs, Clock: tl.clock, Logger: quietLogger(), Config: tl.cfg})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	tl.Log = l
}

func (tl *testLog) mustAppend(t testing.TB, batch []byte, opts AppendOptions) AppendResult {
	t.Helper()
	result, err := tl.Append(batch, opts)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return result
}

// readAll reads every batch from the log start to the high watermark and
// returns their headers, checking each batch is whole and intact.
func readAll(t testing.TB, l *Log) []BatchHeader {
	t.Helper()
	var headers []BatchHeader
	for offset := l.LogStartOffset(); offset < l.HighWatermark(); {
		data, err := l.Read(offset, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", offset, err)
		}
		if len(data) == 0 {
			t.Fatalf("read at %d below high watermark %d returned nothing", offset, l.HighWatermark())
		}
		for len(data) > 0 {
			h, err := checkBatchFrame(data)
			if err != nil {
				t.Fatalf("read at %d returned a bad batch: %v", offset, err)
			}
			headers = append(headers, h)
			data = data[h.Size():]
			offset = h.LastOffset() + 1
		}
	}
	return headers
}

func smallConfig() Config {
	c := DefaultConfig()
	c.SegmentBytes = 4096
	c.IndexIntervalBytes = 256
	return c
}
