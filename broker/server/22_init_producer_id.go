package server

// InitProducerId (key 22), v0–v4.
//   v1: no change.
//   v2: flexible.
//   v3: the current producer id and epoch, to bump the epoch (KIP-360).
//   v4: no change.
// Idempotent producers get a producer id never used before on this
// cluster; transactions are not supported yet.

import (
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(22, 0, 4, handleInitProducerID) }

func handleInitProducerID(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	if r.TransactionalID != nil {
		c.logger.Warn("refused a transactional producer: transactions are not supported yet", "transactional_id", *r.TransactionalID, "client_id", c.currentClientID())
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp, nil
	}
	if r.ProducerID >= 0 && r.ProducerEpoch >= 0 && r.ProducerEpoch < math.MaxInt16 {
		resp.ProducerID, resp.ProducerEpoch = r.ProducerID, r.ProducerEpoch+1
		return resp, nil
	}
	id, err := c.server.cluster.AllocateProducerID()
	if err != nil {
		return nil, fmt.Errorf("allocating a producer id: %w", err)
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
