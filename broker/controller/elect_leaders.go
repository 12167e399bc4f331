package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/metadata"
)

// ElectLeader decides an ElectLeaders request (Kafka's key 43) for one
// partition. Preferred: the first replica leads again, if it is in the
// ISR and in service; ELECTION_NOT_NEEDED if it leads already,
// PREFERRED_LEADER_NOT_AVAILABLE if it cannot. Unclean: a partition
// without a leader gets one from the ISR, or else from any replica in
// service (its ISR is then that replica alone); ELECTION_NOT_NEEDED if it
// has a leader, ELIGIBLE_LEADERS_NOT_AVAILABLE if no replica is in
// service. The change names the epochs it was decided at.
func ElectLeader(image *metadata.Image, topicID metadata.TopicID, index int32, unclean bool) (metadata.Record, error) {
	t, ok := image.TopicByID(topicID)
	if !ok || index < 0 || int(index) >= len(t.Partitions) {
		return metadata.Record{}, kerr.UnknownTopicOrPartition
	}
	p := t.Partitions[index]
	inService := func(id int32) bool { b, ok := image.Broker(id); return ok && !b.Fenced }
	change := metadata.PartitionChangeRecord{TopicID: topicID, Partition: index, ExpectLeaderEpoch: &p.LeaderEpoch, ExpectPartitionEpoch: &p.PartitionEpoch}
	if !unclean {
		preferred := p.Replicas[0]
		switch {
		case p.Leader == preferred:
			return metadata.Record{}, fmt.Errorf("%w: broker %d, the preferred replica, leads already", kerr.ElectionNotNeeded, preferred)
		case !slices.Contains(p.ISR, preferred) || !inService(preferred):
			return metadata.Record{}, fmt.Errorf("%w: broker %d, the preferred replica, is not in the ISR %v or not in service", kerr.PreferredLeaderNotAvailable, preferred, p.ISR)
		}
		change.Leader = &preferred
		return metadata.Record{PartitionChange: &change}, nil
	}
	if p.Leader >= 0 {
		return metadata.Record{}, fmt.Errorf("%w: broker %d leads", kerr.ElectionNotNeeded, p.Leader)
	}
	for _, fromISR := range []bool{true, false} {
		for _, r := range p.Replicas {
			if inService(r) && slices.Contains(p.ISR, r) == fromISR {
				leader := r
				change.Leader = &leader
				if !fromISR {
					change.ISR = []int32{r}
				}
				return metadata.Record{PartitionChange: &change}, nil
			}
		}
	}
	return metadata.Record{}, fmt.Errorf("%w: no replica of %v is in service", kerr.EligibleLeadersNotAvailable, p.Replicas)
}

// preferredLeaders returns the changes that give every partition its
// preferred leader back where it can (auto.leader.rebalance.enable): the
// first replica, in the ISR and in service, not leading now.
func preferredLeaders(image *metadata.Image, inService map[int32]bool) []metadata.Record {
	var records []metadata.Record
	for _, t := range image.Topics() {
		for i, p := range t.Partitions {
			preferred := p.Replicas[0]
			if p.Leader == preferred || p.Leader == -1 || !inService[preferred] || !slices.Contains(p.ISR, preferred) {
				continue
			}
			change := metadata.PartitionChangeRecord{TopicID: t.ID, Partition: int32(i), Leader: &preferred, ExpectLeaderEpoch: &p.LeaderEpoch, ExpectPartitionEpoch: &p.PartitionEpoch}
			records = append(records, metadata.Record{PartitionChange: &change})
		}
	}
	return records
}
