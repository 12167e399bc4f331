// Package controller is the metadata quorum leader's decision maker: from
// the image and the brokers' heartbeats it decides which brokers are in
// service and who leads each partition, and returns the metadata records
// that say so. It does no I/O and reads no clock: Tick is given the time,
// so tests drive it step by step.
//
// The rules, as Kafka's controller applies them:
//   - A broker is fenced when no heartbeat came from it for the session
//     timeout. It leaves the ISR of every partition (unless it is the last
//     member: the ISR never empties, so the last replica known to be in
//     sync stays known), and each partition it led gets a new leader from
//     the rest of its ISR, with leader epoch + 1; with none left, the
//     partition has no leader (-1) until one comes back, unless the topic
//     has unclean.leader.election.enable=true: then any replica in service
//     leads, alone in the ISR.
//   - A fenced broker that heartbeats again, with its registered epoch, is
//     unfenced once two heartbeats came after the fence was seen (one could
//     have been on its way when a broker fenced itself to stop);
//     partitions without a leader whose ISR holds it get it back.
//   - A broker whose heartbeat connection closed from its side (its
//     process died: the kernel closes its sockets) is fenced once a short
//     grace passes without a heartbeat on a new connection, not at the end
//     of its session: both signals count.
//   - A new controller first treats every broker as heard from at the
//     moment it took over, so no broker is fenced for the silence of an
//     election.
package controller

import (
	"slices"
	"time"

	"github.com/kqstack/kqstack/broker/metadata"
)

// Controller holds what the leader knows that the log does not: when each
// broker was last heard from. Owned by one goroutine (the cluster's
// maintenance loop and the heartbeat handler take turns through Cluster's
// own lock), so it takes no lock itself.
type Controller struct {
	sessionTimeout time.Duration
	lastHeard      map[int32]heard
	// fencedSeen is when this controller first saw each broker fenced (at
	// that epoch): only a heartbeat after it puts the broker back, so a
	// broker that fenced itself to stop, or registered fenced, stays out
	// until it says it is alive.
	fencedSeen map[int32]heard
	since      time.Time // when this node became controller; zero: it is not
	// rebalanceEvery is how often preferred leaders are restored (0: never);
	// lastRebalance when that was last done.
	rebalanceEvery time.Duration
	lastRebalance  time.Time
}

type heard struct {
	epoch int64
	at    time.Time
	// session is the heartbeat connection it came on (0: none).
	session uint64
	// beats counts heartbeats of this epoch since (fencedSeen only): two
	// are needed to come back, so one that was on its way when a broker
	// fenced itself to stop cannot undo the stop.
	beats int
}

// New returns a controller that fences brokers silent for sessionTimeout.
func New(sessionTimeout time.Duration) *Controller {
	return &Controller{sessionTimeout: sessionTimeout, lastHeard: map[int32]heard{}, fencedSeen: map[int32]heard{}}
}

// RebalanceLeaders makes Tick give partitions their preferred leader back
// every interval (auto.leader.rebalance.enable with
// leader.imbalance.check.interval.seconds); 0 turns it off.
func (c *Controller) RebalanceLeaders(interval time.Duration) { c.rebalanceEvery = interval }

// Lead tells the controller this node became the quorum leader at now:
// every broker's session starts again.
func (c *Controller) Lead(now time.Time) {
	c.since, c.lastRebalance = now, now
	c.lastHeard = map[int32]heard{}
	c.fencedSeen = map[int32]heard{}
}

// Resign tells it this node no longer leads.
func (c *Controller) Resign() { c.since = time.Time{} }

// Leading reports whether Lead was called since the last Resign.
func (c *Controller) Leading() bool { return !c.since.IsZero() }

// Heartbeat records a broker's heartbeat.
func (c *Controller) Heartbeat(brokerID int32, epoch int64, now time.Time) {
	c.HeartbeatOn(brokerID, epoch, 0, now)
}

// HeartbeatOn records a broker's heartbeat that came on heartbeat
// connection session.
func (c *Controller) HeartbeatOn(brokerID int32, epoch int64, session uint64, now time.Time) {
	c.lastHeard[brokerID] = heard{epoch: epoch, at: now, session: session}
	if seen, ok := c.fencedSeen[brokerID]; ok && seen.epoch == epoch && now.After(seen.at) {
		seen.beats++
		c.fencedSeen[brokerID] = seen
	}
}

// Lost records that a broker's heartbeat connection session closed from
// its side: unless it heartbeats again within grace (on a new
// connection), the next Tick after that fences it, without waiting out
// its session. A connection the broker heartbeat on after is no news.
func (c *Controller) Lost(brokerID int32, epoch int64, session uint64, now time.Time, grace time.Duration) {
	if last, ok := c.lastHeard[brokerID]; ok && last.epoch == epoch && last.session == session {
		expires := now.Add(grace).Add(-c.sessionTimeout)
		if expires.Before(last.at) {
			c.lastHeard[brokerID] = heard{epoch: epoch, at: expires, session: session}
		}
	}
}

// Tick returns the records that bring the image in line with what the
// controller has heard by now; nil when nothing is to change.
func (c *Controller) Tick(image *metadata.Image, now time.Time) []metadata.Record {
	if !c.Leading() {
		return nil
	}
	var records []metadata.Record
	inService := map[int32]bool{}
	for _, b := range image.Brokers() {
		last, ok := c.lastHeard[b.ID]
		alive := ok && last.epoch == b.Epoch && now.Sub(last.at) < c.sessionTimeout
		if !ok && now.Sub(c.since) < c.sessionTimeout {
			alive = !b.Fenced // not heard yet: as the log says, until the grace ends
		}
		if !b.Fenced {
			delete(c.fencedSeen, b.ID) // fenced again later: a new moment
		} else {
			seen, known := c.fencedSeen[b.ID]
			if !known || seen.epoch != b.Epoch {
				seen = heard{epoch: b.Epoch, at: now}
				c.fencedSeen[b.ID] = seen
			}
			alive = alive && ok && seen.beats >= 2
		}
		switch {
		case alive && b.Fenced:
			records = append(records, metadata.Record{UnfenceBroker: &metadata.UnfenceBrokerRecord{BrokerID: b.ID, Epoch: b.Epoch}})
		case !alive && !b.Fenced:
			records = append(records, metadata.Record{FenceBroker: &metadata.FenceBrokerRecord{BrokerID: b.ID, Epoch: b.Epoch}})
		}
		inService[b.ID] = alive
	}
	for _, t := range image.Topics() {
		unclean := t.Configs["unclean.leader.election.enable"] == "true"
		for i, p := range t.Partitions {
			change, ok := elect(p, inService, unclean)
			if !ok {
				change, ok = finishReassignment(p, inService)
			}
			if ok {
				change.TopicID, change.Partition = t.ID, int32(i)
				records = append(records, metadata.Record{PartitionChange: &change})
			}
		}
	}
	// Preferred leaders come back only when nothing else is to change: a
	// tick that fences or elects leaves them to the next one.
	if len(records) == 0 && c.rebalanceEvery > 0 && now.Sub(c.lastRebalance) >= c.rebalanceEvery {
		c.lastRebalance = now
		records = preferredLeaders(image, inService)
	}
	return records
}

// elect decides a partition's ISR and leader given the brokers in service.
// The change names the epochs it was decided at: applied after another
// change of the partition, it is refused, and the next tick decides again.
func elect(p metadata.Partition, inService map[int32]bool, unclean bool) (metadata.PartitionChangeRecord, bool) {
	var isr []int32
	for _, r := range p.ISR {
		if inService[r] {
			isr = append(isr, r)
		}
	}
	if len(isr) == 0 && len(p.ISR) > 0 {
		isr = []int32{p.ISR[len(p.ISR)-1]} // the last one known in sync stays
		if slices.Contains(p.ISR, p.Leader) {
			isr = []int32{p.Leader}
		}
	}
	leader := p.Leader
	if leader == -1 || !inService[leader] {
		leader = -1
		for _, r := range p.Replicas { // the preferred order
			if slices.Contains(isr, r) && inService[r] {
				leader = r
				break
			}
		}
	}
	if leader == -1 && unclean {
		// unclean.leader.election.enable: any replica in service rather
		// than none, at the price of what only the ISR had.
		for _, r := range p.Replicas {
			if inService[r] {
				leader, isr = r, []int32{r}
				break
			}
		}
	}
	change := metadata.PartitionChangeRecord{ExpectLeaderEpoch: &p.LeaderEpoch, ExpectPartitionEpoch: &p.PartitionEpoch}
	changed := false
	if !slices.Equal(isr, p.ISR) {
		change.ISR, changed = isr, true
	}
	if leader != p.Leader {
		change.Leader, changed = &leader, true
	}
	return change, changed
}

// Leave returns the records of a broker's controlled shutdown (Kafka's):
// it is fenced, leaves every ISR it is not the last member of, and each
// partition it leads gets another leader from the rest of the ISR in the
// same batch, so clients move before it stops instead of after its
// session times out.
func Leave(image *metadata.Image, brokerID int32) []metadata.Record {
	b, ok := image.Broker(brokerID)
	if !ok || b.Fenced {
		return nil
	}
	records := []metadata.Record{{FenceBroker: &metadata.FenceBrokerRecord{BrokerID: b.ID, Epoch: b.Epoch}}}
	inService := map[int32]bool{}
	for _, other := range image.Brokers() {
		inService[other.ID] = !other.Fenced && other.ID != brokerID
	}
	for _, t := range image.Topics() {
		unclean := t.Configs["unclean.leader.election.enable"] == "true"
		for i, p := range t.Partitions {
			if !slices.Contains(p.ISR, brokerID) && p.Leader != brokerID {
				continue
			}
			if change, ok := elect(p, inService, unclean); ok {
				change.TopicID, change.Partition = t.ID, int32(i)
				records = append(records, metadata.Record{PartitionChange: &change})
			}
		}
	}
	return records
}
