package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"

	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/storage"
)

// applied is the quorum's hook, called in log order after each change.
// It reconciles with the newest image rather than the one it is handed: a
// hook that waited for mu must not undo what a later image did.
func (c *Cluster) applied(*metadata.Image, []metadata.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.serving {
		return // Open reconciles once the log is replayed
	}
	if err := c.reconcileLocked(c.quorum.Image(), true); err != nil {
		c.logger.Error("applying a metadata change to this broker's logs", "err", err)
	}
}

// startServing opens the logs the image names. A log that cannot be
// opened (corruption) fails the start, as it always has.
func (c *Cluster) startServing() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.reconcileLocked(c.quorum.Image(), false); err != nil {
		return err
	}
	c.serving = true
	return nil
}

// reconcileLocked makes this broker's logs match image: topics that are
// gone are closed and their directories removed; new topics and
// partitions are opened (live: created now, so a directory no topic owned
// is moved aside first, never inherited); changed configs are applied.
// Called with mu held.
func (c *Cluster) reconcileLocked(image *metadata.Image, live bool) error {
	for name, local := range c.topics {
		if t, ok := image.TopicByID(local.ID); !ok || t.Name != name {
			c.removeLocalLocked(local)
		}
	}
	var errs []error
	for _, t := range image.Topics() {
		local := c.byID[t.ID]
		if local != nil && len(local.Partitions) == len(t.Partitions) && maps.Equal(local.Configs, t.Configs) && !c.hostingChanged(local, t) {
			errs = append(errs, c.followState(local, t, false))
			continue
		}
		next := &Topic{Name: t.Name, ID: t.ID, Configs: maps.Clone(t.Configs), settings: settingsFor(t.Configs, c.cfg.Log)}
		if local != nil {
			next.Partitions = slices.Clone(local.Partitions)
			if !maps.Equal(local.Configs, t.Configs) {
				for _, p := range next.Partitions {
					if p.Log == nil {
						continue
					}
					if err := p.Log.SetConfig(next.settings.log); err != nil {
						errs = append(errs, fmt.Errorf("topic %q partition %d: applying its configs: %w", t.Name, p.Index, err))
					}
				}
			}
		}
		// A reassignment adds this broker to a partition, or takes it away.
		for i, p := range next.Partitions {
			switch wanted := slices.Contains(t.Partitions[i].Replicas, c.cfg.NodeID); {
			case wanted && p.Log == nil:
				if err := c.clearStaleDir(t.Name, int32(i)); err != nil {
					errs = append(errs, err)
					continue
				}
				opened, err := c.openPartition(next, int32(i))
				if err != nil {
					errs = append(errs, fmt.Errorf("topic %q partition %d: %w", t.Name, i, err))
					continue
				}
				next.Partitions[i] = opened
				c.logger.Info("this broker is a new replica of the partition", "topic", t.Name, "partition", i)
			case !wanted && p.Log != nil:
				c.deleteReplica(p)
				next.Partitions[i] = &Partition{Topic: t.Name, Index: int32(i)}
				c.logger.Info("this broker is no longer a replica of the partition: its copy is deleted", "topic", t.Name, "partition", i)
			}
		}
		for i := int32(len(next.Partitions)); i < int32(len(t.Partitions)); i++ {
			if !slices.Contains(t.Partitions[i].Replicas, c.cfg.NodeID) {
				next.Partitions = append(next.Partitions, &Partition{Topic: t.Name, Index: i}) // another broker's
				// A copy left from when it was a replica (moved away while
				// this broker was down) is stray.
				if err := c.clearStaleDir(t.Name, i); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			if live {
				if err := c.clearStaleDir(t.Name, i); err != nil {
					errs = append(errs, err)
					break
				}
			}
			p, err := c.openPartition(next, i)
			if err != nil {
				errs = append(errs, fmt.Errorf("topic %q partition %d: %w", t.Name, i, err))
				break
			}
			next.Partitions = append(next.Partitions, p)
		}
		if len(next.Partitions) == 0 {
			continue // nothing of it could be opened: not served here
		}
		errs = append(errs, c.followState(next, t, local != nil && !maps.Equal(local.Configs, t.Configs)))
		c.topics[t.Name], c.byID[t.ID] = next, next
	}
	return errors.Join(errs...)
}

// followState hands each partition's state from the image to its
// replica, which leads or follows accordingly (a new leader records its
// epoch at the log end before anything is appended in it), and tells the
// fetchers. Only partitions whose state changed are looked at, unless the
// topic's configs did.
func (c *Cluster) followState(local *Topic, t *metadata.Topic, configsChanged bool) error {
	var errs []error
	for i, p := range local.Partitions {
		state := t.Partitions[i]
		if old := p.state.Load(); !configsChanged && old != nil && old.PartitionEpoch == state.PartitionEpoch && old.LeaderEpoch == state.LeaderEpoch {
			continue
		}
		if p.Replica != nil {
			minISR := local.settings.minISR
			if err := p.Replica.Update(state, minISR); err != nil {
				errs = append(errs, fmt.Errorf("topic %q partition %d: %w", t.Name, i, err))
				continue // tried again at the next change
			}
			c.fetchers.Set(p.Replica)
		}
		p.state.Store(&state)
		if it := c.internal[local.Name]; it != nil {
			it.follow(p, state)
		}
	}
	return errors.Join(errs...)
}

// removeLocalLocked closes a deleted topic's logs and removes their
// directories.
func (c *Cluster) removeLocalLocked(t *Topic) {
	delete(c.topics, t.Name)
	delete(c.byID, t.ID)
	// As Kafka does: committed offsets of a deleted topic go with it, so a
	// topic created again under the name does not inherit them. Every
	// broker does it: the coordinator may be any of them.
	// Off the apply hook: the deletions are written through the offsets
	// partitions' leaders and wait for their followers, whose fetches
	// need the lock this hook holds.
	go func() {
		if err := c.coordinators.TopicDeleted(t.Name); err != nil {
			c.logger.Error("removing the deleted topic's committed offsets", "topic", t.Name, "err", err)
		}
	}()
	for _, p := range t.Partitions {
		if p.Log != nil {
			c.deleteReplica(p)
		}
	}
}

// hostingChanged reports whether the image adds this broker to a
// partition of the topic or takes it away.
func (c *Cluster) hostingChanged(local *Topic, t *metadata.Topic) bool {
	for i, p := range local.Partitions {
		if (p.Log != nil) != slices.Contains(t.Partitions[i].Replicas, c.cfg.NodeID) {
			return true
		}
	}
	return false
}

// deleteReplica stops replicating p, closes its log and removes its
// directory (renamed aside first: a stop halfway leaves only a
// "*.deleted" directory, removed at the next start).
func (c *Cluster) deleteReplica(p *Partition) {
	c.fetchers.Remove(p.Replica)
	p.Replica.Close()
	_ = p.Log.Close()
	aside := p.Log.Dir() + deletedSuffix
	if err := c.fs.Rename(p.Log.Dir(), aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.logger.Error("moving a deleted partition aside", "dir", p.Log.Dir(), "err", err)
		return
	}
	// Removed in the background: this runs in the metadata quorum's apply
	// hook, which a large partition must not hold up. A stop halfway
	// leaves the "*.deleted" directory to the next start.
	go func() {
		if err := c.fs.RemoveAll(aside); err != nil {
			c.logger.Error("removing a deleted partition", "dir", aside, "err", err)
		}
	}()
}

// clearStaleDir moves aside a partition directory that no topic owns (left
// by a deletion a crash interrupted), so a new topic never inherits old
// records.
func (c *Cluster) clearStaleDir(topic string, index int32) error {
	dir := c.partitionDir(topic, index)
	if !storage.Exists(c.fs, dir) {
		return nil
	}
	c.logger.Warn("removing a partition directory no topic owns", "dir", dir)
	aside := dir + deletedSuffix
	if err := c.fs.Rename(dir, aside); err != nil {
		return err
	}
	return c.fs.RemoveAll(aside)
}
