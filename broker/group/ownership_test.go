package group

// Tests of who owns group state: the coordinator decides, the offsets
// store persists, outside the coordinator's lock, and write failures reach
// the caller and the log.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/storage"
)

// gatedFS is a file system (MemFS underneath) that can hold the next write
// or fsync of a segment file until the test releases it.
type gatedFS struct {
	storage.FS
	mu      sync.Mutex
	armed   string        // "write" or "sync": the operation to hold next
	held    chan struct{} // closed once an operation is held
	release chan struct{}
}

func newGatedFS() *gatedFS { return &gatedFS{FS: storage.NewMemFS()} }

// arm makes the next operation op on a segment wait until the returned
// release is called; held is closed once it waits.
func (f *gatedFS) arm(t *testing.T, op string) (held <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed, f.held, f.release = op, make(chan struct{}), make(chan struct{})
	var once sync.Once
	releaseChannel := f.release
	release = func() { once.Do(func() { close(releaseChannel) }) }
	t.Cleanup(release) // a failed test must not leave the operation held
	return f.held, release
}

func (f *gatedFS) hold(op, name string) {
	if !strings.HasSuffix(name, ".log") {
		return
	}
	f.mu.Lock()
	if f.armed != op {
		f.mu.Unlock()
		return
	}
	f.armed = ""
	held, release := f.held, f.release
	f.mu.Unlock()
	close(held)
	<-release
}

func (f *gatedFS) OpenFile(name string, create bool) (storage.File, error) {
	file, err := f.FS.OpenFile(name, create)
	if err != nil {
		return nil, err
	}
	return &gatedFile{File: file, fs: f, name: name}, nil
}

type gatedFile struct {
	storage.File
	fs   *gatedFS
	name string
}

func (f *gatedFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.hold("write", f.name)
	return f.File.WriteAt(p, off)
}

func (f *gatedFile) Sync() error {
	f.fs.hold("sync", f.name)
	return f.File.Sync()
}

// within runs fn and fails the test if it has not returned after a
// while: fn must not wait for the operation a test holds.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s waited for the write held on the disk", what)
	}
}

func received[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer", what)
		var zero T
		return zero
	}
}

// storedGroups reads the groups out of the store's log as a restart would.
func storedGroups(t *testing.T, store *OffsetStore) map[string]*storedGroup {
	t.Helper()
	live, err := store.liveRecords(store.Log().HighWatermark())
	if err != nil {
		t.Fatal(err)
	}
	return loadGroups(live)
}

func (h *harness) commitPartition(group string, partition int32, offset int64) error {
	finish, err := h.c.CommitOffsets(group, "", nil, -1, []OffsetCommit{{TopicPartition{"orders", partition}, Offset{Offset: offset}}})
	if err != nil {
		return err
	}
	return finish()
}

func (h *harness) offsetOf(partition int32) int64 {
	return h.c.FetchOffset("g", TopicPartition{"orders", partition}).Offset
}

// Finding: Delete removed the group, let go of the lock, then deleted the
// offsets it could see, so a commit written but not yet applied survived
// the deletion.
func TestDeleteRemovesACommitStillBeingWritten(t *testing.T) {
	h := newHarness(t, 0)
	if err := h.commit("", -1, 5); err != nil {
		t.Fatal(err)
	}
	finish, err := h.c.CommitOffsets("g", "", nil, -1, []OffsetCommit{{TopicPartition{"orders", 1}, Offset{Offset: 7}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.Delete("g"); err != nil {
		t.Fatal(err)
	}
	if err := finish(); err != nil {
		t.Fatalf("a commit that landed before the deletion: %v", err)
	}
	if o0, o1 := h.offsetOf(0), h.offsetOf(1); o0 != -1 || o1 != -1 {
		t.Fatalf("offsets %d, %d after the deletion, want -1, -1", o0, o1)
	}
	if groups := h.c.List(nil); len(groups) != 0 {
		t.Fatalf("groups after the deletion: %+v", groups)
	}
	// After it, a member's commit finds no group and creates none; a
	// standalone commit creates a new, empty one, as Kafka's does.
	if err := h.commit("gone-member", 3, 8); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Fatalf("a member's commit to a deleted group: %v", err)
	}
	if groups := h.c.List(nil); len(groups) != 0 {
		t.Fatalf("a refused commit created %+v", groups)
	}
	if err := h.commit("", -1, 9); err != nil {
		t.Fatal(err)
	}
	if groups := h.c.List(nil); len(groups) != 1 || groups[0].State != StateEmpty {
		t.Fatalf("groups after a standalone commit: %+v", groups)
	}
	h.store.Close()
	h.open(0)
	if o0, o1 := h.offsetOf(0), h.offsetOf(1); o0 != 9 || o1 != -1 {
		t.Fatalf("after reopening: offsets %d, %d, want 9, -1", o0, o1)
	}
}

// While a deletion is being made durable the group is Dead: commits and
// joins are refused with a retriable error, and everything else goes on.
func TestCommitsDuringADeletionAreRefused(t *testing.T) {
	fsys := newGatedFS()
	h := newHarnessOn(t, fsys, "offsets", 0)
	if err := h.commit("", -1, 5); err != nil {
		t.Fatal(err)
	}
	held, release := fsys.arm(t, "sync")
	deleted := make(chan error, 1)
	go func() { deleted <- h.c.Delete("g") }()
	<-held
	var otherFinish func() error
	within(t, "the coordinator", func() {
		if err := h.commit("", -1, 6); !errors.Is(err, kerr.CoordinatorNotAvailable) {
			t.Errorf("a commit during the deletion: %v", err)
		}
		if r := <-h.c.Join(joinReq("")); !errors.Is(r.Err, kerr.CoordinatorNotAvailable) {
			t.Errorf("a join during the deletion: %+v", r)
		}
		if d, _ := h.c.Describe("g"); d.State != StateDead {
			t.Errorf("described as %s during the deletion", d.State)
		}
		if o := h.offsetOf(0); o != 5 {
			t.Errorf("offset %d while the deletion is not durable, want 5", o)
		}
		var err error
		if otherFinish, err = h.c.CommitOffsets("other", "", nil, -1, []OffsetCommit{{TopicPartition{"orders", 0}, Offset{Offset: 1}}}); err != nil {
			t.Errorf("a commit to another group: %v", err)
		}
	})
	waiting(t, deleted)
	release()
	if err := received(t, "Delete", deleted); err != nil {
		t.Fatal(err)
	}
	if err := otherFinish(); err != nil {
		t.Fatal(err)
	}
	if err := h.commit("", -1, 7); err != nil {
		t.Fatalf("a commit after the deletion: %v", err)
	}
	if o := h.offsetOf(0); o != 7 {
		t.Fatalf("offset %d in the new group, want 7", o)
	}
}

// A commit racing a deletion lands before it, and is deleted, or after
// it, in a new group; either way the coordinator and the log agree.
func TestDeleteRacingCommits(t *testing.T) {
	h := newHarnessOn(t, storage.NewMemFS(), "offsets", 0)
	// Committers go on until the deleter has deleted the group often
	// enough, within bounds so that a bug fails rather than spins. A
	// refused commit (the group is Dead) costs nothing: it yields.
	const committers, wantDeletes, maxCommits, maxAttempts = 4, 50, 20000, 500000
	var deletes atomic.Int32
	var running atomic.Int32
	running.Store(committers)
	last := make([]int64, committers)  // each committer's last successful commit
	commits := make([]int, committers) // and how many succeeded
	attempts := make([]int64, committers)
	var wg sync.WaitGroup
	for p := range committers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer running.Add(-1)
			successes, offset := 0, int64(1)
			defer func() { attempts[p] = offset - 1 }()
			for ; offset <= maxAttempts && successes < maxCommits && (successes < 100 || deletes.Load() < wantDeletes); offset++ {
				err := h.commitPartition("g", int32(p), offset)
				switch {
				case err == nil:
					last[p] = offset
					successes++
				case errors.Is(err, kerr.CoordinatorNotAvailable):
					runtime.Gosched()
				default:
					t.Errorf("commit %d of partition %d: %v", offset, p, err)
					return
				}
			}
			commits[p] = successes
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for deletes.Load() < wantDeletes && running.Load() > 0 {
			switch err := h.c.Delete("g"); {
			case err == nil:
				deletes.Add(1)
			case !errors.Is(err, kerr.GroupIDNotFound):
				t.Errorf("delete: %v", err)
				return
			}
		}
	}()
	wg.Wait()
	if t.Failed() {
		return
	}
	if n := deletes.Load(); n < wantDeletes {
		t.Fatalf("%d deletions, want %d; commits per partition %v", n, wantDeletes, commits)
	}
	t.Logf("%d deletions among %v commits, %v attempts", deletes.Load(), commits, attempts)
	// A partition shows its last commit, or nothing if a deletion came
	// after it; never an older commit.
	seen := make([]int64, committers)
	anyOffset := false
	for p := range committers {
		seen[p] = h.offsetOf(int32(p))
		if seen[p] != -1 && seen[p] != last[p] {
			t.Errorf("partition %d shows %d; its last commit was %d", p, seen[p], last[p])
		}
		anyOffset = anyOffset || seen[p] != -1
	}
	if _, exists := h.c.Describe("g"); exists != anyOffset {
		t.Errorf("the group exists: %v; offsets %v", exists, seen)
	}
	h.store.Close()
	h.open(0)
	for p := range committers {
		if o := h.offsetOf(int32(p)); o != seen[p] {
			t.Errorf("partition %d: %d after reopening, %d before", p, o, seen[p])
		}
	}
	if _, exists := h.c.Describe("g"); exists != anyOffset {
		t.Errorf("after reopening the group exists: %v; offsets %v", exists, seen)
	}
}

// A deletion of a partition's offset (OffsetDelete) is not undone by an
// older commit of it that is applied after.
func TestADeletionIsNotUndoneByAnOlderCommit(t *testing.T) {
	h := newHarness(t, 0)
	finish, err := h.c.CommitOffsets("g", "", nil, -1, []OffsetCommit{{TopicPartition{"orders", 0}, Offset{Offset: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.DeleteOffsets("g", []TopicPartition{{"orders", 0}}); err != nil {
		t.Fatal(err)
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if o := h.offsetOf(0); o != -1 {
		t.Fatalf("offset %d: the older commit undid the deletion", o)
	}
	h.store.Close()
	h.open(0)
	if o := h.offsetOf(0); o != -1 {
		t.Fatalf("offset %d after reopening", o)
	}
}

// A deletion that cannot be made durable is answered with an error and
// leaves the group as it was, offsets and all.
func TestAFailedDeleteKeepsTheGroup(t *testing.T) {
	fsys := storage.NewMemFS()
	h := newHarnessOn(t, fsys, "offsets", 0)
	if err := h.commit("", -1, 5); err != nil {
		t.Fatal(err)
	}
	fsys.FailNextSync(errors.New("injected: the disk reports an I/O error"))
	if err := h.c.Delete("g"); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("a failed deletion: %v", err)
	}
	if groups := h.c.List(nil); len(groups) != 1 || groups[0].State != StateEmpty {
		t.Fatalf("groups after a failed deletion: %+v", groups)
	}
	if o := h.offsetOf(0); o != 5 {
		t.Fatalf("offset %d after a failed deletion, want 5", o)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "group not deleted") || !strings.Contains(logs, "injected") {
		t.Fatalf("the failure was not logged:\n%s", logs)
	}
	// The log is offline now: commits fail, and say so.
	if err := h.commit("", -1, 6); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("a commit to an offline log: %v", err)
	}
	if o := h.offsetOf(0); o != 5 {
		t.Fatalf("offset %d after a failed commit, want 5", o)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "writing committed offsets failed") {
		t.Fatalf("the failed commit was not logged:\n%s", logs)
	}
}

// Finding: Tick dropped expired groups before deleting their offsets and
// ignored the error, so the offsets stayed visible (and came back with the
// group at a restart). Now a failed expiry keeps the group, says so, and
// the next check after a restart deletes it.
func TestAFailedExpiryKeepsTheGroupForTheNextCheck(t *testing.T) {
	fsys := storage.NewMemFS()
	h := newHarnessOn(t, fsys, "offsets", 0)
	if err := h.commit("", -1, 5); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(25 * time.Hour)
	fsys.CrashAfter(1) // the deletion's append fails
	if err := h.c.Tick(); !errors.Is(err, kerr.CoordinatorNotAvailable) {
		t.Fatalf("Tick with a failing disk: %v", err)
	}
	if groups := h.c.List(nil); len(groups) != 1 {
		t.Fatalf("groups after a failed expiry: %+v", groups)
	}
	if o := h.offsetOf(0); o != 5 {
		t.Fatalf("offset %d after a failed expiry, want 5", o)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "group not deleted") {
		t.Fatalf("the failure was not logged:\n%s", logs)
	}
	// The machine restarts: the log agrees with what the coordinator said.
	_ = h.store.Close()
	h.fs = fsys.Restart(rand.New(rand.NewPCG(1, 2)))
	h.open(0)
	if o := h.offsetOf(0); o != 5 {
		t.Fatalf("offset %d after the restart, want 5", o)
	}
	h.clock.Advance(25 * time.Hour)
	if err := h.c.Tick(); err != nil {
		t.Fatal(err)
	}
	if groups := h.c.List(nil); len(groups) != 0 || h.offsetOf(0) != -1 {
		t.Fatalf("not expired: groups %+v, offset %d", groups, h.offsetOf(0))
	}
	h.store.Close()
	h.open(0)
	if groups := h.c.List(nil); len(groups) != 0 || h.offsetOf(0) != -1 {
		t.Fatalf("the expiry was not durable: groups %+v, offset %d", groups, h.offsetOf(0))
	}
}

// Finding: recordGroupLocked wrote to the log under the coordinator-wide
// lock. Now a write held on the disk holds up only the SyncGroup it
// answers.
func TestNoDiskWriteUnderTheCoordinatorLock(t *testing.T) {
	fsys := newGatedFS()
	h := newHarnessOn(t, fsys, "offsets", 0)
	ids, generation := h.joinedGroup(2)
	follower := ids[0]
	if follower == h.leader {
		follower = ids[1]
	}
	followerSync := h.c.Sync(SyncRequest{Group: "g", MemberID: follower, Generation: generation})
	held, release := fsys.arm(t, "write")
	leaderSync := make(chan (<-chan SyncResult), 1)
	go func() {
		leaderSync <- h.c.Sync(SyncRequest{Group: "g", MemberID: h.leader, Generation: generation,
			Assignments: map[string][]byte{h.leader: []byte("p0"), follower: []byte("p1")}})
	}()
	<-held
	within(t, "the coordinator", func() {
		if err := h.c.Heartbeat("g", follower, nil, generation); err != nil {
			t.Errorf("heartbeat while the assignment is written: %v", err)
		}
		if d, _ := h.c.Describe("g"); d.State != StateCompletingRebalance {
			t.Errorf("described as %s before the assignment is written", d.State)
		}
		other := joinReq("")
		other.Group = "other"
		if r := <-h.c.Join(other); !errors.Is(r.Err, kerr.MemberIDRequired) {
			t.Errorf("a join of another group: %+v", r)
		}
		_ = h.c.List(nil)
		_ = h.c.FetchOffset("g", TopicPartition{"orders", 0})
	})
	waiting(t, followerSync) // nobody gets an assignment before it is written
	release()
	if r := received(t, "the leader's SyncGroup", received(t, "Sync", leaderSync)); r.Err != nil || string(r.Assignment) != "p0" {
		t.Fatalf("leader: %+v", r)
	}
	if r := received(t, "the follower's SyncGroup", followerSync); r.Err != nil || string(r.Assignment) != "p1" {
		t.Fatalf("follower: %+v", r)
	}
	if d, _ := h.c.Describe("g"); d.State != StateStable {
		t.Fatalf("described as %s once written", d.State)
	}
}

// Finding: recordGroupLocked dropped the error. Now the members are told,
// and the group rebalances, as Kafka's does.
func TestAFailedAssignmentWriteRebalances(t *testing.T) {
	fsys := storage.NewMemFS()
	h := newHarnessOn(t, fsys, "offsets", 0)
	ids, generation := h.joinedGroup(2)
	follower := ids[0]
	if follower == h.leader {
		follower = ids[1]
	}
	followerSync := h.c.Sync(SyncRequest{Group: "g", MemberID: follower, Generation: generation})
	fsys.CrashAfter(1)
	leaderSync := h.c.Sync(SyncRequest{Group: "g", MemberID: h.leader, Generation: generation,
		Assignments: map[string][]byte{h.leader: []byte("p0"), follower: []byte("p1")}})
	for name, ch := range map[string]<-chan SyncResult{"leader": leaderSync, "follower": followerSync} {
		if r := ready(t, ch); !errors.Is(r.Err, kerr.CoordinatorNotAvailable) || r.Assignment != nil {
			t.Errorf("%s: %+v, want COORDINATOR_NOT_AVAILABLE", name, r)
		}
	}
	if d, _ := h.c.Describe("g"); d.State != StatePreparingRebalance {
		t.Fatalf("described as %s after a failed write", d.State)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "assignment was not written") {
		t.Fatalf("the failure was not logged:\n%s", logs)
	}
}

// Finding: Compact re-encoded group metadata without its members. Now a
// restart after compaction finds the same generation, protocol, leader
// and members, with their assignments.
func TestCompactionKeepsGroupMetadataWithMembers(t *testing.T) {
	cfg := storage.DefaultConfig()
	cfg.SegmentBytes, cfg.Cleanup = 512, storage.CleanupCompact
	h := &harness{t: t, clock: clock.NewManual(start), dir: t.TempDir(), logs: &logBuffer{}, config: &cfg}
	h.open(0)
	t.Cleanup(func() { h.store.Close() })
	instance := "pod-1"
	static := joinReq("")
	static.InstanceID = &instance
	first := <-h.c.Join(static)
	second, answer := h.join("")
	waiting(t, answer)
	first = <-h.c.Join(JoinRequest{Group: "g", MemberID: first.MemberID, InstanceID: &instance, ClientID: "c", ProtocolType: "consumer",
		Protocols: []Protocol{{Name: "range", Metadata: []byte("m")}}, SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second})
	joined := ready(t, answer)
	if first.Err != nil || joined.Err != nil {
		t.Fatalf("joins: %+v %+v", first, joined)
	}
	leader := first.LeaderID
	instanceOf := func(member string) *string {
		if member == first.MemberID {
			return &instance
		}
		return nil
	}
	follower := second
	if leader == second {
		follower = first.MemberID
	}
	followerSync := h.c.Sync(SyncRequest{Group: "g", MemberID: follower, InstanceID: instanceOf(follower), Generation: first.Generation})
	leaderSync := h.c.Sync(SyncRequest{Group: "g", MemberID: leader, InstanceID: instanceOf(leader), Generation: first.Generation,
		Assignments: map[string][]byte{first.MemberID: []byte("a0"), second: []byte("a1")}})
	for _, ch := range []<-chan SyncResult{followerSync, leaderSync} {
		if r := ready(t, ch); r.Err != nil || len(r.Assignment) != 2 {
			t.Fatalf("sync: %+v", r)
		}
	}
	for i := int64(0); i < 20; i++ {
		if err := h.commit(second, first.Generation, i); err != nil {
			t.Fatal(err)
		}
	}
	before := storedGroups(t, h.store)["g"]
	if before == nil || before.metadata == nil || len(before.metadata.Members) != 2 || before.metadata.Leader != leader {
		t.Fatalf("the group's metadata before compaction: %+v", before)
	}
	cleaned, err := h.store.Log().Clean()
	if err != nil {
		t.Fatal(err)
	}
	if cleaned.RecordsKept >= cleaned.RecordsRead {
		t.Fatalf("compaction kept all of %d records", cleaned.RecordsRead)
	}
	h.store.Close()
	h.open(0)
	after := storedGroups(t, h.store)["g"]
	if after == nil || !reflect.DeepEqual(after.metadata, before.metadata) {
		t.Fatalf("metadata after compaction and a restart:\n%+v\nbefore:\n%+v", describeRecord(after), describeRecord(before))
	}
	if len(after.offsets) != 1 || after.offsets[TopicPartition{"orders", 0}].Offset != before.offsets[TopicPartition{"orders", 0}].Offset {
		t.Fatalf("offsets after compaction %+v, before %+v", after.offsets, before.offsets)
	}
	if o := h.offsetOf(0); o != 19 {
		t.Fatalf("committed %d after compaction, want 19", o)
	}
	// The group comes back with its members, in its generation.
	if d, _ := h.c.Describe("g"); d.State != StateStable || len(d.Members) != 2 {
		t.Fatalf("after compaction and a restart: %s with %d members", d.State, len(d.Members))
	}
	if err := h.c.Heartbeat("g", second, nil, first.Generation); err != nil {
		t.Fatalf("a member's heartbeat after compaction and a restart: %v", err)
	}
	if err := h.commit(second, first.Generation, 20); err != nil {
		t.Fatalf("a member's commit after compaction and a restart: %v", err)
	}
}

func describeRecord(g *storedGroup) string {
	if g == nil || g.metadata == nil {
		return "none"
	}
	return fmt.Sprintf("%+v", *g.metadata)
}

// The metadata of a group that became empty has no caller waiting for it:
// a failure to write it is logged, and the members' leaving stands.
func TestAFailedEmptyGenerationWriteIsLogged(t *testing.T) {
	fsys := storage.NewMemFS()
	h := newHarnessOn(t, fsys, "offsets", 0)
	ids, generation := h.stableGroup(1)
	fsys.CrashAfter(1)
	results, err := h.c.Leave("g", []LeaveMember{{MemberID: ids[0]}})
	if err != nil || results[0] != nil {
		t.Fatalf("leave: %v %v", results, err)
	}
	d, _ := h.c.Describe("g")
	if d.State != StateEmpty || len(d.Members) != 0 {
		t.Fatalf("after the last member left: %s with %d members", d.State, len(d.Members))
	}
	if logs := h.logs.String(); !strings.Contains(logs, "group metadata not written") || !strings.Contains(logs, "older generation") {
		t.Fatalf("the failure was not logged:\n%s", logs)
	}
	if err := h.c.Heartbeat("g", ids[0], nil, generation); !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("the member that left: %v", err)
	}
}
