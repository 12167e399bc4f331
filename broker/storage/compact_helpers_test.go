package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// testRecord is one record for keyedBatch. A nil value is a tombstone; a
// nil key is no key.
type testRecord struct {
	key, value []byte
	timestamp  int64
}

func rec(key, value string, timestamp int64) testRecord {
	return testRecord{key: []byte(key), value: []byte(value), timestamp: timestamp}
}

func tombstone(key string, timestamp int64) testRecord {
	return testRecord{key: []byte(key), timestamp: timestamp}
}

// producerSpec makes keyedBatch an idempotent producer's batch.
type producerSpec struct {
	id       int64
	epoch    int16
	sequence int32
}

// keyedBatch encodes records as one magic-v2 batch with kmsg and, for a
// codec, compresses them with franz-go's own compressor, so the cleaner is
// checked against independent encoders.
func keyedBatch(t testing.TB, codec int16, producer *producerSpec, records ...testRecord) []byte {
	t.Helper()
	var raw []byte
	first := records[0].timestamp
	maxTimestamp := first
	for i, r := range records {
		record := kmsg.Record{
			TimestampDelta64: r.timestamp - first,
			OffsetDelta:      int32(i),
			Key:              r.key,
			Value:            r.value,
		}
		body := record.AppendTo(nil)
		record.Length = int32(len(body) - 1)
		raw = record.AppendTo(raw)
		maxTimestamp = max(maxTimestamp, r.timestamp)
	}
	if codec != codecNone {
		out, used := franzCompressors()[codec].Compress(new(bytes.Buffer), raw)
		if int16(used) != codec {
			t.Fatalf("franz-go compressed with codec %d, want %d", used, codec)
		}
		raw = append([]byte(nil), out...)
	}
	batch := kmsg.RecordBatch{
		Magic:           2,
		Attributes:      codec,
		LastOffsetDelta: int32(len(records) - 1),
		FirstTimestamp:  first,
		MaxTimestamp:    maxTimestamp,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		FirstSequence:   -1,
		NumRecords:      int32(len(records)),
		Records:         raw,
	}
	if producer != nil {
		batch.ProducerID, batch.ProducerEpoch, batch.FirstSequence = producer.id, producer.epoch, producer.sequence
	}
	out := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(out[batchLengthAt:], uint32(len(out)-batchLogOverhead))
	binary.BigEndian.PutUint32(out[batchCRCAt:], crc32.Checksum(out[batchAttributesAt:], crc32c))
	return out
}

// franz-go's codecs, made once: they are costly to make.
var (
	franzCompressors = sync.OnceValue(func() map[int16]kgo.Compressor {
		compressors := map[int16]kgo.Compressor{}
		for codec, c := range map[int16]kgo.CompressionCodec{codecGzip: kgo.GzipCompression(), codecSnappy: kgo.SnappyCompression(),
			codecLZ4: kgo.Lz4Compression(), codecZstd: kgo.ZstdCompression()} {
			compressor, err := kgo.DefaultCompressor(c)
			if err != nil {
				panic(err)
			}
			compressors[codec] = compressor
		}
		return compressors
	})
	franzDecompressor = sync.OnceValue(func() kgo.Decompressor { return kgo.DefaultDecompressor() })
)

// readRecord is a record as read back from a log.
type readRecord struct {
	offset    int64
	key       string
	value     string
	hasKey    bool
	tombstone bool
	timestamp int64
}

func (r readRecord) String() string {
	if r.tombstone {
		return fmt.Sprintf("%d:%s=<tombstone>", r.offset, r.key)
	}
	return fmt.Sprintf("%d:%s=%s", r.offset, r.key, r.value)
}

// readRecords reads every record from the log start to the high
// watermark, decompressing with franz-go's decompressor, and checks that
// batches are whole, CRC-correct and in offset order (gaps allowed).
func readRecords(t testing.TB, l *Log) ([]readRecord, []BatchHeader) {
	t.Helper()
	decompressor := franzDecompressor()
	var records []readRecord
	var headers []BatchHeader
	next := l.LogStartOffset()
	for next < l.HighWatermark() {
		data, err := l.Read(next, 1<<20)
		if err != nil {
			t.Fatalf("read at %d: %v", next, err)
		}
		if len(data) == 0 {
			t.Fatalf("read at %d below the high watermark %d returned nothing", next, l.HighWatermark())
		}
		for len(data) > 0 {
			h, err := checkBatchFrame(data)
			if err != nil {
				t.Fatalf("read at %d returned a bad batch: %v", next, err)
			}
			if h.LastOffset() < next && len(headers) > 0 {
				t.Fatalf("batch %d-%d goes back before %d", h.BaseOffset, h.LastOffset(), next)
			}
			if n := len(headers); n > 0 && h.BaseOffset <= headers[n-1].LastOffset() {
				t.Fatalf("batch at %d overlaps the one ending at %d", h.BaseOffset, headers[n-1].LastOffset())
			}
			headers = append(headers, h)
			payload := data[batchHeaderSize:h.Size()]
			if h.Compression() != codecNone {
				if payload, err = decompressor.Decompress(payload, kgo.CompressionCodecType(h.Compression())); err != nil {
					t.Fatalf("batch at %d does not decompress with franz-go: %v", h.BaseOffset, err)
				}
				payload = append([]byte(nil), payload...)
			}
			err = eachKeyedRecord(payload, h.RecordCount, func(r keyedRecord) error {
				offset := h.BaseOffset + r.offsetDelta
				if offset > h.LastOffset() {
					return fmt.Errorf("record offset %d past the batch's last %d", offset, h.LastOffset())
				}
				if n := len(records); n > 0 && offset <= records[n-1].offset {
					return fmt.Errorf("record offset %d after %d", offset, records[n-1].offset)
				}
				records = append(records, readRecord{offset: offset, key: string(r.key), hasKey: r.hasKey,
					value: string(r.value), tombstone: !r.hasValue, timestamp: h.BaseTimestamp + r.timestampDelta})
				return nil
			})
			if err != nil {
				t.Fatalf("batch at %d: %v", h.BaseOffset, err)
			}
			data = data[h.Size():]
			next = h.LastOffset() + 1
		}
	}
	return records, headers
}

// lastPerKey is what a cleaned log must hold below end: the last record of
// every key, without tombstones older than horizon.
func lastPerKey(written []readRecord, end, horizon int64) []readRecord {
	last := map[string]readRecord{}
	for _, r := range written {
		if r.offset < end && r.hasKey {
			last[r.key] = r
		}
	}
	var out []readRecord
	for _, r := range last {
		if r.tombstone && r.timestamp < horizon {
			continue
		}
		out = append(out, r)
	}
	for _, r := range written {
		if r.offset >= end {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].offset < out[j].offset })
	return out
}

func compactConfig() Config {
	c := smallConfig()
	c.Cleanup = CleanupCompact
	c.SegmentBytes = 400
	c.IndexIntervalBytes = 100
	return c
}

// logBatches returns the bytes of every batch below the high watermark.
func logBatches(t testing.TB, l *Log) [][]byte {
	t.Helper()
	var out [][]byte
	for next := l.LogStartOffset(); next < l.HighWatermark(); {
		data, err := l.Read(next, 1<<20)
		if err != nil || len(data) == 0 {
			t.Fatalf("read at %d: %d bytes, %v", next, len(data), err)
		}
		for len(data) > 0 {
			h := parseBatchHeader(data)
			out = append(out, append([]byte(nil), data[:h.Size()]...))
			next = h.LastOffset() + 1
			data = data[h.Size():]
		}
	}
	return out
}
