package server

// FindCoordinator (key 10), v0–v6.
//   v1: key type, error message.
//   v3: flexible.
//   v4: several keys per request (KIP-699).
//   v5, v6: no change here.
// This broker coordinates every group. Transaction coordinators are not
// supported yet.

import (
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	cfg := c.server.cluster.Config()
	host, portText, _ := net.SplitHostPort(cfg.AdvertisedAddress())
	port, _ := strconv.Atoi(portText)
	errorFor := func() (int16, *string) {
		if r.CoordinatorType != 0 {
			msg := "transactions are not supported yet"
			return kerr.CoordinatorNotAvailable.Code, &msg
		}
		return 0, nil
	}
	if r.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = errorFor()
		resp.NodeID, resp.Host, resp.Port = cfg.NodeID, host, int32(port)
		return resp, nil
	}
	for _, key := range r.CoordinatorKeys {
		coordinator := kmsg.NewFindCoordinatorResponseCoordinator()
		coordinator.Key = key
		coordinator.ErrorCode, coordinator.ErrorMessage = errorFor()
		coordinator.NodeID, coordinator.Host, coordinator.Port = cfg.NodeID, host, int32(port)
		resp.Coordinators = append(resp.Coordinators, coordinator)
	}
	return resp, nil
}
