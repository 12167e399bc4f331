package quorum

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kqstack/kqstack/broker/metadata"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func topicBatch(name string, id byte) []metadata.Record {
	topicID := metadata.TopicID{15: id}
	return []metadata.Record{
		{Topic: &metadata.TopicRecord{Name: name, ID: topicID}},
		{Partition: &metadata.PartitionRecord{TopicID: topicID, Partition: 0, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}},
	}
}

// applied records what OnApply saw.
type applied struct {
	mu      sync.Mutex
	batches int
	last    *metadata.Image
}

func (a *applied) hook(image *metadata.Image, _ []metadata.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches++
	a.last = image
}

func TestOneVoterQuorum(t *testing.T) {
	dir := t.TempDir()
	var seen applied
	open := func() *Quorum {
		t.Helper()
		began := time.Now()
		q, err := Open(Config{NodeID: 1, Dir: dir, OnApply: seen.hook})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.WaitReady(testContext(t)); err != nil {
			t.Fatal(err)
		}
		t.Logf("one voter open and ready in %v", time.Since(began))
		return q
	}
	q := open()
	if !q.IsLeader() {
		t.Fatal("a lone voter does not lead")
	}
	if _, err := q.Propose(testContext(t), metadata.Record{Cluster: &metadata.ClusterRecord{ClusterID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	image, err := q.Propose(testContext(t), topicBatch("orders", 1)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := image.Topic("orders"); !ok || q.Image() != image {
		t.Fatal("the proposed topic is not in the image")
	}
	var exists *metadata.TopicExistsError
	if _, err := q.Propose(testContext(t), topicBatch("orders", 2)...); !errors.As(err, &exists) {
		t.Fatalf("a second orders: %v, want a TopicExistsError", err)
	}
	if seen.last != image {
		t.Fatal("OnApply did not see the newest image")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopened, the log is applied again: the same image.
	q = open()
	if _, ok := q.Image().Topic("orders"); !ok || q.Image().ClusterID != "c1" {
		t.Fatalf("after a restart the image lost the topic or the cluster id")
	}
	// A snapshot, then more: reopened from the snapshot and the log after it.
	if err := q.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Propose(testContext(t), topicBatch("payments", 3)...); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q = open()
	defer q.Close()
	for _, name := range []string{"orders", "payments"} {
		if _, ok := q.Image().Topic(name); !ok {
			t.Fatalf("after snapshot and restart: no topic %s", name)
		}
	}
}

// cluster3 is three voters on loopback.
type cluster3 struct {
	t      *testing.T
	dirs   []string
	voters []Voter
	nodes  []*Quorum
}

func newCluster3(t *testing.T) *cluster3 {
	c := &cluster3{t: t}
	var listeners []net.Listener
	for i := range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, ln)
		c.voters = append(c.voters, Voter{ID: int32(i + 1), Addr: ln.Addr().String()})
		c.dirs = append(c.dirs, t.TempDir())
	}
	c.nodes = make([]*Quorum, 3)
	for i := range 3 {
		c.start(i, listeners[i])
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n != nil {
				_ = n.Close()
			}
		}
	})
	return c
}

func (c *cluster3) start(i int, ln net.Listener) {
	c.t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", c.voters[i].Addr); err != nil {
			c.t.Fatal(err)
		}
	}
	q, err := Open(Config{NodeID: int32(i + 1), Dir: c.dirs[i], Voters: c.voters, Listener: ln})
	if err != nil {
		c.t.Fatal(err)
	}
	c.nodes[i] = q
}

func (c *cluster3) leader() int {
	c.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for i, n := range c.nodes {
			if n != nil && n.IsLeader() {
				return i
			}
		}
	}
	c.t.Fatal("no leader in 20 s")
	return -1
}

// waitTopic waits until node i's image has the topic.
func (c *cluster3) waitTopic(i int, name string) {
	c.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, ok := c.nodes[i].Image().Topic(name); ok {
			return
		}
	}
	c.t.Fatalf("node %d never applied topic %s", i+1, name)
}

func TestThreeVotersReplicateAndSurviveTheLeader(t *testing.T) {
	c := newCluster3(t)
	leader := c.leader()
	follower := (leader + 1) % 3
	// A proposal on a follower is forwarded to the leader, and answered
	// once the follower has applied it: it reads its own change.
	image, err := c.nodes[follower].Propose(testContext(t), topicBatch("forwarded", 9)...)
	if err != nil {
		t.Fatalf("a proposal on a follower: %v", err)
	}
	if _, ok := image.Topic("forwarded"); !ok {
		t.Fatal("the follower's answer does not have its own change")
	}
	var exists *metadata.TopicExistsError
	if _, err := c.nodes[follower].Propose(testContext(t), topicBatch("forwarded", 8)...); !errors.As(err, &exists) || exists.Name != "forwarded" {
		t.Fatalf("a forwarded proposal the image refuses: %v, want a TopicExistsError", err)
	}
	if _, err := c.nodes[leader].Propose(testContext(t), topicBatch("orders", 1)...); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.waitTopic(i, "orders")
	}

	// The leader stops; the other two elect one and go on.
	began := time.Now()
	if err := c.nodes[leader].Close(); err != nil {
		t.Fatal(err)
	}
	c.nodes[leader] = nil
	next := c.leader()
	t.Logf("new leader node %d elected %v after the old one stopped", next+1, time.Since(began))
	for i := range 5 {
		if _, err := c.nodes[next].Propose(testContext(t), topicBatch(fmt.Sprintf("after-%d", i), byte(10+i))...); err != nil {
			t.Fatal(err)
		}
	}
	// The old leader comes back and catches up.
	c.start(leader, nil)
	c.waitTopic(leader, "after-4")
	if err := c.nodes[leader].WaitReady(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := len(c.nodes[leader].Image().Topics()), 7; got != want {
		t.Fatalf("the restarted node has %d topics, want %d", got, want)
	}
}

// TestControllerPortSurvivesGarbage: junk on the controller port, as raft
// bytes or as a forwarded entry, closes that connection; the quorum goes on.
func TestControllerPortSurvivesGarbage(t *testing.T) {
	c := newCluster3(t)
	leader := c.leader()
	for _, junk := range [][]byte{
		{forwardMagic, 0xff, 0xff, 0xff, 0xff},               // an entry of 4 GiB announced
		append([]byte{forwardMagic, 0, 0, 0, 5}, "nope!"...), // not an entry
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9},                       // not raft
	} {
		conn, err := net.Dial("tcp", c.voters[leader].Addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write(junk)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Read(make([]byte, 64))
		conn.Close()
	}
	follower := (leader + 1) % 3
	if _, err := c.nodes[follower].Propose(testContext(t), topicBatch("after-junk", 3)...); err != nil {
		t.Fatalf("a proposal after the junk: %v", err)
	}
}

// TestNonVotingMemberJoins: a node not among the voters joins as a
// non-voting member: it gets the whole log, applies it, and its proposals
// are forwarded like a follower's.
func TestNonVotingMemberJoins(t *testing.T) {
	c := newCluster3(t)
	leader := c.leader()
	if _, err := c.nodes[leader].Propose(testContext(t), topicBatch("before-join", 1)...); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	observer, err := Open(Config{NodeID: 4, Dir: t.TempDir(), Voters: c.voters, Listener: ln, Advertise: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	if err := observer.WaitReady(testContext(t)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ok := observer.Image().Topic("before-join"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the non-voting member never applied the log")
		}
	}
	image, err := observer.Propose(testContext(t), topicBatch("from-observer", 2)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := image.Topic("from-observer"); !ok {
		t.Fatal("the non-voter's answer lacks its own change")
	}
	c.waitTopic(leader, "from-observer")
	if observer.IsLeader() {
		t.Fatal("a non-voting member leads")
	}
}

// TestForwardedStaleChangeKeepsItsType: a partition change the image
// refuses as stale comes back from the leader as a *StaleChangeError, with
// its code, on a member that forwarded it too.
func TestForwardedStaleChangeKeepsItsType(t *testing.T) {
	c := newCluster3(t)
	leader := c.leader()
	follower := (leader + 1) % 3
	if _, err := c.nodes[leader].Propose(testContext(t), topicBatch("orders", 1)...); err != nil {
		t.Fatal(err)
	}
	old := int32(7)
	change := metadata.Record{PartitionChange: &metadata.PartitionChangeRecord{TopicID: metadata.TopicID{15: 1}, ISR: []int32{1}, ExpectPartitionEpoch: &old}}
	for _, i := range []int{leader, follower} {
		var stale *metadata.StaleChangeError
		if _, err := c.nodes[i].Propose(testContext(t), change); !errors.As(err, &stale) || stale.Code != metadata.StalePartitionEpoch {
			t.Fatalf("member %d: %v, want a stale partition epoch", i, err)
		}
	}
}

// TestMemberWithAnUncommittedTailGetsReady: a leader whose followers went
// away appends entries it can never commit; when the cluster comes back
// and the other two elect a leader, that leader cuts the tail, and the old
// leader's member is ready without waiting for the log to grow past it.
func TestMemberWithAnUncommittedTailGetsReady(t *testing.T) {
	c := newCluster3(t)
	old := c.leader()
	if _, err := c.nodes[old].Propose(testContext(t), topicBatch("orders", 1)...); err != nil {
		t.Fatal(err)
	}
	committed := c.nodes[old].raft.CommitIndex()
	for i := range 3 {
		if i != old {
			if err := c.nodes[i].Close(); err != nil {
				t.Fatal(err)
			}
			c.nodes[i] = nil
		}
	}
	// Appended before the leader notices it is alone; never committed.
	for i := range 5 {
		data, err := metadata.EncodeBatch(topicBatch(fmt.Sprintf("uncommitted-%d", i), byte(20+i)))
		if err != nil {
			t.Fatal(err)
		}
		c.nodes[old].raft.Apply(data, 200*time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Second); c.nodes[old].logs.lastIndex() < committed+5; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the lone leader appended up to %d, want %d: no tail to cut", c.nodes[old].logs.lastIndex(), committed+5)
		}
	}
	if err := c.nodes[old].Close(); err != nil {
		t.Fatal(err)
	}
	c.nodes[old] = nil

	// The other two elect a leader among themselves, then the old one
	// comes back with its tail.
	for i := range 3 {
		if i != old {
			c.start(i, nil)
		}
	}
	next := c.leader()
	if err := c.nodes[next].WaitReady(testContext(t)); err != nil {
		t.Fatal(err)
	}
	c.start(old, nil)
	ready, cancel := context.WithTimeout(testContext(t), 10*time.Second)
	defer cancel()
	if err := c.nodes[old].WaitReady(ready); err != nil {
		t.Fatalf("the member whose tail was cut: %v", err)
	}
	if _, ok := c.nodes[old].Image().Topic("orders"); !ok {
		t.Fatal("the committed topic is missing")
	}
	for _, topic := range c.nodes[old].Image().Topics() {
		if strings.HasPrefix(topic.Name, "uncommitted-") {
			t.Fatalf("an uncommitted entry was applied: %s", topic.Name)
		}
	}
}
