package quorum

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kqstack/kqstack/broker/storage"
)

func entries(from, to, term uint64) []*raft.Log {
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("entry %d", i)), AppendedAt: time.Unix(0, int64(i))})
	}
	return logs
}

func checkRange(t *testing.T, s *logStore, first, last uint64) {
	t.Helper()
	gotFirst, _ := s.FirstIndex()
	gotLast, _ := s.LastIndex()
	if gotFirst != first || gotLast != last {
		t.Fatalf("log holds %d..%d, want %d..%d", gotFirst, gotLast, first, last)
	}
	for i := first; i <= last && i > 0; i++ {
		var log raft.Log
		if err := s.GetLog(i, &log); err != nil || string(log.Data) != fmt.Sprintf("entry %d", i) || log.Index != i {
			t.Fatalf("entry %d: %v %+v", i, err, log)
		}
	}
}

func TestLogStoreKeepsWhatItAcknowledged(t *testing.T) {
	fsys := storage.NewMemFS()
	s, err := openLogStore(fsys, "q")
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 0, 0)
	if err := s.StoreLogs(entries(1, 10, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(entries(11, 11, 2)[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(entries(13, 13, 2)[0]); err == nil {
		t.Fatal("a gap in the log was accepted")
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("3")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get([]byte("never")); err == nil || err.Error() != "not found" {
		t.Fatalf("a missing key: %v, want raft's \"not found\"", err)
	}

	// A crash loses nothing that returned: every append was fsynced.
	for seed := range uint64(20) {
		fsys = fsys.Restart(rand.New(rand.NewPCG(seed, 1)))
		if s, err = openLogStore(fsys, "q"); err != nil {
			t.Fatal(err)
		}
		checkRange(t, s, 1, 11)
		if term, err := s.GetUint64([]byte("CurrentTerm")); err != nil || term != 2 {
			t.Fatalf("term after a crash: %d %v", term, err)
		}
		if vote, _ := s.Get([]byte("LastVoteCand")); string(vote) != "3" {
			t.Fatalf("vote after a crash: %q", vote)
		}
	}

	// Raft cuts a conflicting suffix on a follower, and a snapshotted prefix.
	if err := s.DeleteRange(9, 11); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 1, 8)
	if err := s.StoreLogs(entries(9, 12, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRange(1, 4); err != nil {
		t.Fatal(err)
	}
	checkRange(t, s, 5, 12)
	if err := s.DeleteRange(7, 8); err == nil {
		t.Fatal("deleting from the middle was accepted")
	}
	after := fsys.Restart(rand.New(rand.NewPCG(7, 7)))
	reopened, err := openLogStore(after, "q")
	if err != nil {
		t.Fatal(err)
	}
	checkRange(t, reopened, 5, 12)
}

func TestLogStoreCutsATornTailAndRefusesCorruption(t *testing.T) {
	fsys := storage.NewMemFS()
	s, err := openLogStore(fsys, "q")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(1, 5, 1)); err != nil {
		t.Fatal(err)
	}
	size, offsets := s.size, append([]int64(nil), s.offsets...)
	_ = s.Close()

	// A torn append: half a frame at the end.
	file, _ := fsys.OpenFile("q/"+logFileName, false)
	frame := appendFrame(nil, *entries(6, 6, 1)[0])
	if _, err := file.WriteAt(frame[:len(frame)/2], size); err != nil {
		t.Fatal(err)
	}
	s, err = openLogStore(fsys, "q")
	if err != nil {
		t.Fatalf("a torn tail: %v", err)
	}
	checkRange(t, s, 1, 5)
	if s.size != size {
		t.Fatalf("the torn tail was not cut: size %d, want %d", s.size, size)
	}
	_ = s.Close()

	// A flipped byte in entry 3, with intact entries after it: corruption.
	file, _ = fsys.OpenFile("q/"+logFileName, false)
	if _, err := file.WriteAt([]byte{0xff}, offsets[2]+frameHeader+3); err != nil {
		t.Fatal(err)
	}
	if _, err := openLogStore(fsys, "q"); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corruption in the middle: %v", err)
	}
}

func TestLogStoreFailsClosed(t *testing.T) {
	fsys := storage.NewMemFS()
	s, err := openLogStore(fsys, "q")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(entries(1, 2, 1)); err != nil {
		t.Fatal(err)
	}
	broken := errors.New("disk gone")
	fsys.FailNextSync(broken)
	if err := s.StoreLogs(entries(3, 3, 1)); !errors.Is(err, broken) {
		t.Fatalf("append with a failing fsync: %v", err)
	}
	// Every later call fails too: raft must not go on on a log it cannot trust.
	if err := s.StoreLogs(entries(3, 3, 1)); !errors.Is(err, broken) {
		t.Fatalf("append after a failed fsync: %v", err)
	}
	var log raft.Log
	if err := s.GetLog(1, &log); !errors.Is(err, broken) {
		t.Fatalf("read after a failed fsync: %v", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 9); !errors.Is(err, broken) {
		t.Fatalf("vote after a failed fsync: %v", err)
	}
}
