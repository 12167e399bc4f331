package group

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Unload ends this coordinator when its broker stops leading the
// partition of __consumer_offsets that holds its groups: members waiting
// in a join or for their assignment are answered NOT_COORDINATOR, so they
// look the new coordinator up, and the coordinator answers nothing after.
// What it wrote stays in the partition, where the new leader loads it.
func (c *Coordinator) Unload() {
	c.mu.Lock()
	defer c.mu.Unlock()
	moved := fmt.Errorf("%w: this broker no longer leads the partition of %s that holds the group", kerr.NotCoordinator, OffsetsTopic)
	for _, g := range c.groups {
		for _, m := range g.members {
			if m.joinWaiter != nil {
				m.joinWaiter <- JoinResult{Err: moved, MemberID: m.id, Generation: -1}
				m.joinWaiter = nil
			}
			if m.syncWaiter != nil {
				m.syncWaiter <- SyncResult{Err: moved}
				m.syncWaiter = nil
			}
		}
	}
	c.groups = map[string]*group{}
}

// writeFailure is the Kafka error a failed write of the store answers, as
// Kafka's group coordinator maps them: NOT_COORDINATOR when the broker no
// longer leads the partition (the client finds the new coordinator),
// COORDINATOR_NOT_AVAILABLE otherwise (too few in-sync replicas, a
// timeout, a disk error: the client retries).
func writeFailure(err error) *kerr.Error {
	if errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.NotCoordinator) || errors.Is(err, kerr.FencedLeaderEpoch) {
		return kerr.NotCoordinator
	}
	return kerr.CoordinatorNotAvailable
}
