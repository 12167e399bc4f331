// Package cluster holds the broker's metadata: its topics, their partitions
// and configs, and the identifiers it hands out. A single broker owns all of
// it; the metadata is a JSON file in the data directory, replaced atomically
// (temp file, fsync, rename, fsync directory) on every change.
//
// Each partition's records live in a storage.Log in <data>/<topic>-<n>/.
package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/group"
	"github.com/kqstack/kqstack/broker/storage"
)

const (
	metadataFile = "kqbroker-metadata.json"
	// producerIDBlock is how many producer ids are reserved per metadata
	// write; ids are never reused across restarts.
	producerIDBlock = 1000
	deletedSuffix   = ".deleted"
)

// TopicID is a topic's UUID.
type TopicID [16]byte

func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// Partition is one partition of a topic.
type Partition struct {
	Topic string
	Index int32
	Log   *storage.Log
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
	logger *slog.Logger

	mu             sync.RWMutex
	topics         map[string]*Topic
	byID           map[TopicID]*Topic
	clusterID      string
	nextProducerID int64
	producerIDEnd  int64 // ids below this are reserved in the metadata file

	groups *group.Coordinator
	// offsets is the internal __consumer_offsets log behind groups; it is
	// not a topic clients see.
	offsets *group.OffsetStore

	lock *dataDirLock // held from Open to Close

	stop chan struct{}
	done chan struct{}
}

// persisted is the metadata file.
type persisted struct {
	ClusterID      string           `json:"cluster_id"`
	NextProducerID int64            `json:"next_producer_id"`
	Topics         []persistedTopic `json:"topics"`
}

type persistedTopic struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Open loads the metadata in cfg.DataDir and opens every partition log,
// recovering those that were not closed cleanly. It starts the background
// loop that enforces retention and interval flushes. The data directory is
// locked first: a second broker on it gets a *DataDirInUseError before it
// opens anything.
func Open(cfg config.Config, clk clock.Clock, logger *slog.Logger) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	c, err := openDataDir(cfg, clk, logger)
	if err != nil {
		lock.release()
		return nil, err
	}
	c.lock = lock
	go c.maintain()
	return c, nil
}

// openDataDir is Open once the directory is locked.
func openDataDir(cfg config.Config, clk clock.Clock, logger *slog.Logger) (*Cluster, error) {
	c := &Cluster{cfg: cfg, clock: clk, logger: logger, topics: make(map[string]*Topic), byID: make(map[TopicID]*Topic),
		stop: make(chan struct{}), done: make(chan struct{})}
	var p persisted
	data, err := os.ReadFile(filepath.Join(cfg.DataDir, metadataFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
		p.ClusterID = cfg.ClusterID
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", metadataFile, err)
		}
	}
	if p.ClusterID == "" {
		p.ClusterID = newClusterID()
	}
	if cfg.ClusterID != "" && cfg.ClusterID != p.ClusterID {
		return nil, fmt.Errorf("config field cluster_id = %q, but the data directory %s belongs to cluster %q", cfg.ClusterID, cfg.DataDir, p.ClusterID)
	}
	c.clusterID = p.ClusterID
	c.nextProducerID, c.producerIDEnd = p.NextProducerID, p.NextProducerID
	if err := c.removeDeletedDirs(); err != nil {
		return nil, err
	}
	for _, pt := range p.Topics {
		t, err := c.openTopic(pt)
		if err != nil {
			c.closeLogs()
			return nil, err
		}
		c.topics[t.Name] = t
		c.byID[t.ID] = t
	}
	if err := c.persistLocked(); err != nil {
		c.closeLogs()
		return nil, err
	}
	offsetsConfig := settingsFor(nil, cfg.Log).log
	offsetsConfig.RetentionAge, offsetsConfig.RetentionBytes = -1, -1 // live offsets must not expire with old segments
	offsetsConfig.SegmentBytes = offsetsSegmentBytes
	c.offsets, err = group.OpenOffsetStore(filepath.Join(cfg.DataDir, consumerOffsetsDir), storage.Options{Clock: clk, Logger: logger, Config: offsetsConfig})
	if err != nil {
		c.closeLogs()
		return nil, fmt.Errorf("%s: %w", consumerOffsetsDir, err)
	}
	c.groups = group.NewCoordinator(clk, time.Duration(cfg.GroupInitialRebalanceDelayMs)*time.Millisecond,
		time.Duration(cfg.OffsetsRetentionMinutes)*time.Minute, c.offsets)
	return c, nil
}

// consumerOffsetsDir holds the group coordinator's offsets log.
const consumerOffsetsDir = "__consumer_offsets-0"

// offsetsSegmentBytes is Kafka's offsets.topic.segment.bytes: small
// segments let compaction free space.
const offsetsSegmentBytes = 100 << 20

// Groups is the consumer group coordinator.
func (c *Cluster) Groups() *group.Coordinator { return c.groups }

func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:]) // Kafka's form: 22 characters
}

func (c *Cluster) openTopic(pt persistedTopic) (*Topic, error) {
	var id TopicID
	raw, err := hex.DecodeString(pt.ID)
	if err != nil || len(raw) != len(id) {
		return nil, fmt.Errorf("%s: topic %q has a bad id %q", metadataFile, pt.Name, pt.ID)
	}
	copy(id[:], raw)
	t := &Topic{Name: pt.Name, ID: id, Configs: pt.Configs, settings: settingsFor(pt.Configs, c.cfg.Log)}
	if t.Configs == nil {
		t.Configs = map[string]string{}
	}
	for i := int32(0); i < pt.Partitions; i++ {
		p, err := c.openPartition(t, i)
		if err != nil {
			for _, opened := range t.Partitions {
				_ = opened.Log.Close()
			}
			return nil, err
		}
		t.Partitions = append(t.Partitions, p)
	}
	return t, nil
}

func (c *Cluster) partitionDir(topic string, index int32) string {
	return filepath.Join(c.cfg.DataDir, topic+"-"+strconv.Itoa(int(index)))
}

func (c *Cluster) openPartition(t *Topic, index int32) (*Partition, error) {
	log, err := storage.Open(c.partitionDir(t.Name, index), storage.Options{Clock: c.clock, Logger: c.logger, Config: t.settings.log})
	if err != nil {
		return nil, err
	}
	return &Partition{Topic: t.Name, Index: index, Log: log}, nil
}

// removeDeletedDirs finishes deletions a stop interrupted.
func (c *Cluster) removeDeletedDirs() error {
	entries, err := os.ReadDir(c.cfg.DataDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), deletedSuffix) {
			if err := os.RemoveAll(filepath.Join(c.cfg.DataDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// persistLocked writes the metadata file. Called with mu held for writing
// (or before the cluster is shared).
func (c *Cluster) persistLocked() error {
	p := persisted{ClusterID: c.clusterID, NextProducerID: c.producerIDEnd}
	for _, t := range c.topics {
		p.Topics = append(p.Topics, persistedTopic{Name: t.Name, ID: t.ID.String(), Partitions: int32(len(t.Partitions)), Configs: t.Configs})
	}
	sort.Slice(p.Topics, func(i, j int) bool { return p.Topics[i].Name < p.Topics[j].Name })
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return storage.WriteFileAtomic(storage.OSFS{}, filepath.Join(c.cfg.DataDir, metadataFile), append(data, '\n'))
}

// ClusterID is reported in Metadata and DescribeCluster.
func (c *Cluster) ClusterID() string { return c.clusterID }

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

// Partition returns one partition, or UNKNOWN_TOPIC_OR_PARTITION.
func (c *Cluster) Partition(topic string, index int32) (*Partition, error) {
	t, ok := c.Topic(topic)
	if !ok {
		return nil, c.UnknownTopicError(topic)
	}
	if index < 0 || int(index) >= len(t.Partitions) {
		return nil, fmt.Errorf("%w: topic %q has %d partitions, not %d", kerr.UnknownTopicOrPartition, topic, len(t.Partitions), index+1)
	}
	return t.Partitions[index], nil
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

// CreateTopic creates a topic with partitions partitions (-1: the broker
// default) and config overrides. With validateOnly it only checks.
func (c *Cluster) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	if err := CheckTopicName(name); err != nil {
		return nil, err
	}
	if partitions == -1 {
		partitions = c.cfg.DefaultPartitions
	}
	if partitions < 1 || partitions > 100000 {
		return nil, fmt.Errorf("%w: %d partitions; a topic needs between 1 and 100000", kerr.InvalidPartitions, partitions)
	}
	if err := checkTopicConfigs(configs); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, exists := c.topics[name]; exists {
		return nil, fmt.Errorf("%w: topic %q already exists", kerr.TopicAlreadyExists, name)
	}
	overrides := make(map[string]string, len(configs))
	for k, v := range configs {
		overrides[k] = v
	}
	t := &Topic{Name: name, Configs: overrides, settings: settingsFor(overrides, c.cfg.Log)}
	if validateOnly {
		t.Partitions = make([]*Partition, partitions)
		return t, nil
	}
	_, _ = rand.Read(t.ID[:])
	for i := int32(0); i < partitions; i++ {
		if err := c.clearStaleDir(name, i); err != nil {
			return nil, err
		}
		p, err := c.openPartition(t, i)
		if err != nil {
			for _, opened := range t.Partitions {
				_ = opened.Log.Close()
			}
			return nil, fmt.Errorf("%w: creating partition %d of %q: %v", kerr.KafkaStorageError, i, name, err)
		}
		t.Partitions = append(t.Partitions, p)
	}
	c.topics[name], c.byID[t.ID] = t, t
	if err := c.persistLocked(); err != nil {
		delete(c.topics, name)
		delete(c.byID, t.ID)
		return nil, fmt.Errorf("%w: writing metadata: %v", kerr.KafkaStorageError, err)
	}
	c.logger.Info("created topic", "topic", name, "partitions", partitions, "configs", overrides)
	return t, nil
}

// clearStaleDir moves aside a partition directory that no topic owns (left
// by a lost metadata file), so a new topic never inherits old records.
func (c *Cluster) clearStaleDir(topic string, index int32) error {
	dir := c.partitionDir(topic, index)
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	c.logger.Warn("removing a partition directory no topic owns", "dir", dir)
	aside := dir + deletedSuffix
	if err := os.Rename(dir, aside); err != nil {
		return err
	}
	return os.RemoveAll(aside)
}

// DeleteTopic deletes a topic and its data.
func (c *Cluster) DeleteTopic(name string) error {
	if err := c.deleteTopic(name); err != nil {
		return err
	}
	// As Kafka does: committed offsets of a deleted topic go with it, so a
	// topic created again under the name does not inherit them.
	if err := c.groups.TopicDeleted(name); err != nil {
		c.logger.Error("removing the deleted topic's committed offsets", "topic", name, "err", err)
	}
	return nil
}

func (c *Cluster) deleteTopic(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.topics[name]
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
	}
	delete(c.topics, name)
	delete(c.byID, t.ID)
	for _, p := range t.Partitions {
		_ = p.Log.Close()
		// Renamed first: a stop before the metadata write leaves the topic
		// listed with its data; after it, the leftovers are removed at start.
		if err := os.Rename(p.Log.Dir(), p.Log.Dir()+deletedSuffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.logger.Error("moving a deleted partition aside", "dir", p.Log.Dir(), "err", err)
		}
	}
	if err := c.persistLocked(); err != nil {
		return fmt.Errorf("%w: writing metadata: %v", kerr.KafkaStorageError, err)
	}
	for _, p := range t.Partitions {
		if err := os.RemoveAll(p.Log.Dir() + deletedSuffix); err != nil {
			c.logger.Error("removing a deleted partition", "dir", p.Log.Dir(), "err", err)
		}
	}
	c.logger.Info("deleted topic", "topic", name)
	return nil
}

// CreatePartitions grows a topic to count partitions.
func (c *Cluster) CreatePartitions(name string, count int32, validateOnly bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.topics[name]
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
	}
	if count <= int32(len(t.Partitions)) {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count must be larger (partitions cannot be removed)", kerr.InvalidPartitions, name, len(t.Partitions))
	}
	if count > 100000 {
		return fmt.Errorf("%w: %d partitions is more than 100000", kerr.InvalidPartitions, count)
	}
	if validateOnly {
		return nil
	}
	grown := *t
	grown.Partitions = append([]*Partition(nil), t.Partitions...)
	for i := int32(len(t.Partitions)); i < count; i++ {
		if err := c.clearStaleDir(name, i); err != nil {
			return err
		}
		p, err := c.openPartition(&grown, i)
		if err != nil {
			return fmt.Errorf("%w: creating partition %d of %q: %v", kerr.KafkaStorageError, i, name, err)
		}
		grown.Partitions = append(grown.Partitions, p)
	}
	c.topics[name], c.byID[t.ID] = &grown, &grown
	if err := c.persistLocked(); err != nil {
		return fmt.Errorf("%w: writing metadata: %v", kerr.KafkaStorageError, err)
	}
	return nil
}

// SetTopicConfigs replaces a topic's config overrides (after checking them)
// and applies them to its logs.
func (c *Cluster) SetTopicConfigs(name string, configs map[string]string, validateOnly bool) error {
	if err := checkTopicConfigs(configs); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.topics[name]
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
	}
	if validateOnly {
		return nil
	}
	changed := *t
	changed.Configs = configs
	changed.settings = settingsFor(configs, c.cfg.Log)
	for _, p := range t.Partitions {
		if err := p.Log.SetConfig(changed.settings.log); err != nil {
			return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
		}
	}
	c.topics[name], c.byID[t.ID] = &changed, &changed
	return c.persistLocked()
}

// TopicConfigs returns every supported config of a topic with its value.
func (c *Cluster) TopicConfigs(t *Topic) []ConfigEntry { return effectiveConfigs(t.Configs, c.cfg.Log) }

// AllocateProducerID hands out a producer id never used before.
func (c *Cluster) AllocateProducerID() (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nextProducerID >= c.producerIDEnd {
		c.producerIDEnd = c.nextProducerID + producerIDBlock
		if err := c.persistLocked(); err != nil {
			c.producerIDEnd = c.nextProducerID
			return 0, err
		}
	}
	id := c.nextProducerID
	c.nextProducerID++
	return id, nil
}

// groupTickInterval is how often group sessions and join deadlines are
// checked; Kafka's timers are about as fine.
const groupTickInterval = 100 * time.Millisecond

// maintain runs the group coordinator's timers, and retention and interval
// flushes for every log.
func (c *Cluster) maintain() {
	defer close(c.done)
	logTicker := time.NewTicker(time.Duration(c.cfg.Log.CheckIntervalMs) * time.Millisecond)
	defer logTicker.Stop()
	groupTicker := time.NewTicker(groupTickInterval)
	defer groupTicker.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-groupTicker.C:
			c.groups.Tick()
			continue
		case <-logTicker.C:
		}
		if err := c.offsets.Log().Maintain(); err != nil && !errors.Is(err, storage.ErrClosed) {
			c.logger.Error("offsets log maintenance", "err", err)
		}
		if err := c.offsets.MaybeCompact(); err != nil && !errors.Is(err, storage.ErrClosed) {
			c.logger.Error("offsets log compaction", "err", err)
		}
		for _, t := range c.Topics() {
			for _, p := range t.Partitions {
				if err := p.Log.Maintain(); err != nil && !errors.Is(err, storage.ErrClosed) {
					c.logger.Error("log maintenance", "topic", t.Name, "partition", p.Index, "err", err)
				}
			}
		}
	}
}

// Close stops maintenance and closes every log cleanly.
func (c *Cluster) Close() error {
	close(c.stop)
	<-c.done
	err := c.closeLogs()
	c.lock.release()
	return err
}

func (c *Cluster) closeLogs() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.offsets != nil {
		errs = append(errs, c.offsets.Close())
	}
	for _, t := range c.topics {
		for _, p := range t.Partitions {
			errs = append(errs, p.Log.Close())
		}
	}
	return errors.Join(errs...)
}
