package storage

import (
	"fmt"
	"testing"
)

// appendRecords appends each group of records as one batch and returns
// every record as written, with its offset.
func appendRecords(t testing.TB, tl *testLog, codec int16, groups ...[]testRecord) []readRecord {
	t.Helper()
	var written []readRecord
	for _, group := range groups {
		result := tl.mustAppend(t, keyedBatch(t, codec, nil, group...), AppendOptions{})
		for i, r := range group {
			written = append(written, readRecord{offset: result.BaseOffset + int64(i), key: string(r.key), hasKey: r.key != nil,
				value: string(r.value), tombstone: r.value == nil, timestamp: r.timestamp})
		}
	}
	return written
}

// rounds writes rounds of one record per key, each round one batch of
// keys records, values "v<round>-<key>", at timestamps from ts on.
func rounds(n, keys int, ts int64) [][]testRecord {
	var groups [][]testRecord
	for round := range n {
		var group []testRecord
		for k := range keys {
			group = append(group, rec(fmt.Sprintf("k%d", k), fmt.Sprintf("v%d-%d", round, k), ts+int64(round)))
		}
		groups = append(groups, group)
	}
	return groups
}

func recordsEqual(t *testing.T, got, want []readRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d:\n got  %v\n want %v", len(got), len(want), got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.offset != w.offset || g.key != w.key || g.value != w.value || g.tombstone != w.tombstone {
			t.Fatalf("record %d: got %v, want %v\n got  %v\n want %v", i, g, w, got, want)
		}
	}
}

func TestCleanKeepsLastRecordOfEachKey(t *testing.T) {
	ts := testEpoch.UnixMilli()
	for _, codec := range []int16{codecNone, codecGzip, codecSnappy, codecLZ4, codecZstd} {
		t.Run(fmt.Sprintf("codec=%d", codec), func(t *testing.T) {
			tl := openTestLog(t, compactConfig())
			written := appendRecords(t, tl, codec, rounds(12, 5, ts)...)
			if tl.SegmentCount() < 4 {
				t.Fatalf("only %d segments; the test needs several", tl.SegmentCount())
			}
			active := tl.activeSegment().baseOffset
			result, err := tl.Clean()
			if err != nil {
				t.Fatal(err)
			}
			if result.End != active || result.FirstDirty != 0 {
				t.Fatalf("cleaned [%d, %d), want [0, %d): the active segment is never cleaned", result.FirstDirty, result.End, active)
			}
			if len(result.Replaced) == 0 || result.BytesWritten >= result.BytesRead || result.RecordsKept >= result.RecordsRead {
				t.Fatalf("clean did not shrink the log: %+v", result)
			}
			got, headers := readRecords(t, tl.Log)
			recordsEqual(t, got, lastPerKey(written, active, -1<<62))
			for _, h := range headers {
				if h.BaseOffset < active && h.Compression() != int(codec) {
					t.Fatalf("cleaned batch at %d has codec %d, want %d", h.BaseOffset, h.Compression(), codec)
				}
			}
			if tl.CleanerCheckpoint() != active {
				t.Fatalf("checkpoint %d, want %d", tl.CleanerCheckpoint(), active)
			}
			// Cleaning again changes nothing.
			again, err := tl.Clean()
			if err != nil || again.End != active || len(again.Replaced) != 0 {
				t.Fatalf("second clean: %+v, %v", again, err)
			}
			// It survives a restart.
			if err := tl.Close(); err != nil {
				t.Fatal(err)
			}
			tl.reopen(t)
			reread, _ := readRecords(t, tl.Log)
			recordsEqual(t, reread, got)
		})
	}
}
