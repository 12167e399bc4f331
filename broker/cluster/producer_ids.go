package cluster

import (
	"errors"
	"fmt"
	"sync"

	"github.com/kqstack/kqstack/broker/metadata"
)

// producerIDBlockSize is how many producer ids a broker takes from the
// quorum at a time; ids are unique across the cluster and never reused,
// even across restarts (the rest of a block is dropped).
const producerIDBlockSize = 1000

// producerIDBlock is the block this broker hands ids out of.
type producerIDBlock struct {
	mu        sync.Mutex
	next, end int64
}

// AllocateProducerID hands out a producer id never used before.
func (c *Cluster) AllocateProducerID() (int64, error) {
	b := &c.producerIDs
	b.mu.Lock()
	defer b.mu.Unlock()
	for attempt := 0; b.next >= b.end; attempt++ {
		first := c.quorum.Image().NextProducerID
		_, err := c.propose(metadata.Record{ProducerIDs: &metadata.ProducerIDsRecord{BrokerID: c.cfg.NodeID, FirstID: first, Size: producerIDBlockSize}})
		if err == nil {
			b.next, b.end = first, first+producerIDBlockSize
			break
		}
		// Another broker took the block first: try the next one.
		if attempt == 10 {
			return 0, errors.Join(fmt.Errorf("no producer id block after %d attempts", attempt), err)
		}
	}
	id := b.next
	b.next++
	return id, nil
}
