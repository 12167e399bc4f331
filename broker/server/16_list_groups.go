package server

// ListGroups (key 16), v0–v5.
//   v1: throttle time.
//   v3: flexible.
//   v4: state filter and states in the answer.
//   v5: type filter and group types ("classic").

import (
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ListGroupsRequest)
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	if len(r.TypesFilter) > 0 && !containsFold(r.TypesFilter, "classic") {
		return resp, nil
	}
	// The groups of the partitions of __consumer_offsets this broker
	// leads; kafka-consumer-groups.sh --list asks every broker.
	for _, listed := range c.server.groups.List(r.StatesFilter) {
		g := kmsg.NewListGroupsResponseGroup()
		g.Group, g.ProtocolType, g.GroupState, g.GroupType = listed.Group, listed.ProtocolType, string(listed.State), "classic"
		resp.Groups = append(resp.Groups, g)
	}
	return resp, nil
}

func containsFold(values []string, v string) bool {
	for _, x := range values {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}
