package server

// FindCoordinator (key 10), v0–v6.
//   v1: key type, error message.
//   v3: flexible.
//   v4: several keys per request (KIP-699).
//   v5, v6: no change here.
// One broker coordinates every group: the lowest id in service (alone,
// this one). Transaction coordinators are not supported yet.

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
)

func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	coordinator := c.server.coordinatorAddress()
	errorFor := func() (int16, *string) {
		if r.CoordinatorType != 0 {
			msg := "transactions are not supported yet"
			return kerr.CoordinatorNotAvailable.Code, &msg
		}
		return 0, nil
	}
	if r.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = errorFor()
		resp.NodeID, resp.Host, resp.Port = coordinator.NodeID, coordinator.Host, coordinator.Port
		return resp, nil
	}
	for _, key := range r.CoordinatorKeys {
		answer := kmsg.NewFindCoordinatorResponseCoordinator()
		answer.Key = key
		answer.ErrorCode, answer.ErrorMessage = errorFor()
		answer.NodeID, answer.Host, answer.Port = coordinator.NodeID, coordinator.Host, coordinator.Port
		resp.Coordinators = append(resp.Coordinators, answer)
	}
	return resp, nil
}

// coordinatorAddress is the broker coordinating the consumer groups.
func (s *Server) coordinatorAddress() cluster.BrokerAddress {
	cl := s.cluster
	id := cl.CoordinatorID()
	for _, b := range cl.Brokers() {
		if b.NodeID == id {
			return b
		}
	}
	host, portText, _ := net.SplitHostPort(cl.Config().AdvertisedAddress())
	port, _ := strconv.Atoi(portText)
	return cluster.BrokerAddress{NodeID: cl.Config().NodeID, Host: host, Port: int32(port)}
}

// notCoordinator is NOT_COORDINATOR when the groups are coordinated by
// another broker: the client looks the coordinator up again.
func (s *Server) notCoordinator() error {
	if id := s.cluster.CoordinatorID(); id != s.cluster.Config().NodeID {
		return fmt.Errorf("%w: the group coordinator is broker %d", kerr.NotCoordinator, id)
	}
	return nil
}
