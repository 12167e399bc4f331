// Package config is kqbroker's configuration: defaults, a YAML file, and
// validation that names the bad field.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is everything kqbroker reads at start-up. YAML keys are the
// snake_case names below; a key the broker does not know is an error.
type Config struct {
	// NodeID is this broker's id in Metadata responses.
	NodeID int32 `yaml:"node_id"`
	// Listen is the host:port the Kafka listener binds.
	Listen string `yaml:"listen"`
	// AdminListen is the host:port of the admin HTTP server: /metrics
	// (Prometheus), /healthz, /readyz and the web console. Empty turns it
	// off.
	AdminListen string `yaml:"admin_listen"`
	// Advertise is the host:port clients are told to connect to; empty
	// means Listen.
	Advertise string `yaml:"advertise"`
	// ControllerQuorumVoters are the brokers that hold the metadata quorum,
	// in Kafka's form "1@host:port,2@host:port,3@host:port"
	// (controller.quorum.voters); each address is that broker's
	// controller_listen. Empty: this broker alone is the quorum, in memory.
	ControllerQuorumVoters string `yaml:"controller_quorum_voters"`
	// ControllerListen is the host:port this broker's quorum member
	// listens on; needed with voters.
	ControllerListen string `yaml:"controller_listen"`
	// BrokerHeartbeatIntervalMs is how often a broker of a cluster tells
	// the controller it is alive (broker.heartbeat.interval.ms).
	BrokerHeartbeatIntervalMs int64 `yaml:"broker_heartbeat_interval_ms"`
	// BrokerSessionTimeoutMs: a broker not heard from for this long is
	// fenced, and its partitions get other leaders
	// (broker.session.timeout.ms).
	BrokerSessionTimeoutMs int64 `yaml:"broker_session_timeout_ms"`
	// InterBrokerListen is an extra host:port the Kafka listener binds for
	// the other brokers' follower fetches; empty: they use listen.
	InterBrokerListen string `yaml:"inter_broker_listen"`
	// InterBrokerAdvertise is the host:port the other brokers fetch from;
	// empty: inter_broker_listen, else advertise.
	InterBrokerAdvertise string `yaml:"inter_broker_advertise"`
	// ReplicaLagTimeMaxMs: a follower that has not caught up with the
	// leader's log end for this long leaves the ISR
	// (replica.lag.time.max.ms).
	ReplicaLagTimeMaxMs int64 `yaml:"replica_lag_time_max_ms"`
	// AutoLeaderRebalanceEnable gives partitions their preferred leader
	// (the first replica) back once it is in sync again, checked every
	// LeaderImbalanceCheckIntervalSeconds (auto.leader.rebalance.enable,
	// leader.imbalance.check.interval.seconds).
	AutoLeaderRebalanceEnable           bool  `yaml:"auto_leader_rebalance_enable"`
	LeaderImbalanceCheckIntervalSeconds int64 `yaml:"leader_imbalance_check_interval_seconds"`
	// ReassignmentThrottleBytesPerSec bounds the bytes per second this
	// broker copies for replicas a reassignment adds to it (Kafka's
	// follower.replication.throttled.rate, which kafka-reassign-partitions.sh
	// --throttle sets); 0: no bound.
	ReassignmentThrottleBytesPerSec int64 `yaml:"reassignment_throttle_bytes_per_sec"`
	// DefaultReplicationFactor is default.replication.factor, for
	// auto-created topics and CreateTopics with -1; 0: min(3, brokers).
	DefaultReplicationFactor int32 `yaml:"default_replication_factor"`
	// DataDir holds the partition logs and the broker's metadata.
	DataDir string `yaml:"data_dir"`
	// ClusterID is reported to clients; empty means one is generated at the
	// first start and kept in the data directory.
	ClusterID string `yaml:"cluster_id"`

	// AutoCreateTopics creates a topic when a producer or a metadata
	// request names one that does not exist (auto.create.topics.enable).
	AutoCreateTopics bool `yaml:"auto_create_topics"`
	// DefaultPartitions is num.partitions: for auto-created topics and
	// CreateTopics with -1 partitions.
	DefaultPartitions int32 `yaml:"default_partitions"`
	// MaxRequestBytes bounds a request's size before it is read
	// (socket.request.max.bytes).
	MaxRequestBytes int32 `yaml:"max_request_bytes"`
	// QueuedMaxRequestBytes is the broker-wide budget for the bytes of
	// requests being read and handled (queued.max.request.bytes). A
	// connection whose next request does not fit waits until it does; a
	// quarter is kept for requests of at most 1 MiB, so large requests
	// cannot hold everything.
	QueuedMaxRequestBytes int64 `yaml:"queued_max_request_bytes"`
	// MaxConnections bounds the client connections open at once
	// (max.connections); further ones are closed as they are accepted.
	MaxConnections int32 `yaml:"max_connections"`
	// MaxConnectionsPerIP bounds the connections from one client address
	// (max.connections.per.ip).
	MaxConnectionsPerIP int32 `yaml:"max_connections_per_ip"`
	// ConnectionsMaxIdleMs closes a connection that sends nothing for this
	// long (connections.max.idle.ms).
	ConnectionsMaxIdleMs int64 `yaml:"connections_max_idle_ms"`

	// GroupInitialRebalanceDelayMs is group.initial.rebalance.delay.ms: how
	// long a new group waits for more members before its first generation.
	GroupInitialRebalanceDelayMs int64 `yaml:"group_initial_rebalance_delay_ms"`
	// OffsetsRetentionMinutes is offsets.retention.minutes: committed
	// offsets of a group that stays empty this long are deleted.
	OffsetsRetentionMinutes int64 `yaml:"offsets_retention_minutes"`
	// OffsetsTopicNumPartitions is offsets.topic.num.partitions: the
	// partitions of __consumer_offsets, over which groups are spread by
	// the hash of their id. It counts only when the topic is created.
	OffsetsTopicNumPartitions int32 `yaml:"offsets_topic_num_partitions"`
	// OffsetsTopicReplicationFactor is offsets.topic.replication.factor;
	// the topic is created with min(this, brokers in service).
	OffsetsTopicReplicationFactor int16 `yaml:"offsets_topic_replication_factor"`

	// Log defaults for topics (each can be overridden per topic).
	Log LogDefaults `yaml:"log"`
}

// LogDefaults are the broker-wide defaults of the topic configs.
type LogDefaults struct {
	RetentionMs        int64  `yaml:"retention_ms"`         // log.retention.ms; -1 keeps forever
	RetentionBytes     int64  `yaml:"retention_bytes"`      // log.retention.bytes; -1 no limit
	SegmentBytes       int64  `yaml:"segment_bytes"`        // log.segment.bytes
	SegmentMs          int64  `yaml:"segment_ms"`           // log.roll.ms
	MaxMessageBytes    int32  `yaml:"max_message_bytes"`    // message.max.bytes: the largest record batch
	IndexIntervalBytes int32  `yaml:"index_interval_bytes"` // log.index.interval.bytes
	FlushMode          string `yaml:"flush_mode"`           // "durable" (fsync before acks=all answers) or "interval"
	FlushMessages      int64  `yaml:"flush_messages"`       // log.flush.interval.messages; 0 off
	FlushMs            int64  `yaml:"flush_ms"`             // log.flush.interval.ms; 0 off
	// CheckIntervalMs is how often retention and interval flushes run.
	CheckIntervalMs int64 `yaml:"check_interval_ms"`
}

// Flush modes.
const (
	FlushDurable  = "durable"
	FlushInterval = "interval"
)

// Default is the configuration with nothing set: a single broker on
// 127.0.0.1:9092 that auto-creates topics with 3 partitions and keeps data
// 7 days, fsyncing before it acknowledges acks=all.
func Default() Config {
	return Config{
		NodeID:            1,
		Listen:            "127.0.0.1:9092",
		AdminListen:       "127.0.0.1:9644",
		DataDir:           "data",
		AutoCreateTopics:  true,
		DefaultPartitions: 3,
		MaxRequestBytes:   100 << 20,

		BrokerHeartbeatIntervalMs: 2000,
		BrokerSessionTimeoutMs:    9000,
		ReplicaLagTimeMaxMs:       30000,

		AutoLeaderRebalanceEnable:           true,
		LeaderImbalanceCheckIntervalSeconds: 300,

		QueuedMaxRequestBytes: 256 << 20,
		MaxConnections:        4096,
		MaxConnectionsPerIP:   1024,
		ConnectionsMaxIdleMs:  (10 * time.Minute).Milliseconds(),

		GroupInitialRebalanceDelayMs:  3000,
		OffsetsRetentionMinutes:       7 * 24 * 60,
		OffsetsTopicNumPartitions:     50,
		OffsetsTopicReplicationFactor: 3,
		Log: LogDefaults{
			RetentionMs:        (7 * 24 * time.Hour).Milliseconds(),
			RetentionBytes:     -1,
			SegmentBytes:       1 << 30,
			SegmentMs:          (7 * 24 * time.Hour).Milliseconds(),
			MaxMessageBytes:    1048588,
			IndexIntervalBytes: 4096,
			FlushMode:          FlushDurable,
			CheckIntervalMs:    5000,
		},
	}
}

// Load reads a YAML file over the defaults. An unknown key or a value of
// the wrong type is an error that names the key, its line and the type it
// needs.
func Load(path string) (Config, error) {
	c := Default()
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	var document yaml.Node
	if err := yaml.NewDecoder(f).Decode(&document); err != nil {
		if errors.Is(err, io.EOF) { // an empty file means all defaults
			return c, nil
		}
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if len(document.Content) == 0 {
		return c, nil
	}
	if err := decodeFields(document.Content[0], reflect.ValueOf(&c).Elem(), ""); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// AdvertisedAddress is the host:port given to clients.
func (c Config) AdvertisedAddress() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	return c.Listen
}

// InterBrokerAddress is the host:port the other brokers fetch from.
func (c Config) InterBrokerAddress() string {
	switch {
	case c.InterBrokerAdvertise != "":
		return c.InterBrokerAdvertise
	case c.InterBrokerListen != "":
		return c.InterBrokerListen
	}
	return c.AdvertisedAddress()
}

// Validate names the first field that is wrong and says what is allowed.
func (c Config) Validate() error {
	if c.NodeID < 0 {
		return fieldError("node_id", c.NodeID, "must be 0 or more")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fieldError("listen", c.Listen, "must be host:port, e.g. 127.0.0.1:9092")
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			return fieldError("admin_listen", c.AdminListen, "must be host:port, e.g. 127.0.0.1:9644, or empty to turn the admin server off")
		}
	}
	if c.Advertise != "" {
		host, port, err := net.SplitHostPort(c.Advertise)
		if err != nil || host == "" {
			return fieldError("advertise", c.Advertise, "must be host:port that clients can reach, e.g. kqbroker:9092")
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fieldError("advertise", c.Advertise, "needs a port between 1 and 65535")
		}
	}
	if c.DataDir == "" {
		return fieldError("data_dir", c.DataDir, "must name a directory")
	}
	if err := c.validateQuorum(); err != nil {
		return err
	}
	if c.BrokerHeartbeatIntervalMs < 1 || c.BrokerHeartbeatIntervalMs > maxDurationMs {
		return fieldError("broker_heartbeat_interval_ms", c.BrokerHeartbeatIntervalMs, "must be positive (Kafka's default: 2000)")
	}
	if c.BrokerSessionTimeoutMs <= c.BrokerHeartbeatIntervalMs || c.BrokerSessionTimeoutMs > maxDurationMs {
		return fieldError("broker_session_timeout_ms", c.BrokerSessionTimeoutMs, "must be longer than broker_heartbeat_interval_ms (Kafka's default: 9000)")
	}
	if c.ReplicaLagTimeMaxMs < 1 || c.ReplicaLagTimeMaxMs > maxDurationMs {
		return fieldError("replica_lag_time_max_ms", c.ReplicaLagTimeMaxMs, "must be positive (Kafka's default: 30000)")
	}
	if c.LeaderImbalanceCheckIntervalSeconds < 1 || c.LeaderImbalanceCheckIntervalSeconds > maxDurationMs/1000 {
		return fieldError("leader_imbalance_check_interval_seconds", c.LeaderImbalanceCheckIntervalSeconds, "must be positive (Kafka's default: 300)")
	}
	if c.ReassignmentThrottleBytesPerSec < 0 {
		return fieldError("reassignment_throttle_bytes_per_sec", c.ReassignmentThrottleBytesPerSec, "must be 0 (no bound) or a rate in bytes per second")
	}
	if c.DefaultReplicationFactor < 0 || c.DefaultReplicationFactor > 32 {
		return fieldError("default_replication_factor", c.DefaultReplicationFactor, "must be between 1 and 32, or 0 for min(3, brokers)")
	}
	for field, address := range map[string]string{"inter_broker_listen": c.InterBrokerListen, "inter_broker_advertise": c.InterBrokerAdvertise} {
		if address == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(address); err != nil {
			return fieldError(field, address, "must be host:port, or empty to use the client listener")
		}
	}
	if c.DefaultPartitions < 1 {
		return fieldError("default_partitions", c.DefaultPartitions, "must be at least 1")
	}
	if c.GroupInitialRebalanceDelayMs < 0 {
		return fieldError("group_initial_rebalance_delay_ms", c.GroupInitialRebalanceDelayMs, "must be 0 or more")
	}
	if c.OffsetsTopicNumPartitions < 1 || c.OffsetsTopicNumPartitions > 1000 {
		return fieldError("offsets_topic_num_partitions", c.OffsetsTopicNumPartitions, "must be between 1 and 1000")
	}
	if c.OffsetsTopicReplicationFactor < 1 || c.OffsetsTopicReplicationFactor > 32 {
		return fieldError("offsets_topic_replication_factor", c.OffsetsTopicReplicationFactor, "must be between 1 and 32")
	}
	if c.OffsetsRetentionMinutes < 1 {
		return fieldError("offsets_retention_minutes", c.OffsetsRetentionMinutes, "must be at least 1")
	}
	if c.MaxRequestBytes < 1024 {
		return fieldError("max_request_bytes", c.MaxRequestBytes, "must be at least 1024")
	}
	if c.QueuedMaxRequestBytes < int64(c.MaxRequestBytes)*4/3 {
		return fieldError("queued_max_request_bytes", c.QueuedMaxRequestBytes,
			fmt.Sprintf("must be at least 4/3 of max_request_bytes (%d): a request of max_request_bytes must fit in the three quarters open to large requests", int64(c.MaxRequestBytes)*4/3))
	}
	if c.MaxConnections < 1 {
		return fieldError("max_connections", c.MaxConnections, "must be at least 1")
	}
	if c.MaxConnectionsPerIP < 1 || c.MaxConnectionsPerIP > c.MaxConnections {
		return fieldError("max_connections_per_ip", c.MaxConnectionsPerIP, "must be between 1 and max_connections")
	}
	if c.ConnectionsMaxIdleMs < 1 || c.ConnectionsMaxIdleMs > maxDurationMs {
		return fieldError("connections_max_idle_ms", c.ConnectionsMaxIdleMs, fmt.Sprintf("must be between 1 and %d (a year)", maxDurationMs))
	}
	l := c.Log
	switch {
	case l.RetentionMs < -1 || l.RetentionMs == 0:
		return fieldError("log.retention_ms", l.RetentionMs, "must be positive, or -1 to keep data forever")
	case l.RetentionBytes < -1:
		return fieldError("log.retention_bytes", l.RetentionBytes, "must be 0 or more, or -1 for no limit")
	case l.SegmentBytes < 1024 || l.SegmentBytes > 1<<31-1:
		return fieldError("log.segment_bytes", l.SegmentBytes, "must be between 1024 and 2147483647")
	case l.SegmentMs < 1:
		return fieldError("log.segment_ms", l.SegmentMs, "must be positive")
	case l.MaxMessageBytes < 64:
		return fieldError("log.max_message_bytes", l.MaxMessageBytes, "must be at least 64")
	case l.IndexIntervalBytes < 1:
		return fieldError("log.index_interval_bytes", l.IndexIntervalBytes, "must be at least 1")
	case l.FlushMode != FlushDurable && l.FlushMode != FlushInterval:
		return fieldError("log.flush_mode", l.FlushMode, `must be "durable" or "interval"`)
	case l.FlushMessages < 0:
		return fieldError("log.flush_messages", l.FlushMessages, "must be 0 (off) or positive")
	case l.FlushMs < 0:
		return fieldError("log.flush_ms", l.FlushMs, "must be 0 (off) or positive")
	case l.CheckIntervalMs < 1:
		return fieldError("log.check_interval_ms", l.CheckIntervalMs, "must be positive")
	}
	return nil
}

// validateQuorum checks controller_quorum_voters and controller_listen.
func (c Config) validateQuorum() error {
	if c.ControllerQuorumVoters == "" {
		if c.ControllerListen != "" {
			return fieldError("controller_listen", c.ControllerListen, "is only used with controller_quorum_voters; set both, or neither for a single broker")
		}
		return nil
	}
	voters, err := ParseVoters(c.ControllerQuorumVoters)
	if err != nil {
		return fieldError("controller_quorum_voters", c.ControllerQuorumVoters, err.Error())
	}
	self := false
	for _, v := range voters {
		self = self || v.ID == c.NodeID
	}
	if _, _, err := net.SplitHostPort(c.ControllerListen); err != nil {
		return fieldError("controller_listen", c.ControllerListen, "must be host:port: the address this broker has in controller_quorum_voters, or, for a broker not listed there (a non-voting member), the address the others reach it at")
	}
	if host, port, _ := net.SplitHostPort(c.ControllerListen); !self && (host == "" || port == "0" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified()) {
		return fieldError("controller_listen", c.ControllerListen, "a broker not among the voters joins as a non-voting member at this address: it must name this host and a fixed port")
	}
	// Other brokers' clients are sent here: the address must name this
	// host and a port.
	host, port, err := net.SplitHostPort(c.AdvertisedAddress())
	if ip := net.ParseIP(host); err != nil || host == "" || port == "0" || (ip != nil && ip.IsUnspecified()) {
		field, value := "listen", c.Listen
		if c.Advertise != "" {
			field, value = "advertise", c.Advertise
		}
		return fieldError(field, value, "in a cluster the advertised address must name this host and a fixed port (set advertise: host:port), since clients of every broker are sent to it")
	}
	return nil
}

// maxDurationMs bounds settings in milliseconds that become a
// time.Duration: a year, far below where the nanoseconds overflow.
const maxDurationMs = 365 * 24 * 60 * 60 * 1000

func fieldError(field string, value any, rule string) error {
	return fmt.Errorf("config field %s = %v: %s", field, value, rule)
}
