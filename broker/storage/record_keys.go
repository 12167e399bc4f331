package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// keyedRecord is one record of a batch as compaction sees it: its key,
// whether it has a value (a record with a null value is a tombstone), its
// deltas, and its bytes as stored, which the cleaner copies unchanged.
//
//	record: length varint | attributes int8 | timestamp delta varlong |
//	        offset delta varint | key length varint | key |
//	        value length varint | value | header count varint | headers
//
// Lengths are zigzag varints; -1 means null.
type keyedRecord struct {
	raw            []byte
	timestampDelta int64
	offsetDelta    int64
	key            []byte
	value          []byte
	hasKey         bool
	hasValue       bool
}

var errRecordsMalformed = errors.New("records do not parse")

// batchRecords returns the records of a whole stored batch: its bytes after
// the header, decompressed (appended to scratch) when the batch is
// compressed.
func batchRecords(batch []byte, h BatchHeader, scratch []byte) ([]byte, error) {
	payload := batch[batchHeaderSize:h.Size()]
	if h.Compression() == codecNone {
		return payload, nil
	}
	return decompress(scratch[:0], payload, h.Compression())
}

// eachKeyedRecord parses the count records in records, checking every
// length against what is there, and calls fn with each; it fails if the
// records do not parse or bytes are left over.
func eachKeyedRecord(records []byte, count int32, fn func(keyedRecord) error) error {
	for i := int32(0); i < count; i++ {
		r, n, err := parseKeyedRecord(records)
		if err != nil {
			return fmt.Errorf("%w: record %d of %d: %v", errRecordsMalformed, i, count, err)
		}
		if err := fn(r); err != nil {
			return err
		}
		records = records[n:]
	}
	if len(records) != 0 {
		return fmt.Errorf("%w: %d bytes after the %d records", errRecordsMalformed, len(records), count)
	}
	return nil
}

// parseKeyedRecord parses the record at the start of b and returns it and
// its size.
func parseKeyedRecord(b []byte) (keyedRecord, int, error) {
	length, n := binary.Varint(b)
	if n <= 0 || length < 1 || length > int64(len(b)-n) {
		return keyedRecord{}, 0, errors.New("bad record length")
	}
	size := n + int(length)
	r := keyedRecord{raw: b[:size]}
	body := b[n+1 : size] // after the attributes
	var ok bool
	if r.timestampDelta, body, ok = readVarint(body); !ok {
		return keyedRecord{}, 0, errors.New("bad timestamp delta")
	}
	if r.offsetDelta, body, ok = readVarint(body); !ok || r.offsetDelta < 0 {
		return keyedRecord{}, 0, errors.New("bad offset delta")
	}
	if r.key, body, ok = readNullableBytes(body); !ok {
		return keyedRecord{}, 0, errors.New("bad key")
	}
	r.hasKey = r.key != nil
	if r.value, _, ok = readNullableBytes(body); !ok {
		return keyedRecord{}, 0, errors.New("bad value")
	}
	r.hasValue = r.value != nil
	return r, size, nil
}

func readVarint(b []byte) (int64, []byte, bool) {
	v, n := binary.Varint(b)
	if n <= 0 {
		return 0, b, false
	}
	return v, b[n:], true
}

// readNullableBytes reads a varint length and that many bytes; -1 is null
// (a nil slice), 0 an empty, non-nil one.
func readNullableBytes(b []byte) ([]byte, []byte, bool) {
	length, rest, ok := readVarint(b)
	switch {
	case !ok || length < -1 || length > int64(len(rest)):
		return nil, b, false
	case length == -1:
		return nil, rest, true
	}
	return rest[:length:length], rest[length:], true
}

// requireKeys refuses records, a producer's validated batches, if any
// record lacks a key: a compacted log keeps the last record of each key,
// so a record without one could never be kept (Kafka refuses it the same
// way, with INVALID_RECORD).
func requireKeys(records []byte) error {
	var scratch []byte
	for at := 0; at < len(records); {
		h := parseBatchHeader(records[at:])
		batch := records[at : at+h.Size()]
		fail := func(reason string) error {
			return &BatchError{Position: at, Reason: reason, kind: ErrInvalidRecord}
		}
		payload, err := batchRecords(batch, h, scratch)
		if err != nil {
			return fail(fmt.Sprintf("a compacted topic must read every record's key, and the records do not decompress: %v", err))
		}
		if h.Compression() != codecNone {
			scratch = payload
		}
		index := 0
		err = eachKeyedRecord(payload, h.RecordCount, func(r keyedRecord) error {
			if !r.hasKey {
				return fail(fmt.Sprintf("compacted topic cannot accept message without key: record %d of the batch has none; "+
					"give every record a key, or produce to a topic whose cleanup.policy is delete", index))
			}
			index++
			return nil
		})
		var batchErr *BatchError
		if errors.As(err, &batchErr) {
			return err
		}
		if err != nil {
			return fail(fmt.Sprintf("a compacted topic must read every record's key: %v", err))
		}
		at += h.Size()
	}
	return nil
}
