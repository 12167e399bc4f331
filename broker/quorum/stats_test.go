package quorum

import (
	"testing"
	"time"

	"github.com/kqstack/kqstack/broker/metadata"
)

// TestStatsFollowTheQuorum: every member knows the leader and the term;
// a proposal's latency is counted on the member that proposed it,
// forwarded or not, and a refused one is not counted.
func TestStatsFollowTheQuorum(t *testing.T) {
	c := newCluster3(t)
	leader := c.leader()
	follower := (leader + 1) % 3
	if _, err := c.nodes[follower].Propose(testContext(t), topicBatch("forwarded", 1)...); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nodes[follower].Propose(testContext(t), topicBatch("forwarded", 2)...); err == nil {
		t.Fatal("a second topic forwarded was not refused")
	}
	for i := range 3 {
		c.waitTopic(i, "forwarded")
	}
	leaderStats := c.nodes[leader].Stats()
	if !leaderStats.IsLeader || leaderStats.Leader != int32(leader+1) || leaderStats.Term == 0 || leaderStats.Commits.Count != 0 {
		t.Fatalf("the leader's stats: %+v", leaderStats)
	}
	for i, n := range c.nodes {
		s := n.Stats()
		deadline := time.Now().Add(5 * time.Second)
		for s.AppliedIndex < leaderStats.AppliedIndex && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			s = n.Stats()
		}
		if s.Leader != int32(leader+1) || s.Term != leaderStats.Term || s.IsLeader != (i == leader) || s.CommitIndex < s.AppliedIndex || s.AppliedIndex < leaderStats.AppliedIndex {
			t.Errorf("node %d: %+v; the leader (node %d) says %+v", i+1, s, leader+1, leaderStats)
		}
	}
	s := c.nodes[follower].Stats()
	var inBuckets uint64
	for _, n := range s.Commits.Buckets {
		inBuckets += n
	}
	if s.Commits.Count != 1 || inBuckets != 1 || s.Commits.Sum <= 0 || len(s.Commits.Buckets) != len(CommitBuckets)+1 {
		t.Fatalf("the proposing follower's commit latencies: %+v, want the one applied proposal", s.Commits)
	}

	if _, err := c.nodes[leader].Propose(testContext(t), metadata.Record{Cluster: &metadata.ClusterRecord{ClusterID: "c1"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.nodes[leader].Stats().Commits.Count; got != 1 {
		t.Fatalf("the leader counted %d proposals, want its own one", got)
	}
}
