package server

// JoinGroup (key 11), v0–v9.
//   v1: rebalance timeout (v0 uses the session timeout).
//   v2: throttle time.
//   v4: a first join gets MEMBER_ID_REQUIRED and its member id (KIP-394).
//   v5: group instance id: static membership (KIP-345).
//   v6: flexible.
//   v7: protocol type and name in the response.
//   v8: reason.
//   v9: skip assignment (always false here).
// The answer waits until the join phase completes: every member has
// joined, or the rebalance timeout passed.

import (
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/group"
)

func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.JoinGroupRequest)
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	if err := c.server.notCoordinator(r.Group); err != nil {
		resp.ErrorCode, resp.MemberID, resp.Generation = errorCode(err), r.MemberID, -1
		return resp, nil
	}
	join := group.JoinRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: r.InstanceID, ClientID: c.currentClientID(),
		ClientHost: clientHost(c), ProtocolType: r.ProtocolType,
		SessionTimeout:       time.Duration(r.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:     time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond,
		RequireKnownMemberID: r.Version >= 4,
	}
	if r.Version == 0 {
		join.RebalanceTimeout = join.SessionTimeout
	}
	for _, p := range r.Protocols {
		join.Protocols = append(join.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	var result group.JoinResult
	select {
	case result = <-c.server.groups.Join(join):
	case <-c.server.stopping:
		result = group.JoinResult{Err: kerr.CoordinatorNotAvailable, MemberID: r.MemberID, Generation: -1}
	}
	resp.ErrorCode = errorCode(result.Err)
	resp.MemberID = result.MemberID
	resp.Generation = result.Generation
	resp.LeaderID = result.LeaderID
	if result.Err == nil {
		resp.ProtocolType, resp.Protocol = &result.ProtocolType, &result.Protocol
	}
	for _, m := range result.Members {
		member := kmsg.NewJoinGroupResponseMember()
		member.MemberID, member.InstanceID, member.ProtocolMetadata = m.MemberID, m.InstanceID, m.Metadata
		resp.Members = append(resp.Members, member)
	}
	return resp, nil
}

func clientHost(c *conn) string {
	host, _, err := net.SplitHostPort(c.netConn.RemoteAddr().String())
	if err != nil {
		return c.netConn.RemoteAddr().String()
	}
	return "/" + host // as Kafka shows it
}
