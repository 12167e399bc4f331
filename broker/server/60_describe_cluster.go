package server

// DescribeCluster (key 60), v0–v1.
//   v1: endpoint type (brokers only here).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(60, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	cl := c.server.cluster
	resp.ClusterID = cl.ClusterID()
	resp.ControllerID = cl.ControllerID()
	resp.EndpointType = 1
	for _, b := range cl.Brokers() {
		broker := kmsg.NewDescribeClusterResponseBroker()
		broker.NodeID, broker.Host, broker.Port = b.NodeID, b.Host, b.Port
		resp.Brokers = append(resp.Brokers, broker)
	}
	return resp, nil
}
