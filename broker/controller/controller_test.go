package controller

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/metadata"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// cluster3 is brokers 1-3 in service and a topic of 3 partitions, RF 3,
// led by 1, 2 and 3, and one of RF 1 on broker 3.
func cluster3(t *testing.T) *metadata.Image {
	t.Helper()
	id := metadata.TopicID{15: 1}
	single := metadata.TopicID{15: 2}
	var records []metadata.Record
	for b := int32(1); b <= 3; b++ {
		records = append(records,
			metadata.Record{RegisterBroker: &metadata.RegisterBrokerRecord{BrokerID: b, Epoch: 10}},
			metadata.Record{UnfenceBroker: &metadata.UnfenceBrokerRecord{BrokerID: b, Epoch: 10}})
	}
	records = append(records, metadata.Record{Topic: &metadata.TopicRecord{Name: "orders", ID: id}})
	for i, replicas := range [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}} {
		records = append(records, metadata.Record{Partition: &metadata.PartitionRecord{TopicID: id, Partition: int32(i), Replicas: replicas, ISR: replicas, Leader: replicas[0]}})
	}
	records = append(records, metadata.Record{Topic: &metadata.TopicRecord{Name: "single", ID: single}},
		metadata.Record{Partition: &metadata.PartitionRecord{TopicID: single, Partition: 0, Replicas: []int32{3}, ISR: []int32{3}, Leader: 3}})
	image, err := metadata.Empty().Apply(records)
	if err != nil {
		t.Fatal(err)
	}
	return image
}

func apply(t *testing.T, image *metadata.Image, records []metadata.Record) *metadata.Image {
	t.Helper()
	next, err := image.Apply(records)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func partition(image *metadata.Image, topic string, i int) metadata.Partition {
	t, _ := image.Topic(topic)
	return t.Partitions[i]
}

func TestFencingAndElection(t *testing.T) {
	image := cluster3(t)
	c := New(9 * time.Second)
	if c.Tick(image, t0) != nil {
		t.Fatal("a controller that does not lead decided something")
	}
	c.Lead(t0)
	// Inside the grace after an election nothing changes, heard or not.
	if records := c.Tick(image, t0.Add(5*time.Second)); records != nil {
		t.Fatalf("during the grace: %+v", records)
	}
	beat := func(at time.Duration, brokers ...int32) {
		for _, b := range brokers {
			c.Heartbeat(b, 10, t0.Add(at))
		}
	}
	beat(6*time.Second, 1, 2, 3)
	beat(12*time.Second, 1, 2) // broker 3 goes silent after 6 s
	if records := c.Tick(image, t0.Add(14*time.Second)); records != nil {
		t.Fatalf("broker 3 silent for 8 s of 9: %+v", records)
	}
	image = apply(t, image, c.Tick(image, t0.Add(15500*time.Millisecond)))
	if b, _ := image.Broker(3); !b.Fenced {
		t.Fatal("broker 3, silent for 9.5 s, is not fenced")
	}
	// Partition 2 was led by 3: the next in its preferred order that is
	// in sync takes over, epoch + 1; 3 leaves every ISR.
	if p := partition(image, "orders", 2); p.Leader != 1 || p.LeaderEpoch != 1 || !slices.Equal(p.ISR, []int32{1, 2}) {
		t.Fatalf("partition 2 after broker 3 was fenced: %+v", p)
	}
	if p := partition(image, "orders", 0); p.Leader != 1 || p.LeaderEpoch != 0 || !slices.Equal(p.ISR, []int32{1, 2}) {
		t.Fatalf("partition 0 (led by 1): %+v, want the same leader and epoch, ISR without 3", p)
	}
	// One replica only: no leader, but the ISR keeps its last member.
	if p := partition(image, "single", 0); p.Leader != -1 || !slices.Equal(p.ISR, []int32{3}) {
		t.Fatalf("the RF 1 partition of broker 3: %+v, want leader -1 and ISR [3]", p)
	}
	if records := c.Tick(image, t0.Add(16*time.Second)); records != nil {
		t.Fatalf("nothing more to change: %+v", records)
	}

	// Broker 3 comes back with its epoch: unfenced, and the partition with
	// no leader gets it back. (It rejoins the other ISRs by catching up,
	// which the leaders report, not by heartbeats.)
	beat(17*time.Second, 1, 2, 3)
	beat(17200*time.Millisecond, 3)
	image = apply(t, image, c.Tick(image, t0.Add(17500*time.Millisecond)))
	if b, _ := image.Broker(3); b.Fenced {
		t.Fatal("broker 3 heartbeats again and stays fenced")
	}
	if p := partition(image, "single", 0); p.Leader != 3 || p.LeaderEpoch != 2 {
		t.Fatalf("the RF 1 partition: %+v, want broker 3 leading at epoch 2", p)
	}
	if p := partition(image, "orders", 2); p.Leader != 1 || !slices.Equal(p.ISR, []int32{1, 2}) {
		t.Fatalf("partition 2: %+v, want unchanged until broker 3 catches up", p)
	}

	// A heartbeat of an old epoch (a zombie of a broker that re-registered
	// since) does not keep the new one alive.
	image = apply(t, image, []metadata.Record{{RegisterBroker: &metadata.RegisterBrokerRecord{BrokerID: 2, Epoch: 11}},
		{UnfenceBroker: &metadata.UnfenceBrokerRecord{BrokerID: 2, Epoch: 11}}})
	beat(20*time.Second, 1, 3)
	c.Heartbeat(2, 10, t0.Add(20*time.Second))
	image = apply(t, image, c.Tick(image, t0.Add(30*time.Second)))
	if b, _ := image.Broker(2); !b.Fenced {
		t.Fatal("broker 2's new epoch was kept alive by heartbeats of its old one")
	}
}

func TestNewControllerGivesEveryBrokerItsSession(t *testing.T) {
	image := cluster3(t)
	c := New(9 * time.Second)
	c.Lead(t0)
	c.Heartbeat(1, 10, t0)
	c.Resign()
	if c.Leading() || c.Tick(image, t0.Add(time.Hour)) != nil {
		t.Fatal("a resigned controller decides")
	}
	// Leading again an hour later: nobody is fenced for what happened
	// before, until a whole session passes without a heartbeat.
	c.Lead(t0.Add(time.Hour))
	if records := c.Tick(image, t0.Add(time.Hour+8*time.Second)); records != nil {
		t.Fatalf("within the new session: %+v", records)
	}
	records := c.Tick(image, t0.Add(time.Hour+10*time.Second))
	if len(records) < 3 {
		t.Fatalf("after a silent session every broker is fenced: %+v", records)
	}
}

// TestFencedBrokersStayOutUntilTheyHeartbeat: a broker that fenced itself
// to stop, though it heartbeated a moment before, is not put back; one that
// registers (fenced, as every broker starts) is put in service by its
// first heartbeat after that.
func TestFencedBrokersStayOutUntilTheyHeartbeat(t *testing.T) {
	image := cluster3(t)
	c := New(9 * time.Second)
	c.Lead(t0)
	for _, b := range []int32{1, 2, 3} {
		c.Heartbeat(b, 10, t0.Add(time.Second))
	}
	// Broker 2 was fenced once and put back (it was seen fenced then)...
	image = apply(t, image, []metadata.Record{{FenceBroker: &metadata.FenceBrokerRecord{BrokerID: 2, Epoch: 10}}})
	c.Tick(image, t0.Add(1100*time.Millisecond))
	c.Heartbeat(2, 10, t0.Add(1200*time.Millisecond))
	c.Heartbeat(2, 10, t0.Add(1250*time.Millisecond))
	image = apply(t, image, c.Tick(image, t0.Add(1300*time.Millisecond)))
	if b, _ := image.Broker(2); b.Fenced {
		t.Fatal("broker 2 heartbeating after its fence was not put back")
	}
	c.Tick(image, t0.Add(1350*time.Millisecond))
	// ...then it stops cleanly: it fences itself again, at the same epoch.
	image = apply(t, image, []metadata.Record{{FenceBroker: &metadata.FenceBrokerRecord{BrokerID: 2, Epoch: 10}}})
	c.Tick(image, t0.Add(1400*time.Millisecond))
	c.Heartbeat(2, 10, t0.Add(1450*time.Millisecond)) // the one that was on its way
	image = apply(t, image, c.Tick(image, t0.Add(1500*time.Millisecond)))
	if b, _ := image.Broker(2); !b.Fenced {
		t.Fatal("a broker that fenced itself to stop was put back by its last heartbeat")
	}
	if p := partition(image, "orders", 1); p.Leader == 2 {
		t.Fatalf("partition 1 still led by the stopped broker: %+v", p)
	}
	// It restarts: registered (fenced) with a new epoch; its first
	// heartbeat puts it back.
	image = apply(t, image, []metadata.Record{{RegisterBroker: &metadata.RegisterBrokerRecord{BrokerID: 2, Epoch: 12}}})
	if records := c.Tick(image, t0.Add(2*time.Second)); len(records) != 0 {
		t.Fatalf("before its first heartbeat: %+v", records)
	}
	c.Heartbeat(2, 12, t0.Add(2500*time.Millisecond))
	c.Heartbeat(2, 12, t0.Add(2700*time.Millisecond))
	image = apply(t, image, c.Tick(image, t0.Add(3*time.Second)))
	if b, _ := image.Broker(2); b.Fenced {
		t.Fatal("the restarted broker's heartbeat did not put it in service")
	}
}

// TestStaleDecisionsAndUncleanElection: a controller's change decided on
// an older state of a partition is refused by the image, and a topic with
// unclean.leader.election.enable gets a leader from outside the ISR when
// no in-sync replica is left.
func TestStaleDecisionsAndUncleanElection(t *testing.T) {
	image := cluster3(t)
	c := New(9 * time.Second)
	c.Lead(t0)
	for _, b := range []int32{1, 2} {
		c.Heartbeat(b, 10, t0.Add(9*time.Second))
	}
	records := c.Tick(image, t0.Add(10*time.Second)) // broker 3 is fenced
	// Meanwhile the leader of orders-0 took 3 out of its ISR itself.
	one := int32(1)
	leaderEpoch, partitionEpoch := int32(0), int32(0)
	image = apply(t, image, []metadata.Record{{PartitionChange: &metadata.PartitionChangeRecord{TopicID: metadata.TopicID{15: 1}, Partition: 0,
		ISR: []int32{1, 2}, ExpectLeaderEpoch: &leaderEpoch, ExpectPartitionEpoch: &partitionEpoch, FromLeader: &one}}})
	var stale *metadata.StaleChangeError
	if _, err := image.Apply(records); !errors.As(err, &stale) || stale.Code != metadata.StalePartitionEpoch {
		t.Fatalf("a decision on the older state: %v, want a stale partition epoch", err)
	}
	// The next tick decides on the new state, and its change applies.
	image = apply(t, image, c.Tick(image, t0.Add(10*time.Second)))
	if p := partition(image, "single", 0); p.Leader != -1 {
		t.Fatalf("single-0 without unclean election: leader %d, want none", p.Leader)
	}

	// The ISR's only member is gone; with unclean election on, another
	// replica in service leads, alone in the ISR.
	p := metadata.Partition{Replicas: []int32{1, 2, 3}, ISR: []int32{1}, Leader: -1}
	inService := map[int32]bool{2: true, 3: true}
	if change, ok := elect(p, inService, false); ok {
		t.Fatalf("clean election without an in-sync replica: %+v", change)
	}
	if change, ok := elect(p, inService, true); !ok || change.Leader == nil || *change.Leader != 2 || !slices.Equal(change.ISR, []int32{2}) {
		t.Fatalf("unclean election: %+v %v, want broker 2 alone in the ISR", change, ok)
	}
	if _, ok := elect(p, map[int32]bool{}, true); ok {
		t.Fatal("unclean election with no replica in service changed something")
	}
}

// TestLostConnectionFencesBeforeTheSession: a broker whose heartbeat
// connection closed is fenced once the grace passes without a heartbeat,
// long before its session would end; one that heartbeats again in time
// (a new connection) stays.
func TestLostConnectionFencesBeforeTheSession(t *testing.T) {
	image := cluster3(t)
	c := New(9 * time.Second)
	c.Lead(t0)
	now := t0.Add(10 * time.Second)
	for _, b := range []int32{1, 2, 3} {
		c.HeartbeatOn(b, 10, uint64(b), now)
	}
	c.Lost(2, 10, 2, now, time.Second)
	c.HeartbeatOn(3, 10, 30, now.Add(500*time.Millisecond))      // back on a new connection
	c.Lost(3, 10, 3, now.Add(600*time.Millisecond), time.Second) // the old one's close, noticed late: no news
	if records := c.Tick(image, now.Add(900*time.Millisecond)); records != nil {
		t.Fatalf("within the grace: %+v", records)
	}
	records := c.Tick(image, now.Add(1100*time.Millisecond))
	if len(records) == 0 || records[0].FenceBroker == nil || records[0].FenceBroker.BrokerID != 2 {
		t.Fatalf("after the grace: %+v, want broker 2 fenced first", records)
	}
	for _, r := range records {
		if r.FenceBroker != nil && r.FenceBroker.BrokerID != 2 {
			t.Fatalf("broker %d fenced too: it heartbeat again", r.FenceBroker.BrokerID)
		}
	}
	c.Lost(1, 9, 1, now, time.Second) // an older epoch's connection: no news
	if records := c.Tick(apply(t, image, records), now.Add(2*time.Second)); slices.ContainsFunc(records, func(r metadata.Record) bool { return r.FenceBroker != nil && r.FenceBroker.BrokerID == 1 }) {
		t.Fatal("a lost connection of an old epoch fenced the broker")
	}
}

// TestReassignmentKeepsAnInSyncCopy: a cancel that would drop the only
// in-sync replica (one being added) is refused, and a new target keeps the
// replicas being added, as removing, until it is in sync.
func TestReassignmentKeepsAnInSyncCopy(t *testing.T) {
	image := cluster3(t)
	image = apply(t, image, []metadata.Record{
		{RegisterBroker: &metadata.RegisterBrokerRecord{BrokerID: 4, Epoch: 10}},
		{UnfenceBroker: &metadata.UnfenceBrokerRecord{BrokerID: 4, Epoch: 10}},
	})
	single := metadata.TopicID{15: 2} // one replica, on broker 3
	start, ok, err := Reassign(image, single, 0, []int32{4, 1})
	if err != nil || !ok {
		t.Fatalf("reassign: %v %v", ok, err)
	}
	image = apply(t, image, []metadata.Record{start})
	p := partition(image, "single", 0)
	if !slices.Equal(p.Replicas, []int32{4, 1, 3}) || !slices.Equal(p.Adding, []int32{4, 1}) || !slices.Equal(p.Removing, []int32{3}) {
		t.Fatalf("started: %+v", p)
	}
	// Broker 4 catches up; then broker 3, the old replica, is fenced.
	four := int32(4)
	image = apply(t, image, []metadata.Record{{PartitionChange: &metadata.PartitionChangeRecord{TopicID: single, ISR: []int32{3, 4}}}})
	image = apply(t, image, []metadata.Record{{FenceBroker: &metadata.FenceBrokerRecord{BrokerID: 3, Epoch: 10}},
		{PartitionChange: &metadata.PartitionChangeRecord{TopicID: single, ISR: []int32{4}, Leader: &four}}})
	if _, _, err := Reassign(image, single, 0, nil); !errors.Is(err, kerr.InvalidReplicaAssignment) {
		t.Fatalf("cancel that would drop the only in-sync replica: %v", err)
	}
	replaced, ok, err := Reassign(image, single, 0, []int32{1, 2})
	if err != nil || !ok {
		t.Fatalf("replace: %v %v", ok, err)
	}
	image = apply(t, image, []metadata.Record{replaced})
	p = partition(image, "single", 0)
	if !slices.Contains(p.Replicas, 4) || !slices.Contains(p.Removing, 4) || !slices.Equal(p.ISR, []int32{4}) || p.Leader != 4 {
		t.Fatalf("replaced: %+v; broker 4 must stay (removing) and lead until [1 2] is in sync", p)
	}
	if done, ok := finishReassignment(p, map[int32]bool{1: true, 2: true, 4: true}); ok {
		t.Fatalf("finished before the target was in sync: %+v", done)
	}
	p.ISR = []int32{4, 1, 2}
	done, ok := finishReassignment(p, map[int32]bool{1: true, 2: true, 4: true})
	if !ok || !slices.Equal(done.Reassignment.Replicas, []int32{1, 2}) || done.Leader == nil || *done.Leader != 1 || !slices.Equal(done.ISR, []int32{1, 2}) {
		t.Fatalf("finish: %+v %v", done, ok)
	}
}
