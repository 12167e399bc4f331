package server

// IncrementalAlterConfigs (key 44), v0–v1.
//   v1: flexible.
// SET and DELETE change single topic configs; the others stay. APPEND and
// SUBTRACT apply to list-valued configs, and cleanup.policy, the only one
// here, has the single value "delete".

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range r.Resources {
		resource := kmsg.NewIncrementalAlterConfigsResponseResource()
		resource.ResourceType, resource.ResourceName = rr.ResourceType, rr.ResourceName
		err := alterTopicConfigs(c, rr.ResourceType, rr.ResourceName, func(configs map[string]string) (map[string]string, error) {
			for _, op := range rr.Configs {
				switch op.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					if op.Value == nil {
						return nil, fmt.Errorf("%w: SET %q needs a value", kerr.InvalidConfig, op.Name)
					}
					configs[op.Name] = *op.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(configs, op.Name)
				default:
					return nil, fmt.Errorf("%w: operation %d on %q: only SET (0) and DELETE (1) apply to these configs", kerr.InvalidConfig, op.Op, op.Name)
				}
			}
			return configs, nil
		}, r.ValidateOnly)
		resource.ErrorCode, resource.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Resources = append(resp.Resources, resource)
	}
	return resp, nil
}
