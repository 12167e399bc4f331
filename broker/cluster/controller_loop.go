package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/kqstack/kqstack/broker/controller"
	"github.com/kqstack/kqstack/broker/metadata"
)

// controllerState is this broker's part in a cluster of several: its
// heartbeats to the quorum leader and, while it leads, the controller that
// fences silent brokers and elects leaders. mu guards controller: the
// quorum's heartbeat hook and the loop below both use it.
type controllerState struct {
	mu         sync.Mutex
	controller *controller.Controller
	// kick asks the loop for a tick now (a broker's connection was lost).
	kick chan struct{}
	// lastLeader is the quorum leader this broker last knew of, when it
	// was not itself.
	lastLeader int32
}

// heartbeatReceived is the quorum's OnHeartbeat hook (on the leader).
func (c *Cluster) heartbeatReceived(brokerID int32, epoch int64, session uint64) {
	s := &c.controllerState
	s.mu.Lock()
	if s.controller != nil {
		s.controller.HeartbeatOn(brokerID, epoch, session, c.clock.Now())
	}
	s.mu.Unlock()
	// A fenced broker waiting to be put in service heartbeats often: each
	// heartbeat has the controller look at once, not at its next tick.
	if b, ok := c.quorum.Image().Broker(brokerID); ok && b.Fenced && b.Epoch == epoch {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// heartbeatLost is the quorum's OnHeartbeatLost hook (on the leader): a
// broker's heartbeat connection closed from its side. It is fenced after
// lostGrace without a heartbeat, checked by a tick then.
func (c *Cluster) heartbeatLost(brokerID int32, epoch int64, session uint64) {
	s := &c.controllerState
	grace := c.lostGrace()
	s.mu.Lock()
	if s.controller != nil {
		s.controller.Lost(brokerID, epoch, session, c.clock.Now(), grace)
	}
	s.mu.Unlock()
	c.logger.Info("a broker's heartbeat connection closed; it is fenced unless it heartbeats again", "broker", brokerID, "grace", grace)
	c.kickAfter(grace)
}

// sleep waits d on the cluster's clock, or until ctx ends (its error).
func (c *Cluster) sleep(ctx context.Context, d time.Duration) error {
	timer := c.clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C():
		return nil
	}
}

// kickAfter asks the controller loop for a tick once d has passed.
func (c *Cluster) kickAfter(d time.Duration) {
	timer := c.clock.NewTimer(d + 10*time.Millisecond)
	go func() {
		defer timer.Stop()
		select {
		case <-timer.C():
		case <-c.stop:
			return
		}
		select {
		case c.controllerState.kick <- struct{}{}:
		default:
		}
	}()
}

// lostGrace is how long a broker whose heartbeat connection closed has to
// heartbeat on a new one: one heartbeat interval, at most a second.
func (c *Cluster) lostGrace() time.Duration {
	return min(time.Duration(c.cfg.BrokerHeartbeatIntervalMs)*time.Millisecond, time.Second)
}

// leaderChanged is the quorum's leadership watch: it remembers the last
// leader other than this broker, and has the loop tick at once, so a new
// controller starts deciding without waiting for the next tick.
func (c *Cluster) leaderChanged(leader int32) {
	s := &c.controllerState
	if leader >= 0 && leader != c.cfg.NodeID {
		s.mu.Lock()
		s.lastLeader = leader
		s.mu.Unlock()
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// runController heartbeats every broker_heartbeat_interval_ms and, on the
// quorum leader, proposes what the controller decides. Only in a cluster:
// a broker alone is always in service.
func (c *Cluster) runController() {
	interval := time.Duration(c.cfg.BrokerHeartbeatIntervalMs) * time.Millisecond
	ticker := c.clock.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-ticker.C():
		case <-c.controllerState.kick:
		}
		c.controllerTick(interval)
	}
}

func (c *Cluster) controllerTick(interval time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), interval)
	defer cancel()
	now := c.clock.Now()
	s := &c.controllerState
	s.mu.Lock()
	switch leading := c.quorum.IsLeader(); {
	case leading && !s.controller.Leading():
		s.controller.Lead(now)
		c.logger.Info("this broker is the controller now")
		// The controller before may have died with its broker: it gets a
		// short grace to heartbeat here, not a whole session, or its
		// partitions would wait that long for new leaders; none when this
		// broker's fetches from it already fail on their connections (its
		// process is gone), so a group it coordinated is not left waiting
		// past a client's request timeout (kafka-go's is 5 s).
		if previous, ok := c.quorum.Image().Broker(s.lastLeader); ok && previous.ID != c.cfg.NodeID && !previous.Fenced {
			grace := 2 * c.lostGrace()
			if c.fetchers.Unreachable(previous.ID) {
				grace = 0
			}
			s.controller.HeartbeatOn(previous.ID, previous.Epoch, 0, now)
			s.controller.Lost(previous.ID, previous.Epoch, 0, now, grace)
			c.logger.Info("the controller before this one must heartbeat soon, or be fenced", "broker", previous.ID, "grace", grace)
			c.kickAfter(grace)
		}
	case !leading && s.controller.Leading():
		s.controller.Resign()
	}
	if id, ok := c.quorum.Leader(); ok && id != c.cfg.NodeID {
		s.lastLeader = id // also the leader elected before the watch began
	}
	leading := s.controller.Leading()
	s.mu.Unlock()
	if leading {
		c.maybeCreateInternalTopics()
	}

	if b, ok := c.quorum.Image().Broker(c.cfg.NodeID); ok && !c.left.Load() {
		if err := c.quorum.Heartbeat(ctx, c.cfg.NodeID, b.Epoch); err != nil {
			c.logger.Debug("heartbeat to the controller", "err", err)
		}
	}
	// Brokers' fences first, alone: a partition that changed meanwhile
	// (a leader's ISR change) must not hold a fence back. Then the
	// partitions, decided again on the newer image if one was stale.
	for attempt := 0; attempt < 3; attempt++ {
		s.mu.Lock()
		records := s.controller.Tick(c.quorum.Image(), c.clock.Now())
		s.mu.Unlock()
		brokers := slices.DeleteFunc(slices.Clone(records), func(r metadata.Record) bool { return r.PartitionChange != nil })
		if len(brokers) > 0 {
			records = brokers
		}
		if len(records) == 0 {
			return
		}
		if _, err := c.quorum.Propose(ctx, records...); err != nil {
			var stale *metadata.StaleChangeError
			if errors.As(err, &stale) {
				continue
			}
			c.logger.Warn("the controller's changes were not committed; retrying at the next tick", "err", err)
			return
		}
		c.logControllerChanges(records)
	}
}

func (c *Cluster) logControllerChanges(records []metadata.Record) {
	for _, r := range records {
		switch {
		case r.FenceBroker != nil:
			c.logger.Warn("fenced a broker: no heartbeat for broker_session_timeout_ms", "broker", r.FenceBroker.BrokerID, "broker_session_timeout_ms", c.cfg.BrokerSessionTimeoutMs)
		case r.UnfenceBroker != nil:
			c.logger.Info("a broker is back in service", "broker", r.UnfenceBroker.BrokerID)
		case r.PartitionChange != nil && r.PartitionChange.Leader != nil && *r.PartitionChange.Leader == -1:
			c.logger.Warn("a partition has no leader: no replica in sync is in service", "topic_id", r.PartitionChange.TopicID.String(), "partition", r.PartitionChange.Partition)
		case r.PartitionChange != nil && r.PartitionChange.Leader != nil:
			c.logger.Info("elected a partition leader", "topic_id", r.PartitionChange.TopicID.String(), "partition", r.PartitionChange.Partition, "leader", *r.PartitionChange.Leader)
		}
	}
}
