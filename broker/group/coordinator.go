// Package group is the consumer group coordinator: Kafka's classic group
// protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) as a state machine
// per group, and committed offsets.
//
//	        first join                 all members joined,          leader's SyncGroup,
//	Empty ─────────────> Preparing ───── or rebalance timeout ──> Completing ── once written ──> Stable
//	  ^ │                Rebalance  <────────────────────────────  Rebalance  <───────────────────┘
//	  │ │                   member joins, leaves, expires, or changes protocols; the write fails
//	  │ └───── DeleteGroups, or empty past the offsets retention ─────> Dead ── once written ──> gone
//	  ├── last member leaves / expires                                    │
//	  └─────────────────────────── the deletion failed to be written ─────┘
//
// It opens no sockets and reads time only from its clock: the server calls
// Tick periodically, and tests move a manual clock and call Tick. Requests
// that must wait for other members (JoinGroup, SyncGroup) return a channel
// that receives the answer when it is ready.
//
// The Coordinator alone decides which groups exist and what they hold,
// their committed offsets included; the OffsetStore persists its decisions
// and replays them at open (offsets.go, records.go). Locks, in the order
// they are taken: Coordinator.mu (every group), then OffsetStore.queueMu
// (records queued under Coordinator.mu, so in the order decided). The
// queue is appended to the log by OffsetStore.flush under
// OffsetStore.writeMu, which is never taken under Coordinator.mu: no disk
// write or fsync happens while holding it. A change becomes visible once
// its records are in the log (and durable, for offsets and deletions); a
// write that fails is answered with COORDINATOR_NOT_AVAILABLE and logged.
package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/storage"
)

// State is a group's state, named as Kafka names them.
type State string

const (
	StateEmpty               State = "Empty"
	StatePreparingRebalance  State = "PreparingRebalance"
	StateCompletingRebalance State = "CompletingRebalance"
	StateStable              State = "Stable"
	StateDead                State = "Dead"
)

// Kafka's bounds on session timeouts (group.min/max.session.timeout.ms).
const (
	MinSessionTimeout = 6 * time.Second
	MaxSessionTimeout = 30 * time.Minute
)

// Protocol is one assignment protocol a member supports, with its metadata.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup request.
type JoinRequest struct {
	Group            string
	MemberID         string
	InstanceID       *string // static membership (KIP-345)
	ClientID         string
	ClientHost       string
	ProtocolType     string
	Protocols        []Protocol
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID: JoinGroup v4+ (KIP-394): a first join gets
	// MEMBER_ID_REQUIRED with its new id and joins again with it.
	RequireKnownMemberID bool
}

// Member is a member as the leader sees it in a JoinGroup answer.
type Member struct {
	MemberID   string
	InstanceID *string
	Metadata   []byte
}

// JoinResult answers a JoinGroup.
type JoinResult struct {
	Err          error
	MemberID     string
	Generation   int32
	ProtocolType string
	Protocol     string
	LeaderID     string
	Members      []Member // only for the leader
}

// SyncRequest is a SyncGroup request.
type SyncRequest struct {
	Group        string
	MemberID     string
	InstanceID   *string
	Generation   int32
	ProtocolType *string
	Protocol     *string
	Assignments  map[string][]byte // only from the leader
}

// SyncResult answers a SyncGroup.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	protocols        []Protocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	lastHeartbeat    time.Time
	assignment       []byte
	joinWaiter       chan JoinResult // set while the member waits in a join phase
	syncWaiter       chan SyncResult // set while the member waits for the leader's sync
}

type group struct {
	name         string
	state        State
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	// pending holds member ids handed out with MEMBER_ID_REQUIRED, with
	// when they expire.
	pending map[string]time.Time
	// joinDeadline ends the current join phase; initialDelay marks the
	// delay for a group that was empty, which each new member extends.
	joinDeadline     time.Time
	joinStarted      time.Time
	initialDelay     bool
	stateChangedTime time.Time
	lastCommit       time.Time // of any offset; standalone consumers' offsets expire from it
	// assignmentWrite is the leader's assignment being written while
	// CompletingRebalance: the members get it once it is in the log.
	assignmentWrite *pendingWrite
	// offsets are the committed offsets (see commit.go); inFlight counts,
	// per partition, the offset writes queued and not yet applied.
	offsets  map[TopicPartition]offsetEntry
	inFlight map[TopicPartition]int
}

// Coordinator runs every group of this broker.
type Coordinator struct {
	clock                 clock.Clock
	initialRebalanceDelay time.Duration
	offsetsRetention      time.Duration
	offsets               *OffsetStore
	logger                *slog.Logger

	mu              sync.RWMutex
	groups          map[string]*group
	lastExpiryCheck time.Time
	// background holds the writes queued that no caller waits for (an
	// emptied group's new generation); unlockAndWrite finishes them.
	background []backgroundWrite
}

type backgroundWrite struct {
	group string
	write *pendingWrite
}

// NewCoordinator returns a coordinator whose groups and committed offsets
// are those replayed by offsets, where it persists them from then on; a
// store serves one coordinator. initialRebalanceDelay is
// group.initial.rebalance.delay.ms; offsetsRetention is
// offsets.retention.minutes. Failures to write are logged with the store's
// logger.
func NewCoordinator(clk clock.Clock, initialRebalanceDelay, offsetsRetention time.Duration, offsets *OffsetStore) *Coordinator {
	c := &Coordinator{clock: clk, initialRebalanceDelay: initialRebalanceDelay, offsetsRetention: offsetsRetention, offsets: offsets,
		logger: offsets.logger, groups: make(map[string]*group), lastExpiryCheck: clk.Now()}
	now := clk.Now()
	for name, stored := range offsets.takeLoaded() {
		g := c.newGroup(name)
		g.offsets = stored.offsets
		if stored.metadata != nil {
			g.restore(stored.metadata, now)
		}
		c.groups[name] = g
	}
	return c
}

// restore gives a loaded group its last written generation, as Kafka's
// coordinator loads it: with members, Stable, each member's session
// starting now, so the members of a group whose coordinator moved go on
// heartbeating and committing in their generation, with no rebalance and
// no session to wait out; members that are gone expire. Only the chosen
// protocol's metadata is kept for a member: one that joins again with
// its full list of protocols starts a rebalance.
func (g *group) restore(rec *GroupRecord, now time.Time) {
	g.generation, g.protocolType = rec.Generation, rec.ProtocolType
	if len(rec.Members) == 0 || rec.Protocol == "" {
		return
	}
	g.protocol, g.leader = rec.Protocol, rec.Leader
	for _, mr := range rec.Members {
		g.members[mr.MemberID] = &member{id: mr.MemberID, instanceID: mr.InstanceID, clientID: mr.ClientID, clientHost: mr.ClientHost,
			protocols:      []Protocol{{Name: rec.Protocol, Metadata: mr.Subscription}},
			sessionTimeout: mr.SessionTimeout, rebalanceTimeout: mr.RebalanceTimeout, lastHeartbeat: now, assignment: mr.Assignment}
	}
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.firstMemberID()
	}
	g.setState(StateStable, now)
}

// recordGroupLocked queues the group's metadata, as of now, for the log.
func (c *Coordinator) recordGroupLocked(g *group, now time.Time) *pendingWrite {
	rec := GroupRecord{ProtocolType: g.protocolType, Generation: g.generation, Protocol: g.protocol, Leader: g.leader}
	for _, m := range g.members {
		rec.Members = append(rec.Members, MemberRecord{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			SessionTimeout: m.sessionTimeout, RebalanceTimeout: m.rebalanceTimeout, Subscription: m.metadataFor(g.protocol), Assignment: m.assignment})
	}
	sort.Slice(rec.Members, func(i, j int) bool { return rec.Members[i].MemberID < rec.Members[j].MemberID })
	// Not fsynced on its own: a lost record only means the group starts
	// from an older generation after a crash; the next durable write of
	// the log (any commit) makes it durable too.
	return c.offsets.enqueue([]record{groupMetadataRecord(g.name, &rec, now.UnixMilli())}, now.UnixMilli(), false)
}

// unlockAndWrite releases c.mu, then appends what was queued under it and
// waits for the writes no caller waits for, logging their failures.
func (c *Coordinator) unlockAndWrite() error {
	background := c.background
	c.background = nil
	c.mu.Unlock()
	c.offsets.flush()
	var errs []error
	for _, b := range background {
		if err := c.offsets.durable(b.write); err != nil {
			c.logWriteFailure("group metadata not written; after a restart the group starts from an older generation", b.group, err)
			errs = append(errs, fmt.Errorf("%w: writing the metadata of group %q: %v", writeFailure(err), b.group, err))
		}
	}
	return errors.Join(errs...)
}

// logWriteFailure logs a failed write of the offsets log; one that failed
// because the broker is closing it is no error.
func (c *Coordinator) logWriteFailure(msg, group string, err error) {
	level := slog.LevelError
	if errors.Is(err, storage.ErrClosed) {
		level = slog.LevelWarn
	}
	c.logger.Log(context.Background(), level, msg, "group", group, "err", err)
}

func (c *Coordinator) newGroup(name string) *group {
	return &group{name: name, state: StateEmpty, members: make(map[string]*member), pending: make(map[string]time.Time), stateChangedTime: c.clock.Now(),
		offsets: make(map[TopicPartition]offsetEntry), inFlight: make(map[TopicPartition]int)}
}

func newMemberID(clientID string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	if clientID == "" {
		clientID = "member"
	}
	return clientID + "-" + hex.EncodeToString(b[:])
}

// Join handles JoinGroup. The channel receives the answer once the join
// phase completes (or at once for errors and unchanged members).
func (c *Coordinator) Join(req JoinRequest) <-chan JoinResult {
	answer := make(chan JoinResult, 1)
	fail := func(err error) <-chan JoinResult {
		answer <- JoinResult{Err: err, MemberID: req.MemberID, Generation: -1}
		return answer
	}
	if req.Group == "" {
		return fail(fmt.Errorf("%w: the group id is empty", kerr.InvalidGroupID))
	}
	if req.SessionTimeout < MinSessionTimeout || req.SessionTimeout > MaxSessionTimeout {
		return fail(fmt.Errorf("%w: session timeout %v must be between %v and %v", kerr.InvalidSessionTimeout, req.SessionTimeout, MinSessionTimeout, MaxSessionTimeout))
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(fmt.Errorf("%w: a join needs a protocol type and at least one protocol", kerr.InconsistentGroupProtocol))
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout // JoinGroup v0
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.unlockAndWrite() // its failures are logged; the join goes on
	g, ok := c.groups[req.Group]
	if !ok {
		g = c.newGroup(req.Group)
		c.groups[req.Group] = g
	}
	if g.state == StateDead {
		return fail(kerr.CoordinatorNotAvailable)
	}
	if len(g.members) > 0 && (req.ProtocolType != g.protocolType || !g.supportsAny(req.Protocols)) {
		return fail(fmt.Errorf("%w: the group's members use protocol type %q with protocols none of which this member offers", kerr.InconsistentGroupProtocol, g.protocolType))
	}

	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	m := g.members[req.MemberID]
	if req.MemberID == "" && req.InstanceID != nil {
		if existing := g.memberByInstance(*req.InstanceID); existing != nil {
			return c.rejoinStaticLocked(g, existing, req, answer, now)
		}
	}
	if m == nil {
		if req.MemberID != "" {
			if _, handedOut := g.pending[req.MemberID]; !handedOut {
				return fail(fmt.Errorf("%w: member %q is not in group %q", kerr.UnknownMemberID, req.MemberID, req.Group))
			}
			delete(g.pending, req.MemberID)
		} else {
			req.MemberID = newMemberID(req.ClientID)
			if req.RequireKnownMemberID && req.InstanceID == nil {
				g.pending[req.MemberID] = now.Add(req.SessionTimeout)
				return fail(kerr.MemberIDRequired)
			}
		}
		m = &member{id: req.MemberID}
		g.members[m.id] = m
		m.update(req, now)
		c.prepareRebalanceLocked(g, now, true)
	} else {
		changed := !sameProtocols(m.protocols, req.Protocols)
		m.update(req, now)
		switch g.state {
		case StateStable, StateCompletingRebalance:
			if !changed && m.id != g.leader {
				// An unchanged follower joining again: the current generation stands.
				answer <- g.joinResult(m)
				return answer
			}
			c.prepareRebalanceLocked(g, now, false)
		case StateEmpty:
			c.prepareRebalanceLocked(g, now, true)
		}
	}
	m.joinWaiter = answer
	c.maybeCompleteJoinLocked(g, now)
	return answer
}

// rejoinStaticLocked: a static member restarted and joins with its instance
// id but no member id. It gets a new member id in place of the old one and
// the current assignment, without a rebalance (KIP-345).
func (c *Coordinator) rejoinStaticLocked(g *group, old *member, req JoinRequest, answer chan JoinResult, now time.Time) <-chan JoinResult {
	delete(g.members, old.id)
	if old.joinWaiter != nil {
		old.joinWaiter <- JoinResult{Err: kerr.FencedInstanceID, MemberID: old.id, Generation: -1}
	}
	if old.syncWaiter != nil {
		old.syncWaiter <- SyncResult{Err: kerr.FencedInstanceID}
	}
	m := &member{id: newMemberID(req.ClientID), assignment: old.assignment}
	m.update(req, now)
	g.members[m.id] = m
	if g.leader == old.id {
		g.leader = m.id
	}
	if g.state == StateStable && sameProtocols(old.protocols, req.Protocols) {
		answer <- g.joinResult(m)
		return answer
	}
	m.joinWaiter = answer
	c.prepareRebalanceLocked(g, now, false)
	c.maybeCompleteJoinLocked(g, now)
	return answer
}

func (m *member) update(req JoinRequest, now time.Time) {
	m.instanceID, m.clientID, m.clientHost = req.InstanceID, req.ClientID, req.ClientHost
	m.protocols = req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.lastHeartbeat = now
}

func sameProtocols(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Metadata) != string(b[i].Metadata) {
			return false
		}
	}
	return true
}

func (g *group) memberByInstance(instanceID string) *member {
	for _, m := range g.members {
		if m.instanceID != nil && *m.instanceID == instanceID {
			return m
		}
	}
	return nil
}

// supportsAny reports whether every current member supports one of protocols.
func (g *group) supportsAny(protocols []Protocol) bool {
	for _, p := range protocols {
		all := true
		for _, m := range g.members {
			all = all && m.supports(p.Name)
		}
		if all {
			return true
		}
	}
	return false
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

// prepareRebalanceLocked starts a join phase if none is under way. A group
// that was empty waits the initial rebalance delay for more members.
func (c *Coordinator) prepareRebalanceLocked(g *group, now time.Time, newMember bool) {
	if g.state == StatePreparingRebalance {
		if g.initialDelay && newMember {
			// Each new member during the initial delay extends it, up to
			// the rebalance timeout from the start.
			g.joinDeadline = minTime(now.Add(c.initialRebalanceDelay), g.joinStarted.Add(g.maxRebalanceTimeout()))
		}
		return
	}
	wasEmpty := g.state == StateEmpty
	g.assignmentWrite = nil // an assignment being written is for the generation that ends
	for _, m := range g.members {
		if m.syncWaiter != nil {
			m.syncWaiter <- SyncResult{Err: kerr.RebalanceInProgress}
			m.syncWaiter = nil
		}
	}
	g.setState(StatePreparingRebalance, now)
	g.joinStarted = now
	g.initialDelay = wasEmpty && c.initialRebalanceDelay > 0
	if g.initialDelay {
		g.joinDeadline = minTime(now.Add(c.initialRebalanceDelay), now.Add(g.maxRebalanceTimeout()))
	} else {
		g.joinDeadline = now.Add(g.maxRebalanceTimeout())
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (g *group) maxRebalanceTimeout() time.Duration {
	longest := time.Duration(0)
	for _, m := range g.members {
		longest = max(longest, m.rebalanceTimeout)
	}
	return longest
}

func (g *group) setState(s State, now time.Time) {
	g.state = s
	g.stateChangedTime = now
}

// maybeCompleteJoinLocked ends the join phase when every member has joined
// (and the initial delay is over), or when the deadline has passed: members
// that did not join are removed, the generation advances, and every member
// waiting gets its answer.
func (c *Coordinator) maybeCompleteJoinLocked(g *group, now time.Time) {
	if g.state != StatePreparingRebalance {
		return
	}
	allJoined := true
	for _, m := range g.members {
		allJoined = allJoined && m.joinWaiter != nil
	}
	deadlinePassed := !now.Before(g.joinDeadline)
	if !deadlinePassed && (!allJoined || g.initialDelay) {
		return
	}
	for id, m := range g.members {
		if m.joinWaiter == nil {
			delete(g.members, id) // did not rejoin in time
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(StateEmpty, now)
		c.background = append(c.background, backgroundWrite{group: g.name, write: c.recordGroupLocked(g, now)})
		return
	}
	g.protocol = g.selectProtocol()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.firstMemberID()
	}
	g.setState(StateCompletingRebalance, now)
	for _, m := range g.members {
		m.assignment = nil
		m.lastHeartbeat = now
		m.joinWaiter <- g.joinResult(m)
		m.joinWaiter = nil
	}
}

func (g *group) firstMemberID() string { return g.sortedMemberIDs()[0] }

// sortedMemberIDs lists the member ids in a fixed order.
func (g *group) sortedMemberIDs() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// selectProtocol picks the protocol every member supports that the members
// rank highest, counting one vote per member for its most preferred
// candidate, as Kafka does; ties go to the leader's preference order.
func (g *group) selectProtocol() string {
	var candidates []string
	reference := g.members[g.leader]
	if reference == nil {
		reference = g.members[g.firstMemberID()]
	}
	for _, p := range reference.protocols {
		all := true
		for _, m := range g.members {
			all = all && m.supports(p.Name)
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := make(map[string]int)
	for _, m := range g.members {
		for _, p := range m.protocols {
			if containsString(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, name := range candidates {
		if votes[name] > votes[best] {
			best = name
		}
	}
	return best
}

func containsString(values []string, v string) bool {
	for _, x := range values {
		if x == v {
			return true
		}
	}
	return false
}

// joinResult is the answer for m in the current generation.
func (g *group) joinResult(m *member) JoinResult {
	r := JoinResult{MemberID: m.id, Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, LeaderID: g.leader}
	if m.id == g.leader {
		for _, id := range g.sortedMemberIDs() {
			other := g.members[id]
			r.Members = append(r.Members, Member{MemberID: id, InstanceID: other.instanceID, Metadata: other.metadataFor(g.protocol)})
		}
	}
	return r
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// Sync handles SyncGroup. Followers that arrive before the leader wait for
// its assignments. The leader's assignments are written to the offsets log
// (outside the lock) before anyone gets them; if that fails, every member
// waiting gets COORDINATOR_NOT_AVAILABLE and the group rebalances, as
// Kafka's does.
func (c *Coordinator) Sync(req SyncRequest) <-chan SyncResult {
	answer := make(chan SyncResult, 1)
	c.mu.Lock()
	g, write := c.syncLocked(req, answer, c.clock.Now())
	_ = c.unlockAndWrite() // logs its failures
	if write == nil {
		return answer
	}
	err := c.offsets.durable(write)
	if err != nil {
		c.logWriteFailure("the group's assignment was not written; its members rebalance", g.name, err)
	}
	c.mu.Lock()
	c.assignmentWrittenLocked(g, write, err, c.clock.Now())
	_ = c.unlockAndWrite()
	return answer
}

// syncLocked answers a SyncGroup, or registers it to be answered. It
// returns the leader's assignment write, queued, when this is the leader's.
func (c *Coordinator) syncLocked(req SyncRequest, answer chan SyncResult, now time.Time) (*group, *pendingWrite) {
	g, m, err := c.memberLocked(req.Group, req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		answer <- SyncResult{Err: err}
		return nil, nil
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		answer <- SyncResult{Err: kerr.InconsistentGroupProtocol}
		return nil, nil
	}
	switch g.state {
	case StatePreparingRebalance:
		answer <- SyncResult{Err: kerr.RebalanceInProgress}
	case StateStable:
		answer <- SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
	case StateCompletingRebalance:
		m.lastHeartbeat = now
		m.syncWaiter = answer
		if m.id == g.leader && g.assignmentWrite == nil {
			for id, other := range g.members {
				other.assignment = req.Assignments[id]
			}
			g.assignmentWrite = c.recordGroupLocked(g, now)
			return g, g.assignmentWrite
		}
	default:
		answer <- SyncResult{Err: kerr.UnknownMemberID}
	}
	return nil, nil
}

// assignmentWrittenLocked ends a leader's SyncGroup once its assignment is
// written (err nil) or failed to be, unless the group moved on meanwhile.
func (c *Coordinator) assignmentWrittenLocked(g *group, write *pendingWrite, err error, now time.Time) {
	if c.groups[g.name] != g || g.assignmentWrite != write || g.state != StateCompletingRebalance {
		return
	}
	g.assignmentWrite = nil
	if err != nil {
		err = fmt.Errorf("%w: writing the assignment of group %q: %v", writeFailure(err), g.name, err)
		for _, m := range g.members {
			m.assignment = nil
			if m.syncWaiter != nil {
				m.syncWaiter <- SyncResult{Err: err}
				m.syncWaiter = nil
			}
		}
		c.prepareRebalanceLocked(g, now, false)
		return
	}
	g.setState(StateStable, now)
	for _, m := range g.members {
		if m.syncWaiter != nil {
			m.syncWaiter <- SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
			m.syncWaiter = nil
		}
	}
}

// memberLocked finds a member of a group for Sync and Heartbeat, checking
// the static instance id and the generation.
func (c *Coordinator) memberLocked(groupID, memberID string, instanceID *string, generation int32) (*group, *member, error) {
	g, ok := c.groups[groupID]
	if !ok || g.state == StateDead {
		return nil, nil, fmt.Errorf("%w: group %q has no members", kerr.UnknownMemberID, groupID)
	}
	m, ok := g.members[memberID]
	if !ok {
		if instanceID != nil && g.memberByInstance(*instanceID) != nil {
			return nil, nil, kerr.FencedInstanceID
		}
		return nil, nil, fmt.Errorf("%w: member %q is not in group %q", kerr.UnknownMemberID, memberID, groupID)
	}
	if instanceID != nil && (m.instanceID == nil || *m.instanceID != *instanceID) {
		return nil, nil, kerr.FencedInstanceID
	}
	if generation != g.generation {
		return nil, nil, fmt.Errorf("%w: generation %d, the group is at %d", kerr.IllegalGeneration, generation, g.generation)
	}
	return g, m, nil
}

// Heartbeat handles a member's heartbeat: it keeps the member's session
// alive and tells it when to rejoin.
func (c *Coordinator) Heartbeat(groupID, memberID string, instanceID *string, generation int32) error {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	g, m, err := c.memberLocked(groupID, memberID, instanceID, generation)
	if err != nil {
		if g, ok := c.groups[groupID]; ok && g.state == StatePreparingRebalance && g.members[memberID] != nil {
			g.members[memberID].lastHeartbeat = now
			return kerr.RebalanceInProgress // a member of the old generation must rejoin
		}
		return err
	}
	m.lastHeartbeat = now
	if g.state == StatePreparingRebalance {
		return kerr.RebalanceInProgress
	}
	return nil
}

// LeaveMember names a member leaving: by member id, or by instance id for
// static members.
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// Leave removes members (LeaveGroup). It returns an error per member.
func (c *Coordinator) Leave(groupID string, leaving []LeaveMember) ([]error, error) {
	now := c.clock.Now()
	c.mu.Lock()
	defer c.unlockAndWrite() // its failures are logged; the members left
	g, ok := c.groups[groupID]
	if !ok || g.state == StateDead {
		return nil, fmt.Errorf("%w: group %q has no members", kerr.UnknownMemberID, groupID)
	}
	results := make([]error, len(leaving))
	removed := false
	for i, l := range leaving {
		m := g.members[l.MemberID]
		if l.InstanceID != nil {
			byInstance := g.memberByInstance(*l.InstanceID)
			switch {
			case byInstance == nil:
				m = nil
			case l.MemberID != "" && byInstance.id != l.MemberID:
				results[i] = kerr.FencedInstanceID
				continue
			default:
				m = byInstance
			}
		}
		if m == nil {
			results[i] = fmt.Errorf("%w: member %q is not in group %q", kerr.UnknownMemberID, l.MemberID, groupID)
			continue
		}
		c.removeMemberLocked(g, m)
		removed = true
	}
	if removed {
		c.afterRemovalLocked(g, now)
	}
	return results, nil
}

func (c *Coordinator) removeMemberLocked(g *group, m *member) {
	delete(g.members, m.id)
	if m.joinWaiter != nil {
		m.joinWaiter <- JoinResult{Err: kerr.UnknownMemberID, MemberID: m.id, Generation: -1}
	}
	if m.syncWaiter != nil {
		m.syncWaiter <- SyncResult{Err: kerr.UnknownMemberID}
	}
}

// afterRemovalLocked rebalances the members that remain, or finishes the
// join phase without the removed ones.
func (c *Coordinator) afterRemovalLocked(g *group, now time.Time) {
	switch g.state {
	case StateStable, StateCompletingRebalance:
		c.prepareRebalanceLocked(g, now, false)
	}
	c.maybeCompleteJoinLocked(g, now)
}

// expiryCheckInterval is how often Tick looks for expired offsets.
const expiryCheckInterval = time.Minute

// Tick does the time-driven work as of the coordinator's clock: it ends
// join phases whose deadline passed, removes members whose session
// expired, and (once a minute) deletes the groups that stayed empty, with
// no commit, for the offsets retention, with their offsets (KIP-211). The
// server calls it every hundred milliseconds or so. A group whose deletion
// fails to be written stays, offsets and all, for the next check; the
// error is logged and returned.
func (c *Coordinator) Tick() error {
	now := c.clock.Now()
	c.mu.Lock()
	c.tickLocked(now)
	var expired []*deletion
	if now.Sub(c.lastExpiryCheck) >= expiryCheckInterval {
		c.lastExpiryCheck = now
		for _, g := range c.groups {
			if g.state == StateEmpty && now.Sub(g.idleSince()) > c.offsetsRetention {
				expired = append(expired, c.deleteGroupLocked(g, now))
			}
		}
	}
	errs := []error{c.unlockAndWrite()}
	for _, d := range expired {
		errs = append(errs, c.finishDeletion(d))
	}
	return errors.Join(errs...)
}

// idleSince is when an empty group last changed state or had an offset
// committed.
func (g *group) idleSince() time.Time {
	if g.lastCommit.After(g.stateChangedTime) {
		return g.lastCommit
	}
	return g.stateChangedTime
}

func (c *Coordinator) tickLocked(now time.Time) {
	for _, g := range c.groups {
		for id, expires := range g.pending {
			if now.After(expires) {
				delete(g.pending, id)
			}
		}
		sessionExpired := false
		for _, m := range g.members {
			if m.joinWaiter == nil && now.Sub(m.lastHeartbeat) > m.sessionTimeout {
				c.removeMemberLocked(g, m)
				sessionExpired = true
			}
		}
		if sessionExpired {
			c.afterRemovalLocked(g, now)
		}
		c.maybeCompleteJoinLocked(g, now)
	}
}

// GroupDescription is what DescribeGroups reports.
type GroupDescription struct {
	Group        string
	State        State
	ProtocolType string
	Protocol     string
	Members      []MemberDescription
}

// MemberDescription is one member in DescribeGroups.
type MemberDescription struct {
	MemberID   string
	InstanceID *string
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
}

// Describe describes a group; ok is false when the coordinator does not
// know it.
func (c *Coordinator) Describe(groupID string) (GroupDescription, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	g, ok := c.groups[groupID]
	if !ok {
		return GroupDescription{Group: groupID, State: StateDead}, false
	}
	d := GroupDescription{Group: g.name, State: g.state, ProtocolType: g.protocolType, Protocol: g.protocol}
	for _, id := range g.sortedMemberIDs() {
		m := g.members[id]
		d.Members = append(d.Members, MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.clientHost,
			Metadata: m.metadataFor(g.protocol), Assignment: m.assignment})
	}
	return d, true
}

// GroupListing is one group in ListGroups.
type GroupListing struct {
	Group        string
	ProtocolType string
	State        State
}

// List lists the groups, optionally only those in the given states.
func (c *Coordinator) List(states []string) []GroupListing {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []GroupListing
	for _, g := range c.groups {
		if g.state == StateDead || (len(states) > 0 && !containsString(states, string(g.state))) {
			continue
		}
		out = append(out, GroupListing{Group: g.name, ProtocolType: g.protocolType, State: g.state})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out
}
