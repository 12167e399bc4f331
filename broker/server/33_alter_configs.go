package server

// AlterConfigs (key 33), v0–v2.
//   v1: no change.
//   v2: flexible.
// Replaces all of a topic's config overrides (configs left out return to
// the broker defaults), as Kafka's AlterConfigs does. Broker configs are
// read-only: they come from the YAML file and flags.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range r.Resources {
		resource := kmsg.NewAlterConfigsResponseResource()
		resource.ResourceType, resource.ResourceName = rr.ResourceType, rr.ResourceName
		configs := make(map[string]string, len(rr.Configs))
		var err error
		for _, kv := range rr.Configs {
			if kv.Value == nil {
				err = fmt.Errorf("%w: config %q has no value", kerr.InvalidConfig, kv.Name)
				break
			}
			configs[kv.Name] = *kv.Value
		}
		if err == nil {
			err = alterTopicConfigs(c, rr.ResourceType, rr.ResourceName, func(map[string]string) (map[string]string, error) { return configs, nil }, r.ValidateOnly)
		}
		resource.ErrorCode, resource.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, resource)
	}
	return resp, nil
}

// alterTopicConfigs computes a topic's new overrides from its current ones
// and applies them.
func alterTopicConfigs(c *conn, resourceType kmsg.ConfigResourceType, name string, change func(map[string]string) (map[string]string, error), validateOnly bool) error {
	if resourceType == kmsg.ConfigResourceTypeBroker {
		return fmt.Errorf("%w: broker configs are read-only; change them in the broker's YAML file and restart it", kerr.InvalidRequest)
	}
	if resourceType != kmsg.ConfigResourceTypeTopic {
		return fmt.Errorf("%w: resource type %d cannot be altered; use topic (2)", kerr.InvalidRequest, resourceType)
	}
	cl := c.server.cluster
	t, ok := cl.Topic(name)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", kerr.UnknownTopicOrPartition, name)
	}
	current := make(map[string]string, len(t.Configs))
	for k, v := range t.Configs {
		current[k] = v
	}
	next, err := change(current)
	if err != nil {
		return err
	}
	if err := cl.SetTopicConfigs(name, next, validateOnly); err != nil {
		return err
	}
	if !validateOnly {
		c.logger.Info("topic configs changed", "topic", name, "configs", next, "client_id", c.currentClientID())
	}
	return nil
}
