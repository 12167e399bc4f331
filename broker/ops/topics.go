package ops

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TopicSummary is a row of topic list.
type TopicSummary struct {
	Name        string `json:"name"`
	Partitions  int    `json:"partitions"`
	Replication int    `json:"replication"`
	Records     int64  `json:"records"`    // sum of end - start offsets
	SizeBytes   int64  `json:"size_bytes"` // -1 when the brokers do not say
	Internal    bool   `json:"internal,omitempty"`
}

// PartitionDetail is one partition of topic describe.
type PartitionDetail struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"` // -1: none (offline)
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Offline     []int32 `json:"offline_replicas"`
	StartOffset int64   `json:"start_offset"`
	EndOffset   int64   `json:"end_offset"`
	SizeBytes   int64   `json:"size_bytes"`
}

// ConfigEntry is a topic config and where its value comes from.
type ConfigEntry struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"` // DYNAMIC_TOPIC_CONFIG for an override, else a default
}

// TopicDetail is what topic describe shows.
type TopicDetail struct {
	TopicSummary
	ID         string            `json:"id"`
	Partitions []PartitionDetail `json:"partition_details"`
	Configs    []ConfigEntry     `json:"configs"`
}

// Topics lists the topics with their records and sizes, sorted by name.
func (c *Client) Topics(ctx context.Context) ([]TopicSummary, error) {
	details, err := c.admin.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, c.explain(err)
	}
	names := details.Names()
	starts, ends, sizes := c.offsetsAndSizes(ctx, names...)
	out := make([]TopicSummary, 0, len(names))
	for _, name := range names {
		t := details[name]
		s := TopicSummary{Name: name, Partitions: len(t.Partitions), Replication: t.Partitions.NumReplicas(), Internal: t.IsInternal, SizeBytes: -1}
		for p := range t.Partitions {
			s.Records += max(ends[name][p]-starts[name][p], 0)
			if size, ok := sizes[name][p]; ok {
				if s.SizeBytes < 0 {
					s.SizeBytes = 0
				}
				s.SizeBytes += size
			}
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b TopicSummary) int { return compareStrings(a.Name, b.Name) })
	return out, nil
}

// offsetsAndSizes reads start and end offsets and on-disk sizes per partition.
func (c *Client) offsetsAndSizes(ctx context.Context, topics ...string) (starts, ends map[string]map[int32]int64, sizes map[string]map[int32]int64) {
	starts, ends, sizes = map[string]map[int32]int64{}, map[string]map[int32]int64{}, map[string]map[int32]int64{}
	if len(topics) == 0 {
		return
	}
	fill := func(dst map[string]map[int32]int64, listed kadm.ListedOffsets) {
		listed.Each(func(o kadm.ListedOffset) {
			if o.Err != nil {
				return
			}
			if dst[o.Topic] == nil {
				dst[o.Topic] = map[int32]int64{}
			}
			dst[o.Topic][o.Partition] = o.Offset
		})
	}
	// A partition without a leader (its broker down) fails alone: the
	// others are still shown.
	if listed, _ := c.admin.ListStartOffsets(ctx, topics...); listed != nil {
		fill(starts, listed)
	}
	if listed, _ := c.admin.ListEndOffsets(ctx, topics...); listed != nil {
		fill(ends, listed)
	}
	// A topic without partitions in the request asks for none of them, so
	// ask for every topic (nil) and keep the ones wanted.
	if dirs, err := c.admin.DescribeAllLogDirs(ctx, nil); err == nil {
		dirs.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if starts[p.Topic] == nil && ends[p.Topic] == nil {
					return // not asked for
				}
				if sizes[p.Topic] == nil {
					sizes[p.Topic] = map[int32]int64{}
				}
				// Each replica reports its copy: the partition's size is the
				// largest (the leader's, or a follower catching up).
				sizes[p.Topic][p.Partition] = max(sizes[p.Topic][p.Partition], p.Size)
			})
		})
	}
	return
}

// Topic describes one topic: partitions with offsets and sizes, configs.
func (c *Client) Topic(ctx context.Context, name string) (TopicDetail, error) {
	t, err := c.lookupTopic(ctx, name)
	if err != nil {
		return TopicDetail{}, err
	}
	starts, ends, sizes := c.offsetsAndSizes(ctx, name)
	d := TopicDetail{TopicSummary: TopicSummary{Name: name, Partitions: len(t.Partitions), Replication: t.Partitions.NumReplicas(), Internal: t.IsInternal, SizeBytes: 0}, ID: uuidString(t.ID)}
	for _, p := range t.Partitions.Sorted() {
		pd := PartitionDetail{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Replicas: p.Replicas, ISR: p.ISR, Offline: p.OfflineReplicas,
			StartOffset: starts[name][p.Partition], EndOffset: ends[name][p.Partition], SizeBytes: sizes[name][p.Partition]}
		d.Records += max(pd.EndOffset-pd.StartOffset, 0)
		d.SizeBytes += pd.SizeBytes
		d.Partitions = append(d.Partitions, pd)
	}
	configs, err := c.admin.DescribeTopicConfigs(ctx, name)
	if err == nil {
		if rc, err := configs.On(name, nil); err == nil && rc.Err == nil {
			for _, cfg := range rc.Configs {
				value := ""
				if cfg.Value != nil {
					value = *cfg.Value
				}
				d.Configs = append(d.Configs, ConfigEntry{Name: cfg.Key, Value: value, Source: cfg.Source.String()})
			}
		}
	}
	return d, nil
}

// RequireTopic says how to create the topic when it does not exist; one
// metadata request, for commands that only need it to be there.
func (c *Client) RequireTopic(ctx context.Context, name string) error {
	_, err := c.lookupTopic(ctx, name)
	return err
}

// uuidString writes a topic id as Kafka's tools do (Uuid.toString):
// URL-safe base64 without padding, 22 characters.
func uuidString(id kadm.TopicID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// EnsureTopic is RequireTopic for commands that write, as Kafka's console
// producer and kcat behave: a topic that does not exist is created by the
// broker, if it creates topics on first use (auto.create.topics.enable).
// It reports whether it had the topic created, and its partitions if the
// broker said (Kafka answers LEADER_NOT_AVAILABLE and none while it
// creates one). When the broker refuses, the error says how to create it.
func (c *Client) EnsureTopic(ctx context.Context, name string) (created bool, partitions int32, err error) {
	err = c.RequireTopic(ctx, name)
	var unknown *UnknownTopicError
	if !errors.As(err, &unknown) {
		return false, 0, err
	}
	if err := ValidTopicName(name); err != nil {
		return false, 0, err
	}
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	topic := kmsg.NewMetadataRequestTopic()
	topic.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, topic)
	resp, err := req.RequestWith(ctx, c.kgo)
	if err != nil {
		return false, 0, c.explain(err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != name {
			continue
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case err == nil, errors.Is(err, kerr.LeaderNotAvailable): // Kafka's answer while it creates one
			return true, int32(len(t.Partitions)), nil
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			return false, 0, &UnknownTopicError{Topic: name, AutoCreateOff: true}
		default:
			return false, 0, fmt.Errorf("creating topic %s on first use: %w", name, err)
		}
	}
	return false, 0, &UnknownTopicError{Topic: name, AutoCreateOff: true}
}

func (c *Client) lookupTopic(ctx context.Context, name string) (kadm.TopicDetail, error) {
	details, err := c.admin.ListTopicsWithInternal(ctx, name)
	if err != nil {
		return kadm.TopicDetail{}, c.explain(err)
	}
	t, ok := details[name]
	if !ok || errors.Is(t.Err, kerr.UnknownTopicOrPartition) {
		return kadm.TopicDetail{}, &UnknownTopicError{Topic: name}
	}
	if t.Err != nil {
		return kadm.TopicDetail{}, fmt.Errorf("topic %s: %w", name, t.Err)
	}
	return t, nil
}

// CreateTopic creates a topic; partitions or replication -1 take the
// broker's defaults. It returns the partitions created.
func (c *Client) CreateTopic(ctx context.Context, name string, partitions int32, replication int16, configs map[string]*string) (int32, error) {
	if err := ValidTopicName(name); err != nil {
		return 0, err
	}
	resp, err := c.admin.CreateTopic(ctx, partitions, replication, configs, name)
	if err != nil && !errors.Is(err, resp.Err) { // kadm returns the topic's error as err too
		return 0, c.explain(err)
	}
	if resp.Err != nil {
		if resp.ErrMessage != "" {
			return 0, fmt.Errorf("creating topic %s: %w: %s", name, resp.Err, resp.ErrMessage)
		}
		return 0, fmt.Errorf("creating topic %s: %w", name, resp.Err)
	}
	return resp.NumPartitions, nil
}

// ValidTopicName applies Kafka's rules: 1 to 249 characters of ASCII
// letters, digits, '.', '_' and '-', and not "." or "..".
func ValidTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("a topic needs a name")
	case len(name) > 249:
		return fmt.Errorf("topic name %q is %d characters long; the limit is 249", name, len(name))
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic name %q has %q; use only letters, digits, '.', '_' and '-'", name, r)
		}
	}
	return nil
}

// DeleteTopics deletes topics and says which failed.
func (c *Client) DeleteTopics(ctx context.Context, names ...string) error {
	resps, err := c.admin.DeleteTopics(ctx, names...)
	if err != nil {
		return c.explain(err)
	}
	var errs []error
	for _, name := range names {
		r, ok := resps[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("topic %s: no answer", name))
		case errors.Is(r.Err, kerr.UnknownTopicOrPartition):
			errs = append(errs, &UnknownTopicError{Topic: name})
		case r.Err != nil:
			errs = append(errs, fmt.Errorf("deleting topic %s: %w", name, r.Err))
		}
	}
	return errors.Join(errs...)
}

// AlterTopicConfig sets and deletes (back to the default) topic configs.
func (c *Client) AlterTopicConfig(ctx context.Context, name string, set map[string]string, reset []string) error {
	var alters []kadm.AlterConfig
	for k, v := range set {
		alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	for _, k := range reset {
		alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}
	if len(alters) == 0 {
		return errors.New("nothing to change: give --set key=value or --delete key")
	}
	resps, err := c.admin.AlterTopicConfigs(ctx, alters, name)
	if err != nil {
		return c.explain(err)
	}
	r, err := resps.On(name, nil)
	if err != nil {
		return err
	}
	if errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		return &UnknownTopicError{Topic: name}
	}
	if r.Err != nil {
		if r.ErrMessage != "" {
			return fmt.Errorf("altering %s: %w: %s", name, r.Err, r.ErrMessage)
		}
		return fmt.Errorf("altering %s: %w", name, r.Err)
	}
	return nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
