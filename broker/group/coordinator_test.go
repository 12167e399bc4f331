package group

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/storage"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type harness struct {
	leader string // set by stableGroup
	t      *testing.T
	clock  *clock.Manual
	fs     storage.FS // nil: the OS's, in dir
	dir    string
	logs   *logBuffer
	c      *Coordinator
	store  *OffsetStore
	// config is the offsets log's; nil: storage's defaults
	config *storage.Config
}

func newHarness(t *testing.T, initialDelay time.Duration) *harness {
	return newHarnessOn(t, nil, t.TempDir(), initialDelay)
}

// newHarnessOn opens the coordinator on fsys (MemFS for crash and failure
// tests), in dir.
func newHarnessOn(t *testing.T, fsys storage.FS, dir string, initialDelay time.Duration) *harness {
	h := &harness{t: t, clock: clock.NewManual(start), fs: fsys, dir: dir, logs: &logBuffer{}}
	h.open(initialDelay)
	t.Cleanup(func() { h.store.Close() })
	return h
}

func (h *harness) open(initialDelay time.Duration) {
	opts := storage.Options{FS: h.fs, Clock: h.clock, Logger: slog.New(slog.NewTextHandler(h.logs, nil))}
	if h.config != nil {
		opts.Config = *h.config
	}
	store, err := OpenOffsetStore(h.dir, opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = store
	h.c = NewCoordinator(h.clock, initialDelay, 24*time.Hour, store)
}

// logBuffer collects what the coordinator and the log write to the logger.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func joinReq(memberID string) JoinRequest {
	return JoinRequest{Group: "g", MemberID: memberID, ClientID: "c", ProtocolType: "consumer",
		Protocols: []Protocol{{Name: "range", Metadata: []byte("m")}}, SessionTimeout: 10 * time.Second,
		RebalanceTimeout: 30 * time.Second, RequireKnownMemberID: true}
}

// join runs the KIP-394 dance and returns the pending answer channel.
func (h *harness) join(memberID string) (string, <-chan JoinResult) {
	h.t.Helper()
	if memberID == "" {
		r := <-h.c.Join(joinReq(""))
		if !errors.Is(r.Err, kerr.MemberIDRequired) || r.MemberID == "" {
			h.t.Fatalf("first join: %+v", r)
		}
		memberID = r.MemberID
	}
	return memberID, h.c.Join(joinReq(memberID))
}

func ready[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	default:
		t.Fatal("no answer yet")
		var zero T
		return zero
	}
}

func waiting[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("answered too early: %+v", v)
	default:
	}
}

// stableGroup builds a stable group of n members and returns their ids and
// the generation: members rejoin, as clients do, until all are in one
// generation; then the leader assigns.
func (h *harness) stableGroup(n int) ([]string, int32) {
	h.t.Helper()
	ids, generation := h.joinedGroup(n)
	assignments := map[string][]byte{}
	for _, id := range ids {
		assignments[id] = []byte("assigned-" + id)
	}
	var syncs []<-chan SyncResult
	for _, id := range ids {
		req := SyncRequest{Group: "g", MemberID: id, Generation: generation}
		if id == h.leader {
			req.Assignments = assignments
		}
		syncs = append(syncs, h.c.Sync(req))
	}
	for i, ch := range syncs {
		if r := ready(h.t, ch); r.Err != nil || string(r.Assignment) != "assigned-"+ids[i] {
			h.t.Fatalf("sync of %s: %+v", ids[i], r)
		}
	}
	return ids, generation
}

// joinedGroup has n members join one generation and returns their ids and
// the generation; the group then awaits the leader's SyncGroup.
func (h *harness) joinedGroup(n int) ([]string, int32) {
	h.t.Helper()
	ids := make([]string, n)
	answers := make([]<-chan JoinResult, n)
	for i := range ids {
		ids[i], answers[i] = h.join("")
	}
	results := make([]*JoinResult, n)
	for round := 0; ; round++ {
		if round == 10 {
			h.t.Fatal("the group did not settle")
		}
		for i, ch := range answers {
			select {
			case r := <-ch:
				results[i], answers[i] = &r, nil
			default:
			}
		}
		settled := true
		for _, r := range results {
			settled = settled && r != nil && r.Err == nil && r.Generation == results[0].Generation
		}
		if settled {
			break
		}
		// The group moved on: members holding an answer learn it from their
		// heartbeat and join again.
		for i := range results {
			if answers[i] == nil {
				results[i], answers[i] = nil, h.c.Join(joinReq(ids[i]))
			}
		}
	}
	h.leader = results[0].LeaderID
	return ids, results[0].Generation
}

func TestJoinSyncAndLeader(t *testing.T) {
	h := newHarness(t, 0)
	a, answerA := h.join("")
	first := ready(t, answerA)
	if first.Err != nil || first.Generation != 1 || first.LeaderID != a || len(first.Members) != 1 {
		t.Fatalf("lone member: %+v", first)
	}
	b, answerB := h.join("")
	waiting(t, answerB) // a must rejoin first
	if err := h.c.Heartbeat("g", a, nil, 1); !errors.Is(err, kerr.RebalanceInProgress) {
		t.Fatalf("heartbeat during the rebalance: %v", err)
	}
	answerA = h.c.Join(joinReq(a))
	ra, rb := ready(t, answerA), ready(t, answerB)
	if ra.Generation != 2 || rb.Generation != 2 || ra.LeaderID != a || len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Fatalf("generation 2: %+v / %+v", ra, rb)
	}
	followerSync := h.c.Sync(SyncRequest{Group: "g", MemberID: b, Generation: 2})
	waiting(t, followerSync)
	leaderSync := h.c.Sync(SyncRequest{Group: "g", MemberID: a, Generation: 2, Assignments: map[string][]byte{a: []byte("p0"), b: []byte("p1")}})
	if r := ready(t, leaderSync); string(r.Assignment) != "p0" {
		t.Fatalf("leader assignment %q", r.Assignment)
	}
	if r := ready(t, followerSync); string(r.Assignment) != "p1" {
		t.Fatalf("follower assignment %q", r.Assignment)
	}
	if d, _ := h.c.Describe("g"); d.State != StateStable || len(d.Members) != 2 {
		t.Fatalf("described %+v", d)
	}
	cases := []struct {
		member     string
		generation int32
		want       error
	}{
		{a, 2, nil},
		{a, 1, kerr.IllegalGeneration},
		{"stranger", 2, kerr.UnknownMemberID},
	}
	for _, tt := range cases {
		if err := h.c.Heartbeat("g", tt.member, nil, tt.generation); !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
			t.Errorf("heartbeat %s gen %d: %v, want %v", tt.member, tt.generation, err, tt.want)
		}
	}
}

func TestSessionExpiryAndRebalanceTimeout(t *testing.T) {
	h := newHarness(t, 0)
	ids, generation := h.stableGroup(3)
	// Two members heartbeat; the third goes silent past its session timeout.
	for i := 0; i < 3; i++ {
		h.clock.Advance(4 * time.Second)
		for _, id := range ids[:2] {
			if err := h.c.Heartbeat("g", id, nil, generation); err != nil {
				t.Fatalf("heartbeat: %v", err)
			}
		}
		h.c.Tick()
	}
	if d, _ := h.c.Describe("g"); d.State != StatePreparingRebalance || len(d.Members) != 2 {
		t.Fatalf("after expiry: %s with %d members", d.State, len(d.Members))
	}
	// Only one of the two rejoins: the other is dropped at the rebalance timeout.
	answer := h.c.Join(joinReq(ids[0]))
	waiting(t, answer)
	h.clock.Advance(31 * time.Second)
	h.c.Tick()
	r := ready(t, answer)
	if r.Err != nil || r.Generation != generation+1 || len(r.Members) != 1 {
		t.Fatalf("after the rebalance timeout: %+v", r)
	}
}

func TestStaticMemberRejoinsWithoutRebalance(t *testing.T) {
	h := newHarness(t, 0)
	instance := "pod-1"
	req := joinReq("")
	req.InstanceID = &instance
	first := <-h.c.Join(req)
	if first.Err != nil {
		t.Fatal(first.Err)
	}
	<-h.c.Sync(SyncRequest{Group: "g", MemberID: first.MemberID, Generation: first.Generation, Assignments: map[string][]byte{first.MemberID: []byte("p0")}})
	// The pod restarts: same instance id, no member id.
	again := ready(t, h.c.Join(req))
	if again.Err != nil || again.Generation != first.Generation || again.MemberID == first.MemberID {
		t.Fatalf("static rejoin: %+v (first %+v)", again, first)
	}
	if err := h.c.Heartbeat("g", first.MemberID, &instance, first.Generation); !errors.Is(err, kerr.FencedInstanceID) {
		t.Fatalf("the old member id: %v", err)
	}
	if r := ready(t, h.c.Sync(SyncRequest{Group: "g", MemberID: again.MemberID, InstanceID: &instance, Generation: again.Generation})); string(r.Assignment) != "p0" {
		t.Fatalf("assignment after static rejoin: %q", r.Assignment)
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	h := newHarness(t, 3*time.Second)
	_, a := h.join("")
	h.clock.Advance(2 * time.Second)
	_, b := h.join("") // extends the delay by 3s from now
	h.clock.Advance(2 * time.Second)
	h.c.Tick()
	waiting(t, a)
	h.clock.Advance(1 * time.Second)
	h.c.Tick()
	ra, rb := ready(t, a), ready(t, b)
	if ra.Generation != 1 || rb.Generation != 1 {
		t.Fatalf("both in the first generation: %+v %+v", ra, rb)
	}
}

func TestCommitRulesAndDurability(t *testing.T) {
	h := newHarness(t, 0)
	ids, generation := h.stableGroup(2)
	commit := func(member string, gen int32, offset int64) error {
		return h.commit(member, gen, offset)
	}
	if err := commit(ids[0], generation, 10); err != nil {
		t.Fatal(err)
	}
	if err := commit(ids[0], generation-1, 11); !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("old generation: %v", err)
	}
	if err := commit("stranger", generation, 11); !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("unknown member: %v", err)
	}
	if err := h.commit("", -1, 99); !errors.Is(err, kerr.UnknownMemberID) {
		t.Fatalf("standalone commit into an active group: %v", err)
	}
	// A new member starts a rebalance; the current generation may still
	// commit at its end, as kafka-go does.
	h.join("")
	if err := commit(ids[1], generation, 12); err != nil {
		t.Fatalf("end-of-generation commit during the rebalance: %v", err)
	}
	if o := h.c.FetchOffset("g", TopicPartition{"orders", 0}); o.Offset != 12 {
		t.Fatalf("committed %d, want 12", o.Offset)
	}
	if o := h.c.FetchOffset("g", TopicPartition{"orders", 1}); o.Offset != -1 {
		t.Fatalf("uncommitted partition: %d, want -1", o.Offset)
	}
	// Reopen: offsets come back from the log.
	if err := h.store.Close(); err != nil {
		t.Fatal(err)
	}
	h.open(0)
	if o := h.c.FetchOffset("g", TopicPartition{"orders", 0}); o.Offset != 12 {
		t.Fatalf("after reopening: %d, want 12", o.Offset)
	}
	// The members of the last written generation are back in it, their
	// sessions starting again (as after a coordinator failover).
	if groups := h.c.List(nil); len(groups) != 1 || groups[0].State != StateStable {
		t.Fatalf("groups after reopening: %+v", groups)
	}
	if err := h.c.Heartbeat("g", ids[0], nil, generation); err != nil {
		t.Fatalf("heartbeat of a restored member: %v", err)
	}
	// Once they are gone, the generation goes on from where it was.
	h.clock.Advance(11 * time.Second)
	h.c.Tick()
	if groups := h.c.List(nil); len(groups) != 1 || groups[0].State != StateEmpty {
		t.Fatalf("groups after the restored members' sessions ended: %+v", groups)
	}
	rejoined := <-h.c.Join(joinReq(""))
	if !errors.Is(rejoined.Err, kerr.MemberIDRequired) {
		t.Fatal(rejoined.Err)
	}
	if r := <-h.c.Join(joinReq(rejoined.MemberID)); r.Generation <= generation {
		t.Fatalf("generation %d after a restart, was %d", r.Generation, generation)
	}
	if _, err := h.c.Leave("g", []LeaveMember{{MemberID: rejoined.MemberID}}); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Delete("g"); err != nil {
		t.Fatal(err)
	}
	h.store.Close()
	h.open(0)
	if o := h.c.FetchOffset("g", TopicPartition{"orders", 0}); o.Offset != -1 {
		t.Fatalf("a deleted group's offset came back: %d", o.Offset)
	}
}

// commit commits offset for orders-0 and waits until it is durable.
func (h *harness) commit(member string, generation int32, offset int64) error {
	finish, err := h.c.CommitOffsets("g", member, nil, generation, []OffsetCommit{{TopicPartition{"orders", 0}, Offset{Offset: offset}}})
	if err != nil {
		return err
	}
	return finish()
}

func TestOffsetsOfEmptyGroupsExpire(t *testing.T) {
	h := newHarness(t, 0)
	ids, generation := h.stableGroup(1)
	if err := h.commit(ids[0], generation, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Leave("g", []LeaveMember{{MemberID: ids[0]}}); err != nil {
		t.Fatal(err)
	}
	// Empty, but not for long enough: kept.
	h.clock.Advance(23 * time.Hour)
	h.c.Tick()
	if o := h.c.FetchOffset("g", TopicPartition{"orders", 0}); o.Offset != 5 {
		t.Fatalf("expired early: %d", o.Offset)
	}
	// A standalone commit restarts the clock.
	if err := h.commit("", -1, 6); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * time.Hour)
	h.c.Tick()
	if o := h.c.FetchOffset("g", TopicPartition{"orders", 0}); o.Offset != 6 {
		t.Fatalf("expired despite a recent commit: %d", o.Offset)
	}
	h.clock.Advance(23 * time.Hour)
	h.c.Tick()
	if o := h.c.FetchOffset("g", TopicPartition{"orders", 0}); o.Offset != -1 {
		t.Fatalf("not expired after the retention: %d", o.Offset)
	}
	if len(h.c.List(nil)) != 0 {
		t.Fatal("the expired group is still listed")
	}
	// And the deletion is durable.
	h.store.Close()
	h.open(0)
	if o := h.c.FetchOffset("g", TopicPartition{"orders", 0}); o.Offset != -1 {
		t.Fatalf("expired offset came back after reopening: %d", o.Offset)
	}
}

// The offsets log is compacted by the log cleaner, as a topic of
// cleanup.policy=compact: what it keeps is what a coordinator loads.
func TestCompactionKeepsTheLiveOffsets(t *testing.T) {
	dir := t.TempDir()
	cfg := storage.DefaultConfig()
	cfg.SegmentBytes = 4096
	cfg.Cleanup = storage.CleanupCompact
	opts := storage.Options{Clock: clock.NewManual(start), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Config: cfg}
	store, err := OpenOffsetStore(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCoordinator(opts.Clock, 0, 24*time.Hour, store)
	for i := int64(0); i < 500; i++ {
		finish, err := c.CommitOffsets("g", "", nil, -1, []OffsetCommit{{TopicPartition{"orders", int32(i % 3)}, Offset{Offset: i}}})
		if err == nil {
			err = finish()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	before := store.Log().Size()
	if _, err := store.Log().Clean(); err != nil {
		t.Fatal(err)
	}
	if after := store.Log().Size(); after > before/4 {
		t.Fatalf("log is %d bytes after compaction, was %d", after, before)
	}
	store.Close()
	store, err = OpenOffsetStore(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	c = NewCoordinator(opts.Clock, 0, 24*time.Hour, store)
	for p, want := range []int64{498, 499, 497} {
		if o := c.FetchOffset("g", TopicPartition{"orders", int32(p)}); o.Offset != want {
			t.Fatalf("partition %d: %d after compaction and reopening, want %d", p, o.Offset, want)
		}
	}
}

func TestLeaderLeavesAndAnotherLeads(t *testing.T) {
	h := newHarness(t, 0)
	ids, generation := h.stableGroup(3)
	d, _ := h.c.Describe("g")
	if len(d.Members) != 3 {
		t.Fatalf("%d members", len(d.Members))
	}
	leader := h.leader
	if _, err := h.c.Leave("g", []LeaveMember{{MemberID: leader}}); err != nil {
		t.Fatal(err)
	}
	var answers []<-chan JoinResult
	for _, id := range ids {
		if id != leader {
			answers = append(answers, h.c.Join(joinReq(id)))
		}
	}
	var leaders []string
	for _, ch := range answers {
		r := ready(t, ch)
		if r.Err != nil || r.Generation <= generation {
			t.Fatalf("after the leader left: %+v", r)
		}
		if len(r.Members) > 0 {
			leaders = append(leaders, r.MemberID)
			if len(r.Members) != 2 {
				t.Fatalf("the new leader sees %d members", len(r.Members))
			}
		}
		if r.LeaderID == leader {
			t.Fatal("the departed member is still the leader")
		}
	}
	if len(leaders) != 1 {
		t.Fatalf("%d members got the member list, want exactly one leader", len(leaders))
	}
}
