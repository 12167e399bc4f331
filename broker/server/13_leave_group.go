package server

// LeaveGroup (key 13), v0–v5.
//   v1: throttle time.
//   v3: several members per request, by member or instance id (KIP-345).
//   v4: flexible.
//   v5: reason.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/group"
)

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.LeaveGroupRequest)
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	if err := c.server.notCoordinator(r.Group); err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	leaving := []group.LeaveMember{{MemberID: r.MemberID}}
	if r.Version >= 3 {
		leaving = leaving[:0]
		for _, m := range r.Members {
			leaving = append(leaving, group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	results, err := c.server.groups.Leave(r.Group, leaving)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp, nil
	}
	if r.Version < 3 {
		resp.ErrorCode = errorCode(results[0])
		return resp, nil
	}
	for i, m := range r.Members {
		member := kmsg.NewLeaveGroupResponseMember()
		member.MemberID, member.InstanceID, member.ErrorCode = m.MemberID, m.InstanceID, errorCode(results[i])
		resp.Members = append(resp.Members, member)
	}
	return resp, nil
}
