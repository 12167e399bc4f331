package server

// DeleteGroups (key 42), v0–v2.
//   v1: no change.
//   v2: flexible.
// Only empty groups can be deleted; their committed offsets go with them.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.DeleteGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, name := range r.Groups {
		g := kmsg.NewDeleteGroupsResponseGroup()
		g.Group = name
		err := c.server.notCoordinator(name)
		if err == nil {
			err = c.server.groups.Delete(name)
		}
		g.ErrorCode = errorCode(err)
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}
