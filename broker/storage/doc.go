// Package storage is the partition log: an append-only, segmented log of
// Kafka magic-v2 record batches, stored exactly as producers sent them.
//
// It imports no networking. Every file operation goes through FS, so tests
// run the same code on MemFS and simulate crashes.
//
// # Directory
//
// One partition is one directory:
//
//	<dir>/
//	  00000000000000000000.log        record batches, back to back
//	  00000000000000000000.index      sparse offset index of that segment
//	  00000000000000000000.timeindex  sparse time index of that segment
//	  00000000000000065536.log        the next segment: named by its base offset
//	  ...
//	  log-start-offset                the log start offset set by DeleteRecords
//	  leader-epoch-checkpoint         where each leader epoch began (leader_epochs.go)
//	  00000000000000065536.producers  idempotent producers' state as of that offset
//	  clean-shutdown                  present only while the log is closed cleanly
//
// The leader-epoch checkpoint is Kafka's text form: "0", the entry count,
// then "epoch start_offset" per line. An epoch is written there before the
// first batch that carries it, and an epoch a leader began without writing
// (start = log end) is kept. TruncateTo cuts the log back for a follower
// whose log diverged; producer states and epochs follow the cut.
//
// The last segment is the active one; only it is written. A segment rolls
// when it would grow past Config.SegmentBytes, when its first batch is older
// than Config.SegmentAge, or when its relative offsets would overflow 32 bits.
//
// # Record batch (.log), big-endian, as Kafka defines it
//
//	 0                   8        12              16    17      21
//	+-------------------+--------+---------------+-----+-------+
//	| base offset int64 | length | leader epoch  |magic|  CRC  |
//	|                   | int32  | int32         | =2  |  32C  |
//	+-------------------+--------+---------------+-----+-------+
//	21         23                27                35              43
//	+----------+-----------------+-----------------+---------------+
//	|attributes| last offset     | base timestamp  | max timestamp |
//	|  int16   | delta int32     | int64           | int64         |
//	+----------+-----------------+-----------------+---------------+
//	43                51       53              57             61
//	+-----------------+--------+---------------+--------------+---------+
//	| producer id     | epoch  | base sequence | record count | records |
//	| int64           | int16  | int32         | int32        | ...     |
//	+-----------------+--------+---------------+--------------+---------+
//
// length counts the bytes after the length field, so a batch occupies
// 12 + length bytes. The CRC-32C (Castagnoli) covers attributes through the
// end of the records. The broker rewrites only the base offset and the
// leader epoch, which the CRC does not cover, and, for topics that ask for
// LogAppendTime, the attributes and max timestamp, after which it
// recomputes the CRC. Records are never recompressed.
//
// # Offset index (.index): 8-byte entries
//
//	+------------------------+----------------------+
//	| relative offset uint32 | file position uint32 |
//	+------------------------+----------------------+
//
// An entry maps the base offset of a batch (minus the segment's base offset)
// to the batch's byte position in the .log file. An entry is added before a
// batch once Config.IndexIntervalBytes of batches have been written since the
// last one, so finding an offset reads at most about one interval of batch
// headers. Entries strictly increase in both fields.
//
// # Time index (.timeindex): 12-byte entries
//
//	+-----------------+------------------------+
//	| timestamp int64 | relative offset uint32 |
//	+-----------------+------------------------+
//
// At each offset index entry, and when a segment is closed or rolled, the
// largest timestamp seen so far in the segment is recorded with the base
// offset of the batch that holds it, if it grew since the last entry. So the
// last entry of a closed segment carries the segment's largest timestamp,
// which time-based retention reads without scanning.
//
// # Durability and recovery
//
// Appends are written to the active segment with one write each. An append
// that asks for durability returns only after an fsync covers it; appends
// waiting at the same moment share one fsync (group commit). Index files are
// written in batches and synced at roll, at close, and every
// indexSyncInterval bytes of log; they can always be rebuilt from the log.
//
// Close syncs everything and writes clean-shutdown. Open removes it. When it
// was missing, the log stopped uncleanly: recovery checks the last segment's
// index entries against the log, keeps those that point at intact batch
// headers, and scans only the batches after the last of them, checking
// every CRC-32C. The first incomplete or damaged batch there starts a torn
// tail, which is cut off (and the cut logged). A damaged batch that is
// followed by an intact one cannot be a torn write: that is corruption,
// and Open fails with a *CorruptionError instead of cutting data, leaving the
// partition offline. Older segments are not scanned at start-up; their
// indexes are checked, and rebuilt if missing or damaged, when first used.
// So start-up time depends on the index interval and the sync interval,
// not on the amount of data retained.
package storage
