package server

// DescribeConfigs (key 32), v0–v4.
//   v1: synonyms (the broker config behind each default), config source.
//   v3: config type and documentation.
//   v4: flexible.
// Topics report every supported topic config; the broker reports its
// settings, read-only (they come from its YAML file and flags).

import (
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/config"
)

func init() { register(32, 0, 4, handleDescribeConfigs) }

func configSource(e cluster.ConfigEntry) kmsg.ConfigSource {
	if e.IsDefault {
		return kmsg.ConfigSourceDefaultConfig
	}
	return kmsg.ConfigSourceDynamicTopicConfig
}

func handleDescribeConfigs(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	cl := c.server.cluster
	for _, rr := range r.Resources {
		resource := kmsg.NewDescribeConfigsResponseResource()
		resource.ResourceType, resource.ResourceName = rr.ResourceType, rr.ResourceName
		wanted := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t, ok := cl.Topic(rr.ResourceName)
			if !ok {
				err := fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, rr.ResourceName)
				resource.ErrorCode, resource.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			for _, e := range cl.TopicConfigs(t) {
				if !wanted(e.Name) {
					continue
				}
				entry := describedConfig(r, e.Name, e.Value, configSource(e), false)
				if r.IncludeSynonyms && e.Synonym != "" {
					synonym := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					synonym.Name, synonym.Value, synonym.Source = e.Synonym, entry.Value, kmsg.ConfigSourceStaticBrokerConfig
					entry.ConfigSynonyms = append(entry.ConfigSynonyms, synonym)
				}
				resource.Configs = append(resource.Configs, entry)
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(cl.Config().NodeID)) {
				err := fmt.Errorf("%w: broker %q is not this broker (%d)", kerr.InvalidRequest, rr.ResourceName, cl.Config().NodeID)
				resource.ErrorCode, resource.ErrorMessage = errorCode(err), errorMessage(err)
				break
			}
			for _, kv := range brokerConfigs(cl.Config()) {
				if wanted(kv[0]) {
					resource.Configs = append(resource.Configs, describedConfig(r, kv[0], kv[1], kmsg.ConfigSourceStaticBrokerConfig, true))
				}
			}
		default:
			err := fmt.Errorf("%w: resource type %d is not supported; use topic (2) or broker (4)", kerr.InvalidRequest, rr.ResourceType)
			resource.ErrorCode, resource.ErrorMessage = errorCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, resource)
	}
	return resp, nil
}

func describedConfig(r *kmsg.DescribeConfigsRequest, name, value string, source kmsg.ConfigSource, readOnly bool) kmsg.DescribeConfigsResponseResourceConfig {
	entry := kmsg.NewDescribeConfigsResponseResourceConfig()
	entry.Name, entry.Value, entry.ReadOnly = name, &value, readOnly
	entry.Source = source
	entry.IsDefault = source == kmsg.ConfigSourceDefaultConfig
	entry.ConfigType = kmsg.ConfigTypeString
	if _, err := strconv.ParseInt(value, 10, 64); err == nil {
		entry.ConfigType = kmsg.ConfigTypeLong
	}
	return entry
}

// brokerConfigs are the broker's settings under Kafka's names.
func brokerConfigs(c config.Config) [][2]string {
	i := func(n int64) string { return strconv.FormatInt(n, 10) }
	return [][2]string{
		{"advertised.listeners", "PLAINTEXT://" + c.AdvertisedAddress()},
		{"auto.create.topics.enable", strconv.FormatBool(c.AutoCreateTopics)},
		{"broker.id", i(int64(c.NodeID))},
		{"listeners", "PLAINTEXT://" + c.Listen},
		{"log.dirs", c.DataDir},
		{"log.index.interval.bytes", i(int64(c.Log.IndexIntervalBytes))},
		{"log.retention.bytes", i(c.Log.RetentionBytes)},
		{"log.retention.ms", i(c.Log.RetentionMs)},
		{"log.roll.ms", i(c.Log.SegmentMs)},
		{"log.segment.bytes", i(c.Log.SegmentBytes)},
		{"message.max.bytes", i(int64(c.Log.MaxMessageBytes))},
		{"num.partitions", i(int64(c.DefaultPartitions))},
		{"socket.request.max.bytes", i(int64(c.MaxRequestBytes))},
	}
}
