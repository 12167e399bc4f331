package server

import (
	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/group"
)

// groupCoordinator is what the group handlers (keys 8, 9, 11–16, 42, 47)
// need of the consumer-group coordinator: the server holds it through
// this, never through the cluster, so the handlers see nothing else of
// it.
type groupCoordinator interface {
	// Check is nil when this broker coordinates the group now.
	Check(groupID string) error
	Join(req group.JoinRequest) <-chan group.JoinResult
	Sync(req group.SyncRequest) <-chan group.SyncResult
	Heartbeat(groupID, memberID string, instanceID *string, generation int32) error
	Leave(groupID string, leaving []group.LeaveMember) ([]error, error)
	Describe(groupID string) (group.GroupDescription, bool)
	List(states []string) []group.GroupListing
	Delete(groupID string) error
	CommitOffsets(groupID, memberID string, instanceID *string, generation int32, commits []group.OffsetCommit) (func() error, error)
	DeleteOffsets(groupID string, tps []group.TopicPartition) error
	FetchOffset(groupID string, tp group.TopicPartition) group.Offset
	GroupOffsets(groupID string) map[group.TopicPartition]group.Offset
}

var _ groupCoordinator = (*cluster.Coordinators)(nil)
