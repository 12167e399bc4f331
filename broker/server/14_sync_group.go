package server

// SyncGroup (key 14), v0–v5.
//   v1: throttle time.
//   v3: group instance id.
//   v4: flexible.
//   v5: protocol type and name, checked against the group's.
// Followers wait for the leader's assignments.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/group"
)

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.SyncGroupRequest)
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	if err := c.server.notCoordinator(r.Group); err != nil {
		resp.ErrorCode, resp.MemberAssignment = errorCode(err), []byte{}
		return resp, nil
	}
	sync := group.SyncRequest{Group: r.Group, MemberID: r.MemberID, InstanceID: r.InstanceID, Generation: r.Generation,
		ProtocolType: r.ProtocolType, Protocol: r.Protocol}
	if len(r.GroupAssignment) > 0 {
		sync.Assignments = make(map[string][]byte, len(r.GroupAssignment))
		for _, a := range r.GroupAssignment {
			sync.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	var result group.SyncResult
	select {
	case result = <-c.server.groups.Sync(sync):
	case <-c.server.stopping:
		result = group.SyncResult{Err: kerr.CoordinatorNotAvailable}
	}
	resp.ErrorCode = errorCode(result.Err)
	if result.Err == nil {
		resp.ProtocolType, resp.Protocol = &result.ProtocolType, &result.Protocol
		resp.MemberAssignment = result.Assignment
		if resp.MemberAssignment == nil {
			resp.MemberAssignment = []byte{}
		}
	}
	return resp, nil
}
