package group

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// deletion is a group's deletion, queued: one batch deletes every offset
// of the group (those being written too) and its metadata. The group is
// Dead until the batch is durable, then gone; a commit queued before it is
// deleted with it, one that comes while it is Dead is refused with
// COORDINATOR_NOT_AVAILABLE, and one after finds no group (a standalone
// commit creates a new one, as Kafka's).
type deletion struct {
	group *group
	write *pendingWrite
}

// Delete deletes an empty group and its committed offsets (DeleteGroups).
// It returns once the deletion is durable; if it cannot be written, the
// group stays as it was and the error is COORDINATOR_NOT_AVAILABLE.
func (c *Coordinator) Delete(groupID string) error {
	now := c.clock.Now()
	c.mu.Lock()
	g, err := c.emptyGroupLocked(groupID, kerr.NonEmptyGroup)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	d := c.deleteGroupLocked(g, now)
	c.mu.Unlock()
	c.offsets.flush()
	return c.finishDeletion(d)
}

// deleteGroupLocked marks an empty group Dead and queues its deletion.
func (c *Coordinator) deleteGroupLocked(g *group, now time.Time) *deletion {
	tps := g.writtenPartitions("")
	records := make([]record, 0, len(tps)+1)
	for _, tp := range tps {
		records = append(records, offsetRecord(g.name, tp, nil, 0))
	}
	records = append(records, groupMetadataRecord(g.name, nil, 0))
	g.state = StateDead // stateChangedTime kept: a failed deletion leaves the group as it was
	return &deletion{group: g, write: c.offsets.enqueue(records, now.UnixMilli(), true)}
}

// finishDeletion waits until a deletion is durable and removes the group,
// or, if it failed, makes the group Empty again, offsets and all, as the
// log still has it.
func (c *Coordinator) finishDeletion(d *deletion) error {
	err := c.offsets.durable(d.write)
	c.mu.Lock()
	defer c.mu.Unlock()
	g := d.group
	if err != nil {
		g.state = StateEmpty
		c.logWriteFailure("group not deleted; it stays, with its offsets", g.name, err)
		return fmt.Errorf("%w: deleting group %q: %v", writeFailure(err), g.name, err)
	}
	if c.groups[g.name] == g {
		delete(c.groups, g.name)
	}
	return nil
}

// emptyGroupLocked is the group, if it exists and has no members:
// GROUP_ID_NOT_FOUND, or busy (Kafka's code for the operation) when it
// has members.
func (c *Coordinator) emptyGroupLocked(groupID string, busy *kerr.Error) (*group, error) {
	g, ok := c.groups[groupID]
	switch {
	case !ok || g.state == StateDead:
		return nil, fmt.Errorf("%w: group %q does not exist", kerr.GroupIDNotFound, groupID)
	case g.state != StateEmpty:
		return nil, fmt.Errorf("%w: group %q has members; stop its consumers first", busy, groupID)
	}
	return g, nil
}
