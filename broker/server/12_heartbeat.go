package server

// Heartbeat (key 12), v0–v4.
//   v1: throttle time.
//   v3: group instance id.
//   v4: flexible.
// REBALANCE_IN_PROGRESS tells a member to join again; UNKNOWN_MEMBER_ID
// and ILLEGAL_GENERATION that it was removed or is behind.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.HeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	if err := c.server.notCoordinator(r.Group); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	resp.ErrorCode = errorCode(c.server.groups.Heartbeat(r.Group, r.MemberID, r.InstanceID, r.Generation))
	return resp, nil
}
