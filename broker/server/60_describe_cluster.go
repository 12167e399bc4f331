package server

// DescribeCluster (key 60), v0–v2.
//   v0: cluster id, controller, brokers.
//   v1: endpoint type: 1 brokers; 2 (controllers) is answered with
//       UNSUPPORTED_ENDPOINT_TYPE, as a Kafka broker does.
//   v2: fenced brokers on request, marked.
// The controller is the broker that leads the metadata quorum.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(60, 0, 2, handleDescribeCluster) }

// unsupportedEndpointType is Kafka's UNSUPPORTED_ENDPOINT_TYPE (119).
const unsupportedEndpointType = 119

func handleDescribeCluster(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	cl := c.server.cluster
	if r.Version >= 1 && r.EndpointType != 1 {
		message := "this is a broker: it describes brokers (endpoint type 1) only"
		resp.ErrorCode, resp.ErrorMessage = unsupportedEndpointType, &message
		return resp, nil
	}
	resp.ClusterID = cl.ClusterID()
	resp.ControllerID = cl.ControllerID()
	resp.EndpointType = 1
	for _, b := range cl.RegisteredBrokers() {
		if b.Fenced && !(r.Version >= 2 && r.IncludeFencedBrokers) {
			continue
		}
		broker := kmsg.NewDescribeClusterResponseBroker()
		broker.NodeID, broker.Host, broker.Port, broker.IsFenced = b.NodeID, b.Host, b.Port, b.Fenced
		resp.Brokers = append(resp.Brokers, broker)
	}
	return resp, nil
}
