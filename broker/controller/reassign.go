package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/metadata"
)

// Reassign decides an AlterPartitionReassignments request (Kafka's key 45)
// for one partition: it starts moving the partition to target (its
// replicas in order, the first the preferred leader), or, with target nil,
// cancels the reassignment in progress. The new replicas copy the
// partition as followers; once every target replica is in the ISR the
// controller finishes it (finishReassignment): the others leave, and the
// leader moves if it was one of them. ok is false when nothing is to
// change (the partition has those replicas already).
func Reassign(image *metadata.Image, topicID metadata.TopicID, index int32, target []int32) (record metadata.Record, ok bool, err error) {
	t, found := image.TopicByID(topicID)
	if !found || index < 0 || int(index) >= len(t.Partitions) {
		return metadata.Record{}, false, kerr.UnknownTopicOrPartition
	}
	p := t.Partitions[index]
	inProgress := len(p.Adding) > 0 || len(p.Removing) > 0
	// A new target starts from the replicas the partition has now, those
	// being added included (they stay, as removing, until the new target
	// is in sync); a cancel goes back to the replicas it had before.
	original := slices.Clone(p.Replicas)
	if target == nil {
		if !inProgress {
			return metadata.Record{}, false, fmt.Errorf("%w: no reassignment of partition %d is in progress", kerr.NoReassignmentInProgress, index)
		}
		target = slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.Adding, r) })
		original = target
	}
	if err := checkTarget(image, target); err != nil {
		return metadata.Record{}, false, err
	}
	if !inProgress && slices.Equal(target, p.Replicas) {
		return metadata.Record{}, false, nil
	}
	merged := slices.Clone(target)
	for _, r := range original {
		if !slices.Contains(merged, r) {
			merged = append(merged, r)
		}
	}
	change := metadata.PartitionChangeRecord{TopicID: topicID, Partition: index, ExpectLeaderEpoch: &p.LeaderEpoch, ExpectPartitionEpoch: &p.PartitionEpoch,
		Reassignment: &metadata.Reassignment{Replicas: merged}}
	for _, r := range target {
		if !slices.Contains(original, r) {
			change.Reassignment.Adding = append(change.Reassignment.Adding, r)
		}
	}
	for _, r := range original {
		if !slices.Contains(target, r) {
			change.Reassignment.Removing = append(change.Reassignment.Removing, r)
		}
	}
	// Replicas added by a reassignment that is replaced or cancelled leave
	// the ISR with it.
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return !slices.Contains(merged, r) })
	if !slices.Equal(isr, p.ISR) {
		change.ISR = isr
	}
	// Never a state without an in-sync replica in service: a cancel that
	// would drop the only ones (they were being added) is refused.
	if firstInService(image, merged, isr) == -1 {
		return metadata.Record{}, false, fmt.Errorf("%w: the replicas %v would keep no in-sync replica in service (the ISR is %v); let the reassignment finish, or move the partition to replicas that include one of them",
			kerr.InvalidReplicaAssignment, merged, p.ISR)
	}
	next := metadata.Partition{Replicas: merged, ISR: isr, Leader: p.Leader, Adding: change.Reassignment.Adding, Removing: change.Reassignment.Removing}
	if !slices.Contains(isr, p.Leader) && p.Leader != -1 {
		leader := firstInService(image, target, isr)
		change.Leader, next.Leader = &leader, leader
	}
	// A target already in sync finishes at once.
	if done, ok := finishReassignment(next, inServiceMap(image)); ok {
		change.Reassignment, change.ISR = done.Reassignment, done.ISR
		if done.Leader != nil {
			change.Leader = done.Leader
		}
	}
	return metadata.Record{PartitionChange: &change}, true, nil
}

// checkTarget refuses an empty target, a broker twice, or one that is not
// registered.
func checkTarget(image *metadata.Image, target []int32) error {
	if len(target) == 0 {
		return fmt.Errorf("%w: a partition needs at least one replica", kerr.InvalidReplicaAssignment)
	}
	for i, r := range target {
		if slices.Contains(target[:i], r) {
			return fmt.Errorf("%w: broker %d is listed twice in %v", kerr.InvalidReplicaAssignment, r, target)
		}
		if _, ok := image.Broker(r); !ok {
			return fmt.Errorf("%w: broker %d is not registered; start it first (kqctl cluster describe lists the brokers)", kerr.InvalidReplicaAssignment, r)
		}
	}
	return nil
}

// finishReassignment completes a partition's reassignment once every
// target replica is in the ISR: the replicas become the target, the
// others leave the ISR, and the leader moves to the first target replica
// in sync and in service if it was leaving.
func finishReassignment(p metadata.Partition, inService map[int32]bool) (metadata.PartitionChangeRecord, bool) {
	if len(p.Adding) == 0 && len(p.Removing) == 0 {
		return metadata.PartitionChangeRecord{}, false
	}
	target := p.Target()
	for _, r := range target {
		if !slices.Contains(p.ISR, r) {
			return metadata.PartitionChangeRecord{}, false
		}
	}
	change := metadata.PartitionChangeRecord{Reassignment: &metadata.Reassignment{Replicas: target},
		ExpectLeaderEpoch: &p.LeaderEpoch, ExpectPartitionEpoch: &p.PartitionEpoch}
	var isr []int32
	for _, r := range p.ISR {
		if slices.Contains(target, r) {
			isr = append(isr, r)
		}
	}
	if !slices.Equal(isr, p.ISR) {
		change.ISR = isr
	}
	if !slices.Contains(target, p.Leader) {
		leader := int32(-1)
		for _, r := range target {
			if inService[r] {
				leader = r
				break
			}
		}
		change.Leader = &leader
	}
	return change, true
}

func inServiceMap(image *metadata.Image) map[int32]bool {
	inService := map[int32]bool{}
	for _, b := range image.Brokers() {
		inService[b.ID] = !b.Fenced
	}
	return inService
}

// firstInService is the first of candidates in isr and in service, -1 if
// none.
func firstInService(image *metadata.Image, candidates, isr []int32) int32 {
	inService := inServiceMap(image)
	for _, r := range candidates {
		if inService[r] && slices.Contains(isr, r) {
			return r
		}
	}
	return -1
}
