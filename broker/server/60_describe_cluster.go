package server

// DescribeCluster (key 60), v0–v1.
//   v1: endpoint type (brokers only here).

import (
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(60, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeClusterRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClusterResponse)
	cfg := c.server.cluster.Config()
	resp.ClusterID = c.server.cluster.ClusterID()
	resp.ControllerID = cfg.NodeID
	resp.EndpointType = 1
	host, portText, _ := net.SplitHostPort(cfg.AdvertisedAddress())
	port, _ := strconv.Atoi(portText)
	broker := kmsg.NewDescribeClusterResponseBroker()
	broker.NodeID, broker.Host, broker.Port = cfg.NodeID, host, int32(port)
	resp.Brokers = []kmsg.DescribeClusterResponseBroker{broker}
	return resp, nil
}
