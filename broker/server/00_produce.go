package server

// Produce (key 0), v3–v11.
//   v3: magic-v2 record batches only; transactional id.
//   v5: log start offset in the response.
//   v8: per-record errors and an error message.
//   v9: flexible.
//   v10: KIP-951: a NOT_LEADER_OR_FOLLOWER partition names its current
//   leader and epoch, and the response that leader's address, so the
//   client goes there without a metadata round trip.
//   v11: no change.
// acks=0 gets no response at all; acks=1 answers once the leader wrote the
// batches. acks=-1 is refused before appending while the ISR is below
// min.insync.replicas (NOT_ENOUGH_REPLICAS); after appending it waits
// until the batches are durable on the leader under the broker's flush
// policy (fsync with group commit by default) and the high watermark has
// passed them, i.e. every in-sync replica has them (on disk, in durable
// mode): REQUEST_TIMED_OUT at the request's timeout,
// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below
// min.insync.replicas meanwhile.

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/replica"
	"github.com/kqstack/kqstack/broker/storage"
)

const produceKey = 0

func init() { register(produceKey, 3, 11, handleProduce) }

func handleProduce(c *conn, req kmsg.Request) (kmsg.Response, error) {
	r := req.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	cl := c.server.cluster
	var requestErr error
	switch {
	case r.Acks != 0 && r.Acks != 1 && r.Acks != -1:
		requestErr = fmt.Errorf("%w: acks=%d; use 0, 1 or -1 (all)", kerr.InvalidRequiredAcks, r.Acks)
	case r.TransactionID != nil:
		requestErr = fmt.Errorf("%w: transactions are not supported yet; produce without a transactional id", kerr.TransactionalIDAuthorizationFailed)
	}
	deadline := time.Now().Add(time.Duration(max(r.TimeoutMillis, 0)) * time.Millisecond)
	var durable []durableWait
	for ti, rt := range r.Topics {
		topic := kmsg.NewProduceResponseTopic()
		topic.Topic = rt.Topic
		t, topicErr := produceTopic(cl, rt.Topic)
		for pi, rp := range rt.Partitions {
			partition := kmsg.NewProduceResponseTopicPartition()
			partition.Partition = rp.Partition
			err := requestErr
			if err == nil {
				err = topicErr
			}
			if err == nil {
				var wait durableWait
				var records int
				size := len(rp.Records)
				wait, records, err = appendPartition(cl, t, rp, r.Acks, &partition)
				if err == nil {
					c.server.metrics.Produced(t.Name, size, records)
				}
				if wait.replica != nil {
					wait.t, wait.topic, wait.partition = t, ti, pi
					durable = append(durable, wait)
				}
			}
			if err != nil {
				partition.ErrorCode = errorCode(err)
				partition.ErrorMessage = errorMessage(err)
				partition.BaseOffset, partition.LogStartOffset = -1, -1
				leaderHint(cl, t, &partition, resp)
				c.logger.Debug("produce refused", "topic", rt.Topic, "partition", rp.Partition, "err", err)
			}
			topic.Partitions = append(topic.Partitions, partition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	if r.Acks == 0 {
		return nil, nil
	}
	if len(durable) > 0 {
		// acks=all: the writer waits for the fsync and the followers; this
		// connection's next request is read meanwhile and can share them.
		c.deferFinish(func() {
			for _, w := range durable {
				if err := w.wait(deadline); err != nil {
					p := &resp.Topics[w.topic].Partitions[w.partition]
					p.ErrorCode, p.ErrorMessage, p.BaseOffset = errorCode(err), errorMessage(err), -1
					leaderHint(cl, w.t, p, resp)
				}
			}
		})
	}
	return resp, nil
}

// durableWait is an acks=all append whose fsync and replication are
// still to come.
type durableWait struct {
	replica          *replica.Replica
	durableAt        int64 // 0: no fsync to wait for
	end              int64 // the high watermark must reach it
	epoch            int32 // written at this leader epoch
	t                *cluster.Topic
	topic, partition int // where its answer is in the response
}

func (w durableWait) wait(deadline time.Time) error {
	if w.durableAt > 0 {
		if err := w.replica.Log().WaitDurable(w.durableAt); err != nil {
			return err
		}
	}
	return w.replica.WaitReplicated(w.end, w.epoch, deadline)
}

// leaderHint fills in KIP-951's current leader of a partition refused with
// NOT_LEADER_OR_FOLLOWER, and the leader's address in the response.
func leaderHint(cl *cluster.Cluster, t *cluster.Topic, out *kmsg.ProduceResponseTopicPartition, resp *kmsg.ProduceResponse) {
	if t == nil || out.ErrorCode != kerr.NotLeaderForPartition.Code || out.Partition < 0 || int(out.Partition) >= len(t.Partitions) {
		return
	}
	state := t.Partitions[out.Partition].State()
	if state.Leader < 0 {
		return
	}
	out.CurrentLeader.LeaderID, out.CurrentLeader.LeaderEpoch = state.Leader, state.LeaderEpoch
	for _, b := range resp.Brokers {
		if b.NodeID == state.Leader {
			return
		}
	}
	for _, b := range cl.Brokers() {
		if b.NodeID == state.Leader {
			broker := kmsg.NewProduceResponseBroker()
			broker.NodeID, broker.Host, broker.Port = b.NodeID, b.Host, b.Port
			resp.Brokers = append(resp.Brokers, broker)
		}
	}
}

func produceTopic(cl *cluster.Cluster, name string) (*cluster.Topic, error) {
	if cl.IsInternal(name) {
		// As Kafka: only the brokers' coordinators write there.
		return nil, fmt.Errorf("%w: cannot append to internal topic %s", kerr.InvalidTopicException, name)
	}
	if t, ok := cl.Topic(name); ok {
		return t, nil
	}
	if cl.Config().AutoCreateTopics {
		return createIfMissing(cl, name)
	}
	return nil, cl.UnknownTopicError(name)
}

// appendPartition appends one partition's batches and returns the wait for
// their fsync (acks=all) and how many records were appended.
func appendPartition(cl *cluster.Cluster, t *cluster.Topic, rp kmsg.ProduceRequestTopicPartition, acks int16, out *kmsg.ProduceResponseTopicPartition) (durableWait, int, error) {
	if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
		return durableWait{}, 0, fmt.Errorf("%w: topic %q has %d partitions, not %d", kerr.UnknownTopicOrPartition, t.Name, len(t.Partitions), rp.Partition+1)
	}
	if err := cl.CheckLeader(t.Partitions[rp.Partition]); err != nil {
		return durableWait{}, 0, err
	}
	err := storage.WalkBatchHeaders(rp.Records, func(h storage.BatchHeader) error {
		if h.Size() > int(t.MaxMessageBytes()) {
			return fmt.Errorf("%w: a record batch of %d bytes is larger than max.message.bytes (%d); raise it on the topic or send smaller batches",
				kerr.MessageTooLarge, h.Size(), t.MaxMessageBytes())
		}
		if h.Transactional() || h.Control() {
			return fmt.Errorf("%w: transactional batches are not supported yet", kerr.TransactionalIDAuthorizationFailed)
		}
		return nil
	})
	if err != nil {
		return durableWait{}, 0, err
	}
	partition := t.Partitions[rp.Partition]
	result, epoch, err := partition.Replica.Append(rp.Records, acks, storage.AppendOptions{
		Durable:         acks == -1,
		DeferDurability: true,
		LogAppendTime:   t.LogAppendTime(),
	})
	if err != nil {
		return durableWait{}, 0, err
	}
	records := 0
	if !result.Duplicate {
		records = int(result.LastOffset - result.BaseOffset + 1)
	}
	out.BaseOffset = result.BaseOffset
	out.LogAppendTime = result.LogAppendTime
	out.LogStartOffset = result.LogStartOffset
	if acks != -1 {
		return durableWait{}, records, nil
	}
	return durableWait{replica: partition.Replica, durableAt: result.DurableAt, end: result.LastOffset + 1, epoch: epoch}, records, nil
}
