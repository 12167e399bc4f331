package cluster

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/storage"
)

// topicConfigDef is one topic-level config this broker supports, under
// Kafka's name, with the broker-wide setting that gives its default.
type topicConfigDef struct {
	name       string
	brokerName string // the broker config that sets the default (a synonym)
	brokerYAML string // that setting in kqbroker's YAML
	defaultOf  func(config.LogDefaults) string
	check      func(string) error
}

func intRule(min int64, what string) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < min {
			return fmt.Errorf("must be an integer %s", what)
		}
		return nil
	}
}

func oneOf(values ...string) func(string) error {
	return func(v string) error {
		for _, allowed := range values {
			if v == allowed {
				return nil
			}
		}
		return fmt.Errorf("must be one of %v", values)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// millis converts a config's milliseconds to a Duration, saturating where
// a Duration ends (about 292 years).
func millis(n int64) time.Duration {
	if n > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(n) * time.Millisecond
}

// topicConfigDefs, sorted by name.
var topicConfigDefs = []topicConfigDef{
	{"cleanup.policy", "log.cleanup.policy", "", func(config.LogDefaults) string { return "delete" },
		func(v string) error { _, err := parseCleanupPolicy(v); return err }},
	{"delete.retention.ms", "log.cleaner.delete.retention.ms", "", func(config.LogDefaults) string { return itoa(storage.DefaultDeleteRetention.Milliseconds()) },
		intRule(0, ">= 0")},
	{"flush.messages", "log.flush.interval.messages", "log.flush_messages", func(l config.LogDefaults) string {
		if l.FlushMessages == 0 {
			return itoa(1<<63 - 1) // Kafka's "never"
		}
		return itoa(l.FlushMessages)
	}, intRule(1, ">= 1")},
	{"flush.ms", "log.flush.interval.ms", "log.flush_ms", func(l config.LogDefaults) string {
		if l.FlushMs == 0 {
			return itoa(1<<63 - 1)
		}
		return itoa(l.FlushMs)
	}, intRule(0, ">= 0")},
	{"index.interval.bytes", "log.index.interval.bytes", "log.index_interval_bytes", func(l config.LogDefaults) string { return itoa(int64(l.IndexIntervalBytes)) },
		intRule(1, ">= 1")},
	{"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "", func(config.LogDefaults) string { return itoa(math.MaxInt64) },
		intRule(1, ">= 1")},
	{"max.message.bytes", "message.max.bytes", "log.max_message_bytes", func(l config.LogDefaults) string { return itoa(int64(l.MaxMessageBytes)) },
		intRule(64, ">= 64")},
	{"message.timestamp.type", "log.message.timestamp.type", "", func(config.LogDefaults) string { return "CreateTime" },
		oneOf("CreateTime", "LogAppendTime")},
	{"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "", func(config.LogDefaults) string {
		return strconv.FormatFloat(storage.DefaultMinCleanableDirtyRatio, 'g', -1, 64)
	}, func(v string) error {
		if f, err := strconv.ParseFloat(v, 64); err != nil || !(f >= 0 && f <= 1) {
			return fmt.Errorf("must be a number between 0 and 1")
		}
		return nil
	}},
	{"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "", func(config.LogDefaults) string { return "0" },
		intRule(0, ">= 0")},
	{"min.insync.replicas", "min.insync.replicas", "", func(config.LogDefaults) string { return "1" },
		intRule(1, ">= 1 (a topic of replication factor 2 or more is created with 2)")},
	{"retention.bytes", "log.retention.bytes", "log.retention_bytes", func(l config.LogDefaults) string { return itoa(l.RetentionBytes) },
		intRule(-1, ">= -1 (-1: no limit)")},
	{"retention.ms", "log.retention.ms", "log.retention_ms", func(l config.LogDefaults) string { return itoa(l.RetentionMs) },
		intRule(-1, ">= -1 (-1: keep forever)")},
	{"segment.bytes", "log.segment.bytes", "log.segment_bytes", func(l config.LogDefaults) string { return itoa(l.SegmentBytes) },
		func(v string) error {
			if err := intRule(1024, "between 1024 and 2147483647")(v); err != nil {
				return err
			}
			if n, _ := strconv.ParseInt(v, 10, 64); n > 1<<31-1 {
				return fmt.Errorf("must be an integer between 1024 and 2147483647")
			}
			return nil
		}},
	{"segment.ms", "log.roll.ms", "log.segment_ms", func(l config.LogDefaults) string { return itoa(l.SegmentMs) },
		intRule(1, ">= 1")},
	{"unclean.leader.election.enable", "unclean.leader.election.enable", "", func(config.LogDefaults) string { return "false" },
		oneOf("true", "false")},
}

// parseCleanupPolicy reads cleanup.policy: delete, compact, or both as a
// comma-separated list in either order (Kafka's list syntax).
func parseCleanupPolicy(v string) (storage.CleanupPolicy, error) {
	var compact, remove bool
	for _, part := range strings.Split(v, ",") {
		switch strings.TrimSpace(part) {
		case "compact":
			compact = true
		case "delete":
			remove = true
		default:
			return 0, fmt.Errorf("must be delete, compact, or compact,delete")
		}
	}
	switch {
	case compact && remove:
		return storage.CleanupCompactDelete, nil
	case compact:
		return storage.CleanupCompact, nil
	}
	return storage.CleanupDelete, nil
}

func findTopicConfig(name string) (topicConfigDef, bool) {
	i := sort.Search(len(topicConfigDefs), func(i int) bool { return topicConfigDefs[i].name >= name })
	if i < len(topicConfigDefs) && topicConfigDefs[i].name == name {
		return topicConfigDefs[i], true
	}
	return topicConfigDef{}, false
}

// checkTopicConfigs validates overrides; the error is INVALID_CONFIG with
// the config's name, value and rule.
func checkTopicConfigs(configs map[string]string) error {
	names := make([]string, 0, len(configs))
	for name := range configs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		def, ok := findTopicConfig(name)
		if !ok {
			return fmt.Errorf("%w: unknown topic config %q; supported: %v", kerr.InvalidConfig, name, TopicConfigNames())
		}
		if err := def.check(configs[name]); err != nil {
			return fmt.Errorf("%w: %s=%q %v", kerr.InvalidConfig, name, configs[name], err)
		}
	}
	// As Kafka's LogConfig.validate: a record cannot have to wait longer
	// before it may be cleaned than before it must be.
	minLag, maxLag := int64(0), int64(math.MaxInt64)
	if v, ok := configs["min.compaction.lag.ms"]; ok {
		minLag, _ = strconv.ParseInt(v, 10, 64)
	}
	if v, ok := configs["max.compaction.lag.ms"]; ok {
		maxLag, _ = strconv.ParseInt(v, 10, 64)
	}
	if minLag > maxLag {
		return fmt.Errorf("%w: min.compaction.lag.ms=%d is above max.compaction.lag.ms=%d; lower the first or raise the second", kerr.InvalidConfig, minLag, maxLag)
	}
	return nil
}

// TopicConfigNames lists the supported topic configs.
func TopicConfigNames() []string {
	names := make([]string, len(topicConfigDefs))
	for i, def := range topicConfigDefs {
		names[i] = def.name
	}
	return names
}

// ConfigEntry is one topic config as DescribeConfigs reports it.
type ConfigEntry struct {
	Name      string
	Value     string
	IsDefault bool   // not set on the topic: the broker default applies
	Synonym   string // the broker config that gives the default
}

// effectiveConfigs returns every supported config of a topic with its value.
func effectiveConfigs(overrides map[string]string, defaults config.LogDefaults) []ConfigEntry {
	entries := make([]ConfigEntry, 0, len(topicConfigDefs))
	for _, def := range topicConfigDefs {
		value, set := overrides[def.name]
		if !set {
			value = def.defaultOf(defaults)
		}
		entries = append(entries, ConfigEntry{Name: def.name, Value: value, IsDefault: !set, Synonym: def.brokerName})
	}
	return entries
}

// topicSettings is what the broker does with a topic's configs.
type topicSettings struct {
	log             storage.Config
	maxMessageBytes int32
	logAppendTime   bool
	minISR          int
}

func settingsFor(overrides map[string]string, defaults config.LogDefaults) topicSettings {
	value := func(name string) string {
		for _, e := range effectiveConfigs(overrides, defaults) {
			if e.Name == name {
				return e.Value
			}
		}
		return ""
	}
	number := func(name string) int64 {
		n, _ := strconv.ParseInt(value(name), 10, 64)
		return n
	}
	c := storage.DefaultConfig()
	c.SegmentBytes = number("segment.bytes")
	c.SegmentAge = time.Duration(number("segment.ms")) * time.Millisecond
	c.IndexIntervalBytes = int(number("index.interval.bytes"))
	c.RetentionAge = time.Duration(number("retention.ms")) * time.Millisecond
	if number("retention.ms") < 0 {
		c.RetentionAge = -1
	}
	c.RetentionBytes = number("retention.bytes")
	c.Cleanup, _ = parseCleanupPolicy(value("cleanup.policy"))
	c.DeleteRetention = millis(number("delete.retention.ms"))
	c.MinCleanableDirtyRatio, _ = strconv.ParseFloat(value("min.cleanable.dirty.ratio"), 64)
	c.MinCompactionLag = millis(number("min.compaction.lag.ms"))
	if n := number("max.compaction.lag.ms"); n < math.MaxInt64 {
		c.MaxCompactionLag = millis(n)
	}
	c.Flush = storage.FlushPolicy{Mode: storage.FlushOnDurable}
	if defaults.FlushMode == config.FlushInterval {
		c.Flush.Mode = storage.FlushByInterval
	}
	if n := number("flush.messages"); n < 1<<63-1 {
		c.Flush.Messages = n
	}
	if n := number("flush.ms"); n < 1<<63-1 {
		c.Flush.Interval = time.Duration(n) * time.Millisecond
	}
	return topicSettings{
		log:             c,
		maxMessageBytes: int32(number("max.message.bytes")),
		logAppendTime:   value("message.timestamp.type") == "LogAppendTime",
		minISR:          int(number("min.insync.replicas")),
	}
}
