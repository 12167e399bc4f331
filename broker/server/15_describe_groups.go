package server

// DescribeGroups (key 15), v0–v5.
//   v1: throttle time.
//   v3: authorized operations.
//   v4: group instance ids.
//   v5: flexible.

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, name := range r.Groups {
		if err := c.server.notCoordinator(name); err != nil {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = name, errorCode(err)
			resp.Groups = append(resp.Groups, g)
			continue
		}
		d, _ := c.server.groups.Describe(name)
		g := kmsg.NewDescribeGroupsResponseGroup()
		g.Group, g.State, g.ProtocolType, g.Protocol = d.Group, string(d.State), d.ProtocolType, d.Protocol
		for _, m := range d.Members {
			member := kmsg.NewDescribeGroupsResponseGroupMember()
			member.MemberID, member.InstanceID, member.ClientID, member.ClientHost = m.MemberID, m.InstanceID, m.ClientID, m.ClientHost
			member.ProtocolMetadata, member.MemberAssignment = m.Metadata, m.Assignment
			if member.MemberAssignment == nil {
				member.MemberAssignment = []byte{}
			}
			g.Members = append(g.Members, member)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
