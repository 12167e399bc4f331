package server

// CreatePartitions (key 37), v0–v3.
//   v1: no change.
//   v2: flexible.
//   v3: no change.
// Grows a topic; partitions are never removed.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	nodeID := c.server.cluster.Config().NodeID
	for _, rt := range r.Topics {
		topic := kmsg.NewCreatePartitionsResponseTopic()
		topic.Topic = rt.Topic
		var err error
		for _, a := range rt.Assignment {
			switch {
			case c.server.cluster.Config().ControllerQuorumVoters != "":
				err = fmt.Errorf("%w: replica assignments are not supported in a cluster yet; leave them out and the new partitions are spread over the brokers", kerr.InvalidReplicaAssignment)
			case len(a.Replicas) != 1 || a.Replicas[0] != nodeID:
				err = fmt.Errorf("%w: new partitions must be assigned to broker %d only", kerr.InvalidReplicaAssignment, nodeID)
			}
		}
		if err == nil {
			err = c.server.cluster.CreatePartitions(rt.Topic, rt.Count, r.ValidateOnly)
		}
		topic.ErrorCode, topic.ErrorMessage = errorCode(err), errorMessage(err)
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, nil
}
