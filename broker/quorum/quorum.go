// Package quorum is the metadata quorum: a Raft log of metadata records
// (package metadata), replicated among the controller voters with
// hashicorp/raft, and applied in order on every member to the same image.
//
// One broker with no peers is a quorum of one voter: the same code path as
// a cluster, over an in-memory transport, so a single kqbroker opens no
// extra port and elects itself in a few milliseconds.
//
// On disk, in the quorum's directory (<data>/__cluster_metadata):
//
//	raft.log, raft.vote   the log and the vote (log_store.go)
//	snapshots/            raft's snapshots: the image written as records
//
// Records are proposed on the leader (Propose) and applied by every member
// through the FSM, which publishes each new image and calls the owner's
// OnApply hook with it, in log order, on one goroutine.
package quorum

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/storage"
)

// Voter is a member of the quorum: node id and controller address.
type Voter = config.Voter

// Config is a member's configuration.
type Config struct {
	NodeID int32
	// Dir holds the log, the vote and the snapshots.
	Dir string
	// FS is the file system of the log and the vote; nil is the OS's.
	FS storage.FS
	// Voters are the members that vote; empty means this node alone, in
	// memory (no listener). Otherwise Listener accepts the peers'
	// connections and this node's entry in Voters is the address they
	// dial. A node not in Voters joins as a non-voting member (it gets
	// the log, takes no part in elections) at Advertise.
	Voters    []Voter
	Listener  net.Listener
	Advertise string
	// OnApply is called with each new image and the records that made
	// it, in log order, on one goroutine; records is nil after a snapshot
	// was restored. It must not call Propose.
	OnApply func(image *metadata.Image, records []metadata.Record)
	// OnHeartbeat is called on the leader with each broker's heartbeat and
	// the heartbeat connection it came on (0: none, the leader's own).
	OnHeartbeat func(brokerID int32, epoch int64, session uint64)
	// OnHeartbeatLost is called on the leader when a broker's heartbeat
	// connection was closed or reset from its side (it may have died).
	OnHeartbeatLost func(brokerID int32, epoch int64, session uint64)
	// OnHeartbeatSessionLost is called on a broker when its own heartbeat
	// connection closed: it should heartbeat again now.
	OnHeartbeatSessionLost func()
	Logger                 *slog.Logger
}

// Quorum is this node's member of the metadata quorum.
type Quorum struct {
	cfg       Config
	raft      *raft.Raft
	fsm       *stateMachine
	logs      *logStore
	transport raft.Transport
	closed    chan struct{} // closed by Close: the join loop ends
	closeOnce sync.Once
	session   heartbeatSession // this broker's heartbeats to the leader
	sessions  atomic.Uint64    // the leader's count of heartbeat connections
	// startIndex is the last log index at open: the image is complete
	// once raft has handed over the entries up to it and the image holds
	// the last of them that carried records (raft's own entries,
	// configuration and no-ops, never reach the image).
	startIndex uint64
	// commits times the proposals made here (stats.go).
	commits commitLatency
}

// ErrNotLeader is returned by Propose on a member that does not lead.
var ErrNotLeader = errors.New("this node is not the metadata quorum's leader")

// Open opens (or, the first time, bootstraps) this node's member.
func Open(cfg Config) (*Quorum, error) {
	if cfg.FS == nil {
		cfg.FS = storage.OSFS{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	voters := cfg.Voters
	alone := len(voters) == 0
	if alone {
		voters = []Voter{{ID: cfg.NodeID, Addr: "local"}}
	}
	nonVoter := !containsVoter(voters, cfg.NodeID)
	if nonVoter && cfg.Advertise == "" {
		return nil, fmt.Errorf("node %d is not among the controller voters %v: as a non-voting member it needs its own controller address", cfg.NodeID, voters)
	}
	logs, err := openLogStore(cfg.FS, cfg.Dir)
	if err != nil {
		return nil, err
	}
	q := &Quorum{cfg: cfg, logs: logs, fsm: &stateMachine{onApply: cfg.OnApply}, closed: make(chan struct{})}
	q.session.onLost = cfg.OnHeartbeatSessionLost
	q.fsm.image.Store(metadata.Empty())
	if err := q.start(voters, alone, nonVoter); err != nil {
		_ = logs.Close()
		return nil, err
	}
	if nonVoter {
		go q.join(voters)
	}
	return q, nil
}

func (q *Quorum) start(voters []Voter, alone, nonVoter bool) error {
	cfg := q.cfg
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Info, DisableTime: true, Output: &slogWriter{logger: cfg.Logger, alone: alone}})
	raftConfig := raft.DefaultConfig()
	raftConfig.LocalID = raft.ServerID(strconv.Itoa(int(cfg.NodeID)))
	raftConfig.Logger = logger
	raftConfig.NoSnapshotRestoreOnStart = false
	if alone {
		// Nobody to wait for: elect at once.
		raftConfig.HeartbeatTimeout, raftConfig.ElectionTimeout = 10*time.Millisecond, 10*time.Millisecond
		raftConfig.LeaderLeaseTimeout = 10 * time.Millisecond
		_, q.transport = raft.NewInmemTransport(raft.ServerAddress(voters[0].Addr))
	} else {
		raftConfig.HeartbeatTimeout, raftConfig.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
		raftConfig.LeaderLeaseTimeout = 250 * time.Millisecond
		raftConfig.CommitTimeout = 5 * time.Millisecond
		if cfg.Listener == nil {
			return errors.New("a quorum with voters needs a listener (controller_listen)")
		}
		selfAddr := cfg.Advertise
		if !nonVoter {
			selfAddr = voters[indexOfVoter(voters, cfg.NodeID)].Addr
		}
		advertise, err := net.ResolveTCPAddr("tcp", selfAddr)
		if err != nil {
			return fmt.Errorf("controller address %s: %w", selfAddr, err)
		}
		q.transport = unpipelined{raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: newStreamLayer(cfg.Listener, advertise, q.serveMember), MaxPool: 3, Timeout: 2 * time.Second, Logger: logger,
			ServerAddressProvider: voterAddresses(voters),
		})}
	}
	// Raft writes its snapshots itself, on the OS's file system; on any
	// other FS (tests) they are kept in memory.
	var snapshots raft.SnapshotStore = raft.NewInmemSnapshotStore()
	if _, onOS := cfg.FS.(storage.OSFS); onOS {
		files, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, logger)
		if err != nil {
			return err
		}
		snapshots = files
	}
	existing, err := raft.HasExistingState(q.logs, q.logs, snapshots)
	if err != nil {
		return err
	}
	if !existing && !nonVoter { // a non-voter learns the configuration from the leader
		var servers []raft.Server
		for _, v := range voters {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(strconv.Itoa(int(v.ID))), Address: raft.ServerAddress(v.Addr)})
		}
		if err := raft.BootstrapCluster(raftConfig, q.logs, q.logs, snapshots, q.transport, raft.Configuration{Servers: servers}); err != nil {
			return fmt.Errorf("bootstrapping the metadata quorum: %w", err)
		}
	}
	if q.startIndex, err = q.logs.LastIndex(); err != nil {
		return err
	}
	if q.raft, err = raft.NewRaft(raftConfig, q.fsm, q.logs, q.logs, snapshots, q.transport); err != nil {
		return fmt.Errorf("starting the metadata quorum: %w", err)
	}
	return nil
}

// Image is the newest applied image.
func (q *Quorum) Image() *metadata.Image { return q.fsm.image.Load() }

// Leader returns the leader's node id, if one is known.
func (q *Quorum) Leader() (int32, bool) {
	_, id := q.raft.LeaderWithID()
	if id == "" {
		return -1, false
	}
	n, err := strconv.Atoi(string(id))
	return int32(n), err == nil
}

// WatchLeader calls fn with the leader's id (-1 during an election) each
// time this member sees the leadership change, until Close.
func (q *Quorum) WatchLeader(fn func(leader int32)) {
	observations := make(chan raft.Observation, 16)
	observer := raft.NewObserver(observations, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	q.raft.RegisterObserver(observer)
	go func() {
		defer q.raft.DeregisterObserver(observer)
		for {
			select {
			case <-q.closed:
				return
			case o := <-observations:
				id, err := strconv.Atoi(string(o.Data.(raft.LeaderObservation).LeaderID))
				if err != nil {
					id = -1
				}
				fn(int32(id))
			}
		}
	}()
}

// IsLeader reports whether this node leads.
func (q *Quorum) IsLeader() bool { return q.raft.State() == raft.Leader }

// WaitReady waits until a leader is known and everything the log held
// when it opened is applied, but for a tail the leader cut off: entries
// this member appended as a leader that lost its quorum were never
// committed, and the new leader replaces them.
func (q *Quorum) WaitReady(ctx context.Context) error {
	for {
		_, led := q.Leader()
		if led && q.caughtUp() {
			if !q.IsLeader() {
				return nil
			}
			// A new leader commits its term's first entry before earlier
			// ones count as committed: the barrier waits for that.
			if err := q.raft.Barrier(5 * time.Second).Error(); err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if !led {
				return fmt.Errorf("the metadata quorum has no leader yet (voters %v): %w", q.cfg.Voters, ctx.Err())
			}
			return fmt.Errorf("the metadata quorum's log is applied here up to index %d, of %d it held at start (%d now): %w",
				q.raft.AppliedIndex(), q.startIndex, q.logs.lastIndex(), ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// caughtUp reports whether this member applied what its log held at open
// (startIndex), or as much of it as the log still holds after a leader
// cut an uncommitted tail, and the image has the last of those entries
// that carried records.
func (q *Quorum) caughtUp() bool {
	target := min(q.startIndex, q.logs.lastIndex())
	if q.raft.AppliedIndex() < target {
		return false
	}
	// Below target everything is committed now, so the log's entries
	// there are final: the newest of them with records must be applied.
	return q.fsm.applied.Load() >= q.logs.lastCommandIndex(target)
}

// Propose appends records as one entry and returns the image once this
// member has applied it. On a member that does not lead, the entry is
// forwarded to the leader. A batch the image refuses returns the image's
// error (for example *metadata.TopicExistsError), also once this member
// has applied it.
func (q *Quorum) Propose(ctx context.Context, records ...metadata.Record) (*metadata.Image, error) {
	start := time.Now()
	data, err := metadata.EncodeBatch(records)
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		timeout = time.Until(deadline)
	}
	if !q.IsLeader() {
		// Forwarded, then answered once this member has applied it, so
		// the caller reads its own change. While no leader is known (an
		// election), it waits for one.
		index, err := q.forward(ctx, data)
		for errors.Is(err, ErrNotLeader) && ctx.Err() == nil && !q.IsLeader() {
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
			index, err = q.forward(ctx, data)
		}
		if index > 0 {
			// A refusal too: a caller told "the topic exists" finds it.
			if err := q.waitApplied(ctx, index); err != nil {
				return nil, err
			}
		}
		if err != nil {
			return nil, err
		}
		q.commits.observe(time.Since(start))
		return q.Image(), nil
	}
	future := q.raft.Apply(data, timeout)
	if err := future.Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return nil, fmt.Errorf("metadata quorum: %w", err)
	}
	switch result := future.Response().(type) {
	case *metadata.Image:
		q.commits.observe(time.Since(start))
		return result, nil
	case error:
		return nil, result
	}
	return nil, fmt.Errorf("metadata quorum: unexpected answer %T", future.Response())
}

// Snapshot writes a snapshot now (tests; raft also takes them itself).
func (q *Quorum) Snapshot() error { return q.raft.Snapshot().Error() }

// Close leaves the quorum: raft stops, the files close.
func (q *Quorum) Close() error {
	q.closeOnce.Do(func() { close(q.closed) })
	q.session.close()
	if q.IsLeader() && len(q.cfg.Voters) > 1 {
		// Hand the leadership over first: the others go on at once, and
		// learn that the last entries are committed, instead of waiting
		// out an election.
		if err := q.raft.LeadershipTransfer().Error(); err != nil {
			q.cfg.Logger.Info("could not hand the metadata quorum's leadership over before stopping", "err", err)
		}
	}
	err := q.raft.Shutdown().Error()
	if closer, ok := q.transport.(interface{ Close() error }); ok {
		_ = closer.Close()
	}
	return errors.Join(err, q.logs.Close())
}

// unpipelined is the network transport without pipelined replication:
// hashicorp/raft 1.7's pipeline can block its sender for good once its
// decoder stopped (a follower that answered late, or refused an entry,
// while more than 256 appends were in flight, a few every CommitTimeout):
// the leader then replicates no more to that follower and its Shutdown
// never returns (seen in CI, a broker's Close hung for 13 minutes).
// Raft falls back to one AppendEntries at a time per follower, each with
// the transport's timeout, which the metadata's small entries hardly
// notice.
type unpipelined struct{ *raft.NetworkTransport }

func (unpipelined) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

// voterAddresses finds the voters at the addresses this broker's own
// controller_quorum_voters gives, not those in the quorum's configuration
// (each voter's own): like Kafka's controller.quorum.voters, the list is
// each broker's view, so a broker can reach another through a proxy, a
// NAT or another name. Non-voters are where the configuration says.
type voterAddresses []Voter

func (v voterAddresses) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	for _, voter := range v {
		if strconv.Itoa(int(voter.ID)) == string(id) {
			return raft.ServerAddress(voter.Addr), nil
		}
	}
	return "", fmt.Errorf("server %s is not among this broker's voters", id)
}

func containsVoter(voters []Voter, id int32) bool { return indexOfVoter(voters, id) >= 0 }

func indexOfVoter(voters []Voter, id int32) int {
	for i, v := range voters {
		if v.ID == id {
			return i
		}
	}
	return -1
}

// stateMachine applies entries to the image (raft's FSM).
type stateMachine struct {
	image   atomic.Pointer[metadata.Image]
	onApply func(*metadata.Image, []metadata.Record)
	// applied is the raft index of the last entry in the image (raft's
	// own AppliedIndex moves when an entry is handed over, before it is
	// applied).
	applied atomic.Uint64
	mu      sync.Mutex // Apply and Restore never overlap; held for clarity
}

func (m *stateMachine) Apply(entry *raft.Log) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	defer m.applied.Store(entry.Index)
	records, err := metadata.DecodeBatch(entry.Data)
	if err != nil {
		return err
	}
	next, err := m.image.Load().Apply(records)
	if err != nil {
		return err // deterministic: every member refuses the same batch
	}
	m.image.Store(next)
	if m.onApply != nil {
		m.onApply(next, records)
	}
	return next
}

func (m *stateMachine) Snapshot() (raft.FSMSnapshot, error) {
	return imageSnapshot{image: m.image.Load(), index: m.applied.Load()}, nil
}

// Restore reads a snapshot: | index u64 | the image's records as an entry |
// (an empty image has no entry).
func (m *stateMachine) Restore(snapshot io.ReadCloser) error {
	defer snapshot.Close()
	data, err := io.ReadAll(io.LimitReader(snapshot, 1<<30))
	if err != nil {
		return err
	}
	if len(data) < 8 {
		return fmt.Errorf("metadata snapshot: %d bytes, too short", len(data))
	}
	index := binary.BigEndian.Uint64(data)
	image := metadata.Empty()
	if len(data) > 8 {
		records, err := metadata.DecodeBatch(data[8:])
		if err != nil {
			return fmt.Errorf("metadata snapshot: %w", err)
		}
		if image, err = image.Apply(records); err != nil {
			return fmt.Errorf("metadata snapshot: %w", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.image.Store(image)
	m.applied.Store(index)
	if m.onApply != nil {
		m.onApply(image, nil)
	}
	return nil
}

// imageSnapshot writes an image as the records that rebuild it.
type imageSnapshot struct {
	image *metadata.Image
	index uint64
}

func (s imageSnapshot) Persist(sink raft.SnapshotSink) error {
	data := binary.BigEndian.AppendUint64(nil, s.index)
	var err error
	if records := s.image.Records(); len(records) > 0 {
		var entry []byte
		if entry, err = metadata.EncodeBatch(records); err == nil {
			data = append(data, entry...)
		}
	}
	if err == nil {
		_, err = sink.Write(data)
	}
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (imageSnapshot) Release() {}

// slogWriter passes raft's log lines ("[WARN]  raft: message: k=v") to the
// broker's logger, a level lower than raft gives them: raft's info is
// state changes (debug here), and its warnings are elections and lost
// peers, the routine of a quorum at work (info). A lone voter's election
// at start is debug.
type slogWriter struct {
	logger *slog.Logger
	alone  bool
}

func (w *slogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	level := slog.LevelDebug
	for prefix, l := range map[string]slog.Level{"[WARN]": slog.LevelInfo, "[ERROR]": slog.LevelError} {
		if strings.HasPrefix(line, prefix) {
			level = l
		}
	}
	if _, message, ok := strings.Cut(line, "raft: "); ok {
		line = message
	}
	if w.alone && level == slog.LevelInfo {
		level = slog.LevelDebug
	}
	if strings.Contains(line, "using fallback address") {
		level = slog.LevelDebug // a non-voter, found where the configuration says: every message
	}
	w.logger.Log(context.Background(), level, line, "component", "metadata quorum")
	return len(p), nil
}
