package server

// FindCoordinator (key 10), v0–v6.
//   v1: key type, error message.
//   v3: flexible.
//   v4: several keys per request (KIP-699).
//   v5, v6: no change here.
// A group's coordinator is the leader of its partition of
// __consumer_offsets (created at the first FindCoordinator, as in Kafka);
// COORDINATOR_NOT_AVAILABLE while that partition has no leader.
// Transaction coordinators are not supported yet.

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
)

func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	find := func(key string) (cluster.BrokerAddress, int16, *string) {
		var err error
		if r.CoordinatorType != 0 {
			err = fmt.Errorf("%w: transactions are not supported yet", kerr.CoordinatorNotAvailable)
		}
		var address cluster.BrokerAddress
		if err == nil {
			address, err = c.server.cluster.GroupCoordinator(key)
		}
		if err != nil {
			msg := err.Error()
			return cluster.BrokerAddress{NodeID: -1, Port: -1}, errorCode(err), &msg
		}
		return address, 0, nil
	}
	if r.Version < 4 {
		var address cluster.BrokerAddress
		address, resp.ErrorCode, resp.ErrorMessage = find(r.CoordinatorKey)
		resp.NodeID, resp.Host, resp.Port = address.NodeID, address.Host, address.Port
		return resp, nil
	}
	for _, key := range r.CoordinatorKeys {
		answer := kmsg.NewFindCoordinatorResponseCoordinator()
		answer.Key = key
		var address cluster.BrokerAddress
		address, answer.ErrorCode, answer.ErrorMessage = find(key)
		answer.NodeID, answer.Host, answer.Port = address.NodeID, address.Host, address.Port
		resp.Coordinators = append(resp.Coordinators, answer)
	}
	return resp, nil
}

// notCoordinator is NOT_COORDINATOR when another broker coordinates the
// group (the client looks the coordinator up again),
// COORDINATOR_LOAD_IN_PROGRESS while this one loads its partition.
func (s *Server) notCoordinator(groupID string) error { return s.groups.Check(groupID) }
