package storage

import "encoding/binary"

// firstRecordAtOrAfter returns the offset and timestamp of the first record
// in batch with offset >= minOffset and timestamp >= ts. batch is a whole
// stored batch whose max timestamp is >= ts.
//
// Timestamps of records inside a compressed batch would need decompressing;
// for such a batch the batch itself answers: its first offset >= minOffset
// and its max timestamp.
func firstRecordAtOrAfter(batch []byte, h BatchHeader, minOffset, ts int64) (offset, timestamp int64) {
	fallback := max(h.BaseOffset, minOffset)
	if h.LogAppendTime() || h.Compression() != 0 {
		return fallback, h.MaxTimestamp
	}
	offset, timestamp = fallback, h.MaxTimestamp
	eachRecord(batch, h, func(recordOffset, recordTimestamp int64) bool {
		if recordOffset >= minOffset && recordTimestamp >= ts {
			offset, timestamp = recordOffset, recordTimestamp
			return false
		}
		return true
	})
	return offset, timestamp
}

// eachRecord calls fn with the offset and timestamp of each record of an
// uncompressed batch, in order, until fn returns false or the records do
// not parse.
//
//	record: length varint | attributes int8 | timestamp delta varlong |
//	        offset delta varint | key | value | headers
func eachRecord(batch []byte, h BatchHeader, fn func(offset, timestamp int64) bool) {
	records := batch[batchHeaderSize:h.Size()]
	for i := int32(0); i < h.RecordCount && len(records) > 0; i++ {
		length, n := binary.Varint(records)
		if n <= 0 || length < 0 || int64(len(records)-n) < length {
			return
		}
		body := records[n : n+int(length)]
		records = records[n+int(length):]
		if len(body) < 1 {
			return
		}
		timestampDelta, n := binary.Varint(body[1:])
		if n <= 0 {
			return
		}
		offsetDelta, m := binary.Varint(body[1+n:])
		if m <= 0 {
			return
		}
		if !fn(h.BaseOffset+offsetDelta, h.BaseTimestamp+timestampDelta) {
			return
		}
	}
}
