package cluster

import "github.com/kqstack/kqstack/broker/quorum"

// QuorumStats is the metadata quorum as this broker sees it: leader,
// term, commit and applied index, and the latency of the changes this
// broker proposed (the metrics read it at scrape time).
func (c *Cluster) QuorumStats() quorum.Stats { return c.quorum.Stats() }
