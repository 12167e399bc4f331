package quorum

import (
	"testing"

	"github.com/hashicorp/raft"

	"github.com/kqstack/kqstack/broker/storage"
)

// FuzzLogStoreRecovery: whatever bytes raft.log and raft.vote hold, opening
// them returns an error or a store whose entries are contiguous and
// readable; it never panics or allocates without bound.
func FuzzLogStoreRecovery(f *testing.F) {
	var good []byte
	for _, e := range entries(1, 3, 1) {
		good = appendFrame(good, *e)
	}
	f.Add(good, []byte{})
	f.Add(good[:len(good)-3], []byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, logBytes, voteBytes []byte) {
		fsys := storage.NewMemFS()
		if err := fsys.MkdirAll("q"); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"q/" + logFileName: logBytes, "q/" + stableFileName: voteBytes} {
			if len(data) == 0 && name == "q/"+stableFileName {
				continue
			}
			file, err := fsys.OpenFile(name, true)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := file.WriteAt(data, 0); err != nil {
				t.Fatal(err)
			}
			_ = file.Close()
		}
		s, err := openLogStore(fsys, "q")
		if err != nil {
			return
		}
		first, _ := s.FirstIndex()
		last, _ := s.LastIndex()
		for i := first; i <= last && i != 0; i++ {
			var log raft.Log
			if err := s.GetLog(i, &log); err != nil || log.Index != i {
				t.Fatalf("entry %d of %d..%d: %v", i, first, last, err)
			}
		}
		// It can be appended to after whatever it recovered.
		if err := s.StoreLog(&raft.Log{Index: last + 1, Term: 1, Data: []byte("x")}); err != nil && last+1 != 0 {
			t.Fatalf("append after recovery: %v", err)
		}
	})
}
