// Package cluster is the broker's view of the cluster: the metadata it
// applies from the metadata quorum (package quorum; <data>/__cluster_metadata)
// and the partition logs it hosts, each a storage.Log in
// <data>/<topic>-<n>/.
//
// Changes (topics, partitions, configs, producer-id blocks) are proposed to
// the quorum as metadata records and take effect when they are applied: the
// quorum calls back with each new image, and the cluster then opens, grows,
// reconfigures or removes its logs to match it (reconcile.go). A single
// broker is a quorum of one voter.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/controller"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/quorum"
	"github.com/kqstack/kqstack/broker/replica"
	"github.com/kqstack/kqstack/broker/storage"
)

const (
	deletedSuffix = ".deleted"
	// metadataDir holds the metadata quorum's log, vote and snapshots.
	metadataDir = "__cluster_metadata"
)

// TopicID is a topic's UUID.
type TopicID = metadata.TopicID

// Partition is one partition of a topic.
type Partition struct {
	Topic string
	Index int32
	// Log is the partition's log on this broker; nil when this broker
	// holds no replica of it.
	Log *storage.Log
	// Replica replicates Log (nil with it): it leads or follows.
	Replica *replica.Replica
	// state is the partition's assignment in the newest image.
	state atomic.Pointer[metadata.Partition]
}

// LeaderEpoch is the partition's current leader epoch.
func (p *Partition) LeaderEpoch() int32 { return p.State().LeaderEpoch }

// State is the partition's replicas, ISR, leader and epochs.
func (p *Partition) State() metadata.Partition {
	if s := p.state.Load(); s != nil {
		return *s
	}
	return metadata.Partition{Leader: -1}
}

// CheckLeaderEpoch applies Kafka's rule for a request's current leader
// epoch (KIP-320): -1 means the client does not know it; an older one is
// FENCED_LEADER_EPOCH (the client must refresh its metadata), a newer one
// UNKNOWN_LEADER_EPOCH (this broker has not caught up yet).
func (p *Partition) CheckLeaderEpoch(current int32) error {
	epoch := p.LeaderEpoch()
	switch {
	case current == -1 || current == epoch:
		return nil
	case current < epoch:
		return fmt.Errorf("%w: the request's leader epoch %d is older than the partition's %d; refresh the metadata", kerr.FencedLeaderEpoch, current, epoch)
	}
	return fmt.Errorf("%w: the request's leader epoch %d is newer than this broker's %d", kerr.UnknownLeaderEpoch, current, epoch)
}

// Topic is a topic and its partitions. Fields are read-only once the topic
// is published; changes replace the Topic in the cluster.
type Topic struct {
	Name       string
	ID         TopicID
	Configs    map[string]string // overrides of the broker defaults
	Partitions []*Partition
	settings   topicSettings
}

// MaxMessageBytes is the largest record batch the topic accepts.
func (t *Topic) MaxMessageBytes() int32 { return t.settings.maxMessageBytes }

// LogAppendTime reports whether batches are stamped with the broker's time.
func (t *Topic) LogAppendTime() bool { return t.settings.logAppendTime }

// Cluster is the broker's metadata and its partition logs. Safe for
// concurrent use; mu guards topics and metadata writes.
type Cluster struct {
	cfg    config.Config
	clock  clock.Clock
	fs     storage.FS
	logger *slog.Logger

	// quorum holds the metadata; its image is the truth, topics below the
	// logs this broker opened to match it.
	quorum *quorum.Quorum

	// mu guards topics and byID. The quorum's apply hook takes it; never
	// hold it while proposing.
	mu     sync.RWMutex
	topics map[string]*Topic
	byID   map[TopicID]*Topic
	// serving is set once the logs match the image at start: until then
	// the apply hook leaves reconciling to Open.
	serving bool

	producerIDs producerIDBlock

	// fetchers copy the partitions this broker follows from their leaders.
	fetchers *replica.Fetchers

	controllerState controllerState // in a cluster of several only
	// checkpointing is set while high watermarks are being saved.
	checkpointing atomic.Bool
	// left is set once Leave handed this broker's leaderships over: it
	// heartbeats no more, so the controller does not put it back.
	left atomic.Bool

	// coordinators coordinate the groups of the partitions of
	// __consumer_offsets this broker leads.
	coordinators *Coordinators
	// internal are the brokers' own topics, by name; set at Open.
	internal map[string]*internalTopic

	lock *dataDirLock // held from Open to Close

	stop           chan struct{}
	done           chan struct{}
	controllerDone chan struct{} // nil for a broker alone
}

// Open opens the metadata quorum and every partition log in cfg.DataDir,
// recovering those that were not closed cleanly, and starts the background
// loop that enforces retention and interval flushes. The data directory is
// locked first: a second broker on it gets a *DataDirInUseError before it
// opens anything. A data directory of an earlier kqbroker (its metadata in
// kqbroker-metadata.json) is taken over at the first start (migrate.go).
func Open(cfg config.Config, clk clock.Clock, logger *slog.Logger) (*Cluster, error) {
	return OpenWith(cfg, Deps{Clock: clk, Logger: logger})
}

// OpenWithController is Open with the controller listener already open
// (tests pass one on a free port); nil opens cfg.ControllerListen when
// there are voters.
func OpenWithController(cfg config.Config, clk clock.Clock, logger *slog.Logger, controllerListener net.Listener) (*Cluster, error) {
	return OpenWith(cfg, Deps{Clock: clk, Logger: logger, Controller: controllerListener})
}

// Deps are what a cluster runs on: the seams a test replaces.
type Deps struct {
	// Clock is the time of every decision and periodic loop (nil: the
	// wall clock).
	Clock clock.Clock
	// FS holds the data directory: partition logs, the metadata log, the
	// offsets log (nil: the OS's). The data directory's lock is the one
	// thing outside it: an flock(2) of the OS.
	FS     storage.FS
	Logger *slog.Logger // nil: slog's default
	// Controller is the controller listener, already open (nil: opened on
	// cfg.ControllerListen when there are voters).
	Controller net.Listener
}

// OpenWith is Open on deps.
func OpenWith(cfg config.Config, deps Deps) (*Cluster, error) {
	clk, logger, controllerListener := deps.Clock, deps.Logger, deps.Controller
	if clk == nil {
		clk = clock.System{}
	}
	if deps.FS == nil {
		deps.FS = storage.OSFS{}
	}
	if logger == nil {
		logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		if controllerListener != nil {
			_ = controllerListener.Close()
		}
		return nil, err
	}
	if err := deps.FS.MkdirAll(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	lock, err := &dataDirLock{}, error(nil)
	if _, onOS := deps.FS.(storage.OSFS); onOS { // another FS (tests) has no other process to keep out
		lock, err = lockDataDir(cfg.DataDir)
	}
	if err != nil {
		if controllerListener != nil {
			_ = controllerListener.Close()
		}
		return nil, err
	}
	c, err := openDataDir(cfg, clk, deps.FS, logger, controllerListener)
	if err != nil {
		lock.release()
		return nil, err
	}
	c.lock = lock
	go c.maintain()
	if c.controllerState.controller != nil {
		c.quorum.WatchLeader(c.leaderChanged)
		c.controllerDone = make(chan struct{})
		go func() {
			defer close(c.controllerDone)
			c.runController()
		}()
	}
	return c, nil
}

// openDataDir is Open once the directory is locked.
func openDataDir(cfg config.Config, clk clock.Clock, fsys storage.FS, logger *slog.Logger, controllerListener net.Listener) (_ *Cluster, err error) {
	c := &Cluster{cfg: cfg, clock: clk, fs: fsys, logger: logger, topics: make(map[string]*Topic), byID: make(map[TopicID]*Topic),
		stop: make(chan struct{}), done: make(chan struct{})}
	c.coordinators = newCoordinators(c)
	offsets := c.offsetsTopic()
	c.internal = map[string]*internalTopic{offsets.name: offsets}
	c.fetchers = replica.NewFetchers(cfg.NodeID, clk, logger, c.interBrokerAddress, cfg.ReassignmentThrottleBytesPerSec)
	if err := c.removeDeletedDirs(); err != nil {
		if controllerListener != nil {
			_ = controllerListener.Close()
		}
		return nil, err
	}
	quorumConfig := quorum.Config{NodeID: cfg.NodeID, Dir: filepath.Join(cfg.DataDir, metadataDir), FS: fsys, OnApply: c.applied, Logger: logger}
	if cfg.ControllerQuorumVoters != "" {
		c.controllerState.controller = controller.New(time.Duration(cfg.BrokerSessionTimeoutMs) * time.Millisecond)
		if cfg.AutoLeaderRebalanceEnable {
			c.controllerState.controller.RebalanceLeaders(time.Duration(cfg.LeaderImbalanceCheckIntervalSeconds) * time.Second)
		}
		c.controllerState.kick = make(chan struct{}, 1)
		quorumConfig.OnHeartbeat = c.heartbeatReceived
		quorumConfig.OnHeartbeatLost = c.heartbeatLost
		quorumConfig.OnHeartbeatSessionLost = func() { c.kickAfter(0) }
		if quorumConfig.Voters, err = config.ParseVoters(cfg.ControllerQuorumVoters); err != nil {
			return nil, err
		}
		if controllerListener == nil {
			if controllerListener, err = net.Listen("tcp", cfg.ControllerListen); err != nil {
				return nil, fmt.Errorf("cannot listen on controller_listen %s: %w", cfg.ControllerListen, err)
			}
		}
		quorumConfig.Listener = controllerListener
		quorumConfig.Advertise = cfg.ControllerListen // a non-voter's address; voters have theirs in the list
	}
	c.quorum, err = quorum.Open(quorumConfig)
	if err != nil {
		if controllerListener != nil {
			_ = controllerListener.Close()
		}
		return nil, fmt.Errorf("metadata quorum: %w", err)
	}
	defer func() {
		if err != nil {
			c.fetchers.Close()
			c.closeLogs()
			_ = c.quorum.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), quorumStartTimeout)
	defer cancel()
	if err := c.waitForQuorum(ctx); err != nil {
		return nil, err
	}
	if err := c.bootstrap(ctx); err != nil {
		return nil, err
	}
	if cfg.ClusterID != "" && cfg.ClusterID != c.ClusterID() {
		return nil, fmt.Errorf("config field cluster_id = %q, but the data directory %s belongs to cluster %q", cfg.ClusterID, cfg.DataDir, c.ClusterID())
	}
	if err := c.setPrivateOffsetsAside(); err != nil {
		return nil, fmt.Errorf("setting an earlier version's offsets log aside: %w", err)
	}
	if err := c.startServing(); err != nil {
		return nil, err
	}
	if err := c.takeOverPrivateOffsets(); err != nil {
		return nil, err
	}
	return c, nil
}

// quorumStartTimeout bounds the wait for the metadata quorum at start: the
// other voters may be starting too.
const quorumStartTimeout = 5 * time.Minute

// waitForQuorum waits until the quorum has a leader and this member has
// applied the log, saying every few seconds what it waits for.
func (c *Cluster) waitForQuorum(ctx context.Context) error {
	ready := make(chan error, 1)
	go func() { ready <- c.quorum.WaitReady(ctx) }()
	ticker := c.clock.NewTicker(5 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case err := <-ready:
			return err
		case <-ticker.C():
			c.logger.Info("waiting for the metadata quorum: a majority of the voters must be up", "voters", c.cfg.ControllerQuorumVoters)
		}
	}
}

// consumerOffsetsDir holds the group coordinator's offsets log.
const consumerOffsetsDir = "__consumer_offsets-0"

// offsetsSegmentBytes is Kafka's offsets.topic.segment.bytes: small
// segments let compaction free space.
const offsetsSegmentBytes = 100 << 20

// Groups is the consumer group coordinator.
func (c *Cluster) Groups() *Coordinators { return c.coordinators }

func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:]) // Kafka's form: 22 characters
}

func (c *Cluster) partitionDir(topic string, index int32) string {
	return filepath.Join(c.cfg.DataDir, topic+"-"+strconv.Itoa(int(index)))
}

func (c *Cluster) openPartition(t *Topic, index int32) (*Partition, error) {
	log, err := storage.Open(c.partitionDir(t.Name, index), storage.Options{FS: c.fs, Clock: c.clock, Logger: c.logger, Config: t.settings.log})
	if err != nil {
		return nil, err
	}
	r := replica.New(log, replica.Options{Self: c.cfg.NodeID, TopicID: t.ID, Topic: t.Name, Index: index, Clock: c.clock, Logger: c.logger,
		LagTimeMax: time.Duration(c.cfg.ReplicaLagTimeMaxMs) * time.Millisecond, Propose: c.proposePartitionChange})
	return &Partition{Topic: t.Name, Index: index, Log: log, Replica: r}, nil
}

// proposePartitionChange commits a leader's ISR change.
func (c *Cluster) proposePartitionChange(change metadata.PartitionChangeRecord) error {
	_, err := c.propose(metadata.Record{PartitionChange: &change})
	return err
}

// interBrokerAddress is where followers fetch from a broker.
func (c *Cluster) interBrokerAddress(id int32) (string, bool) {
	b, ok := c.quorum.Image().Broker(id)
	if !ok {
		return "", false
	}
	if b.InterBroker != "" {
		return b.InterBroker, true
	}
	return b.Advertise, b.Advertise != ""
}

// removeDeletedDirs finishes deletions a stop interrupted.
func (c *Cluster) removeDeletedDirs() error {
	names, err := c.fs.ReadDir(c.cfg.DataDir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if strings.HasSuffix(name, deletedSuffix) {
			if err := c.fs.RemoveAll(filepath.Join(c.cfg.DataDir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ClusterID is reported in Metadata and DescribeCluster.
func (c *Cluster) ClusterID() string { return c.quorum.Image().ClusterID }

// Config is the broker's configuration.
func (c *Cluster) Config() config.Config { return c.cfg }

// Topic returns a topic by name.
func (c *Cluster) Topic(name string) (*Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.topics[name]
	return t, ok
}

// TopicByID returns a topic by id.
func (c *Cluster) TopicByID(id TopicID) (*Topic, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t, ok := c.byID[id]
	return t, ok
}

// Topics returns every topic, sorted by name.
func (c *Cluster) Topics() []*Topic {
	c.mu.RLock()
	defer c.mu.RUnlock()
	topics := make([]*Topic, 0, len(c.topics))
	for _, t := range c.topics {
		topics = append(topics, t)
	}
	sort.Slice(topics, func(i, j int) bool { return topics[i].Name < topics[j].Name })
	return topics
}

// Partition returns one partition that this broker leads, or
// UNKNOWN_TOPIC_OR_PARTITION, or NOT_LEADER_OR_FOLLOWER (the client's
// metadata is stale: it refreshes and goes to the leader).
func (c *Cluster) Partition(topic string, index int32) (*Partition, error) {
	t, ok := c.Topic(topic)
	if !ok {
		return nil, c.UnknownTopicError(topic)
	}
	if index < 0 || int(index) >= len(t.Partitions) {
		return nil, fmt.Errorf("%w: topic %q has %d partitions, not %d", kerr.UnknownTopicOrPartition, topic, len(t.Partitions), index+1)
	}
	p := t.Partitions[index]
	return p, c.CheckLeader(p)
}

// CheckLeader is nil when this broker leads p and holds its log.
func (c *Cluster) CheckLeader(p *Partition) error {
	if p.Log == nil || p.State().Leader != c.cfg.NodeID {
		return fmt.Errorf("%w: broker %d does not lead %s-%d (its leader is %d)", kerr.NotLeaderForPartition, c.cfg.NodeID, p.Topic, p.Index, p.State().Leader)
	}
	return nil
}

// BrokerAddress is a broker clients can reach.
type BrokerAddress struct {
	NodeID int32
	Host   string
	Port   int32
	Fenced bool // out of service (stopped, or silent past its session)
}

// Brokers are the registered brokers in service, by id, with the
// addresses they advertise.
func (c *Cluster) Brokers() []BrokerAddress {
	return slices.DeleteFunc(c.RegisteredBrokers(), func(b BrokerAddress) bool { return b.Fenced })
}

// RegisteredBrokers are every registered broker, fenced ones included.
func (c *Cluster) RegisteredBrokers() []BrokerAddress {
	var brokers []BrokerAddress
	for _, b := range c.quorum.Image().Brokers() {
		host, portText, err := net.SplitHostPort(b.Advertise)
		port, _ := strconv.Atoi(portText)
		if err == nil {
			brokers = append(brokers, BrokerAddress{NodeID: b.ID, Host: host, Port: int32(port), Fenced: b.Fenced})
		}
	}
	return brokers
}

// ControllerID is the broker that leads the metadata quorum (-1 while
// there is none).
func (c *Cluster) ControllerID() int32 {
	id, _ := c.quorum.Leader()
	return id
}

// UnknownTopicError is UNKNOWN_TOPIC_OR_PARTITION for a missing topic,
// saying how to create it.
func (c *Cluster) UnknownTopicError(name string) error {
	hint := "create it first (kafka-topics.sh --create --topic " + name + ", or a CreateTopics request from kadm/kafka-go)"
	if !c.cfg.AutoCreateTopics {
		hint += " or set auto_create_topics: true in the broker config"
	}
	return fmt.Errorf("%w: topic %q does not exist; %s", kerr.UnknownTopicOrPartition, name, hint)
}

var legalTopicName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// CheckTopicName applies Kafka's rules for topic names.
func CheckTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: a topic name cannot be empty", kerr.InvalidTopicException)
	case name == "." || name == "..":
		return fmt.Errorf("%w: topic name %q is not allowed", kerr.InvalidTopicException, name)
	case len(name) > 249:
		return fmt.Errorf("%w: topic name is %d characters, at most 249 are allowed", kerr.InvalidTopicException, len(name))
	case name == "__consumer_offsets" || name == "__transaction_state":
		return fmt.Errorf("%w: %q is one of the broker's internal topics (names starting with \"__\" are kept for them); choose another name", kerr.InvalidTopicException, name)
	case !legalTopicName.MatchString(name):
		return fmt.Errorf("%w: topic name %q may contain only ASCII letters, digits, '.', '_' and '-'", kerr.InvalidTopicException, name)
	}
	return nil
}

// highWatermarkCheckpointInterval is how often replicated logs save their
// high watermark (Kafka's replica.high.watermark.checkpoint.interval.ms).
const highWatermarkCheckpointInterval = 5 * time.Second

// groupTickInterval is how often group sessions and join deadlines are
// checked; Kafka's timers are about as fine.
const groupTickInterval = 100 * time.Millisecond

// maintain runs the group coordinator's timers, and retention and interval
// flushes for every log.
func (c *Cluster) maintain() {
	defer close(c.done)
	logTicker := c.clock.NewTicker(time.Duration(c.cfg.Log.CheckIntervalMs) * time.Millisecond)
	defer logTicker.Stop()
	groupTicker := c.clock.NewTicker(groupTickInterval)
	defer groupTicker.Stop()
	// Kafka checks for lagging followers every half of the lag time, and
	// saves high watermarks every 5 s
	// (replica.high.watermark.checkpoint.interval.ms).
	replicaTicker := c.clock.NewTicker(time.Duration(c.cfg.ReplicaLagTimeMaxMs) * time.Millisecond / 2)
	defer replicaTicker.Stop()
	checkpointTicker := c.clock.NewTicker(highWatermarkCheckpointInterval)
	defer checkpointTicker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-groupTicker.C():
			if err := c.coordinators.tick(); err != nil {
				c.logger.Error("group timers", "err", err)
			}
			continue
		case <-replicaTicker.C():
			c.eachReplica(func(r *replica.Replica) { r.Tick() })
			continue
		case <-checkpointTicker.C():
			// Off this goroutine: an fsync per partition must not hold up
			// the group timers.
			if c.checkpointing.CompareAndSwap(false, true) {
				go func() {
					defer c.checkpointing.Store(false)
					c.eachReplica(func(r *replica.Replica) {
						if err := r.Log().SaveHighWatermark(); err != nil && !errors.Is(err, storage.ErrClosed) {
							c.logger.Error("saving a high watermark", "log", r.Log().Dir(), "err", err)
						}
					})
				}()
			}
			continue
		case <-logTicker.C():
		}
		for _, t := range c.Topics() {
			for _, p := range t.Partitions {
				if p.Log == nil {
					continue
				}
				if err := p.Log.Maintain(); err != nil && !errors.Is(err, storage.ErrClosed) {
					c.logger.Error("log maintenance", "topic", t.Name, "partition", p.Index, "err", err)
				}
			}
		}
	}
}

// eachReplica calls fn for every partition this broker holds.
func (c *Cluster) eachReplica(fn func(*replica.Replica)) {
	for _, t := range c.Topics() {
		for _, p := range t.Partitions {
			if p.Replica != nil {
				fn(p.Replica)
			}
		}
	}
}

// Close stops maintenance and closes every log cleanly.
func (c *Cluster) Close() error {
	close(c.stop)
	<-c.done
	if c.controllerDone != nil {
		<-c.controllerDone
	}
	c.Leave()
	c.fetchers.Close()
	// No more metadata is applied to the logs once they start closing.
	c.mu.Lock()
	c.serving = false
	c.mu.Unlock()
	err := c.quorum.Close()
	err = errors.Join(err, c.closeLogs())
	c.lock.release()
	return err
}

// Leave is a controlled shutdown: this broker is fenced in the metadata,
// and its leaderships move to other in-sync replicas, before it stops
// serving, so clients fail over with retriable errors only. New
// partitions are not placed on it. A broker alone has nobody to hand
// over to. Close calls it too; calling it first, before the listener
// closes, is what makes a rolling restart smooth.
func (c *Cluster) Leave() {
	if c.cfg.ControllerQuorumVoters == "" {
		return
	}
	others := false
	for _, b := range c.quorum.Image().Brokers() {
		others = others || (b.ID != c.cfg.NodeID && !b.Fenced)
	}
	if !others {
		// The last broker in service: nobody to hand over to, and, the
		// others gone, most likely no majority to commit a change.
		c.left.Store(true)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Brokers stopping one after the other can leave this one in a
	// minority that still counts another in service: with no quorum leader
	// for a second, nothing can commit, so it stops trying.
	go func() {
		ticker := c.clock.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		leaderless := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C():
			}
			if _, ok := c.quorum.Leader(); ok {
				leaderless = 0
			} else if leaderless++; leaderless >= 10 {
				c.logger.Warn("no metadata quorum leader: stopping without handing leaderships over")
				cancel()
				return
			}
		}
	}()
	for ctx.Err() == nil {
		c.left.Store(true) // no heartbeat may undo the fence
		records := controller.Leave(c.quorum.Image(), c.cfg.NodeID)
		if len(records) == 0 {
			return // fenced already
		}
		_, err := c.quorum.Propose(ctx, records...)
		var stale *metadata.StaleChangeError
		if err == nil || !errors.As(err, &stale) {
			if err != nil {
				c.logger.Warn("could not tell the metadata quorum this broker is stopping", "err", err)
			} else {
				c.logger.Info("left service: leaderships moved to other in-sync replicas", "partitions_changed", len(records)-1)
			}
			return
		}
		// A partition changed meanwhile: decide again on the newer image.
	}
}

func (c *Cluster) closeLogs() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	c.coordinators.close()
	for _, t := range c.topics {
		for _, p := range t.Partitions {
			if p.Log != nil {
				errs = append(errs, p.Log.Close())
			}
		}
	}
	return errors.Join(errs...)
}
