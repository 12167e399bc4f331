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
//	  cleaner-checkpoint              how far a compacted log is cleaned
//	  00000000000000000000.log.cleaned (.index.cleaned, .timeindex.cleaned)
//	                                  a clean's output being written; Open removes it
//	  00000000000000000000.00000000000000065536.3.swap
//	                                  a cleaned segment being swapped in; Open finishes it
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
// recomputes the CRC. Appends never recompress records; the cleaner of a
// compacted log rewrites the batches it takes records out of (Log
// compaction, below).
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
//
// # Log compaction (cleanup.policy compact, compact,delete)
//
// A compacted log keeps, below its cleaning point, only the last record of
// each key, as Kafka's log cleaner does (log_compact.go, cleaner.go).
// Offsets never change: readers see gaps. A compacted log refuses records
// without a key (ErrInvalidRecord, Kafka's INVALID_RECORD); its follower
// takes its leader's batches, gaps and emptied batches included, and
// recovery allows gaps in its active segment. Retention by age and size
// applies only with compact,delete.
//
// Maintain starts a clean in the background when the bytes not yet
// cleaned are more than MinCleanableDirtyRatio of the log, or its oldest
// uncleaned batch is older than MaxCompactionLag; one log of the process
// cleans at a time. A clean goes through these steps:
//
//	plan    first dirty offset = cleaner-checkpoint (or the first
//	        segment); limit = base of the segment holding the least of
//	        the high watermark, the active segment's base and the first
//	        segment with a record younger than MinCompactionLag: closed
//	        segments below the high watermark only, never the active one.
//	map     reads the batches from the first dirty offset to the limit
//	        and records key -> offset of its last record in an
//	        open-addressing table of 16-byte SHA-256 prefixes (24 bytes a
//	        slot, CleanerBufferBytes at most, filled to 90% at most).
//	        Below the first dirty offset it reads only batch headers:
//	        each producer's last batch, and the largest timestamp. A
//	        batch that might not fit ends the map: its base offset is
//	        the cleaning point E, and the rest waits for the next pass.
//	clean   runs of segments below E, each no larger than SegmentBytes,
//	        each into one new segment named by its first base offset. A
//	        record stays if it has a key, no later record of its key is
//	        below E, and it is not a tombstone older than the log time
//	        (the largest timestamp below E) less DeleteRetention. A batch
//	        keeping all its records is copied as it is; one keeping some
//	        is encoded again with its own codec, the kept records' bytes
//	        unchanged, with the same base offset and last offset delta
//	        (it ends where it did), producer, epoch, base sequence and
//	        base timestamp; one keeping none goes, unless it is its
//	        producer's last below E and not older than ProducerExpiry:
//	        then it stays, with no records, for the producer's sequence.
//	        A run with nothing to take out is not written unless several
//	        segments merge. Output: <base>.log.cleaned and its indexes,
//	        fsynced.
//	swap    up to 32 runs (64 MiB) at a time, all or none:
//	          rename each <base>.log.cleaned to <base>.<end>.<n>.swap
//	          fsync the directory                       <- the commit
//	          remove the replaced segments' files; link each .swap to
//	          <base>.log, its .cleaned indexes to <base>.index and
//	          <base>.timeindex; fsync the directory
//	          swap the segment list (the only step under appendMu)
//	          remove the .swap and .cleaned names; fsync the directory
//	record  the cleaning point and the log time in cleaner-checkpoint
//	        (temp file, fsync, rename, fsync).
//
// Crash safety: Open first removes every .cleaned file, then looks at the
// .swap files; n in each name is how many were committed together. If all
// n are there the commit happened: Open removes every segment file in each
// swap's [base, end), links the swap to <base>.log (its indexes are
// rebuilt when first used) and removes it. If only some are, either the
// renames were not all durable (the old segments are still whole) or the
// names were being tidied after the links were durable, and Open removes
// them. So each run of segments is either all old or all new, and the runs
// of one commit are alike: a later run never loses a tombstone whose key's
// older value an earlier run still holds. A link, not a rename, puts a
// .swap in place: a rename not yet durable can lose both names in a crash
// (MemFS models that), while a link keeps the .swap until the new name is
// durable. A checkpoint behind the swaps only makes the next clean redo
// work. Truncation bumps a generation that stops a clean under way from
// swapping, and lowers the checkpoint to the new end.
//
// Replicas: every broker cleans its own copy. What a clean keeps depends
// only on the records below E and the log time carried in the checkpoint,
// not on segment boundaries, the wall clock or how many cleans came
// before, so replicas cleaned to the same point hold the same batches,
// byte for byte (the codecs are deterministic). A follower that fetched
// batches its leader had already cleaned computes its log time from what
// it holds, which may be earlier: it then keeps some tombstones longer.
//
// Memory: the key map (CleanerBufferBytes, 128 MiB by default, sized down
// to what the offsets to clean can need), one decompressed batch (at most
// maxDecompressedRecords, 64 MiB) and 1 MiB buffers. CleanerBytesPerSecond
// can hold its I/O to a rate. Appends wait for the cleaner only while it
// swaps the segment list; retention, DeleteRecords and truncation wait for
// its renames and fsyncs (cleaner.filesMu).
package storage
