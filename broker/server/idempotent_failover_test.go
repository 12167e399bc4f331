package server_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/brokertest"
)

// TestIdempotentProducerAcrossALeaderChange: producer ids come from blocks
// the quorum hands out, and the followers copy each batch with its
// producer state. After the leader stops, a producer that retries its
// last batch at the new leader (its answer was lost) gets the original
// offsets, not a second copy, and its next batch follows without
// OUT_OF_ORDER_SEQUENCE_NUMBER.
func TestIdempotentProducerAcrossALeaderChange(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, fastCluster)
	ctx := testContext(t)
	client := newClient(t, brokers[0].Addr, kgo.SeedBrokers(addrs(brokers)...))
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 1, 3, nil, "idempotent"); err != nil {
		t.Fatal(err)
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionTimeoutMillis = 60000
	ids, err := init.RequestWith(ctx, client)
	if err != nil || ids.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %+v", err, ids)
	}
	// Another broker hands out ids from another block.
	other, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, client.Broker(int(brokers[2].Config.NodeID)))
	if err != nil || other.ErrorCode != 0 || other.ProducerID == ids.ProducerID {
		t.Fatalf("a second producer id: %v %+v (the first is %d)", err, other, ids.ProducerID)
	}
	produceAt := func(leader int32, sequence int32) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = -1, 10000
		topic := kmsg.NewProduceRequestTopic()
		topic.Topic = "idempotent"
		partition := kmsg.NewProduceRequestTopicPartition()
		partition.Records = idempotentBatch(ids.ProducerID, ids.ProducerEpoch, sequence, 3)
		topic.Partitions = append(topic.Partitions, partition)
		req.Topics = append(req.Topics, topic)
		resp, err := req.RequestWith(ctx, client.Broker(int(leader)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0]
	}
	leaderOf := func(b *testBroker) int32 { return partitionOf(b, "idempotent", 0).State().Leader }
	// The leader itself must have applied its leadership.
	var old int32
	waitFor(t, "a leader", 10*time.Second, func() bool {
		old = leaderOf(brokers[0])
		return old >= 1 && leaderOf(brokerByID(brokers, old)) == old && partitionOf(brokerByID(brokers, old), "idempotent", 0).Replica != nil
	})
	for sequence := int32(0); sequence <= 6; sequence += 3 {
		if p := produceAt(old, sequence); p.ErrorCode != 0 || p.BaseOffset != int64(sequence) {
			t.Fatalf("batch at sequence %d: error %d, base offset %d", sequence, p.ErrorCode, p.BaseOffset)
		}
	}

	stopped := brokerByID(brokers, old)
	stopped.Stop(t)
	survivor := brokers[0]
	if survivor == stopped {
		survivor = brokers[1]
	}
	waitFor(t, "a new leader", 10*time.Second, func() bool { l := leaderOf(survivor); return l >= 1 && l != old })
	leader := leaderOf(survivor)
	retried := produceAt(leader, 6)
	if retried.ErrorCode != 0 || retried.BaseOffset != 6 {
		t.Fatalf("the last batch retried at the new leader: error %d, base offset %d; want its original offset 6", retried.ErrorCode, retried.BaseOffset)
	}
	next := produceAt(leader, 9)
	if next.ErrorCode != 0 || next.BaseOffset != 9 {
		t.Fatalf("the next batch at the new leader: error %d, base offset %d; want 9", next.ErrorCode, next.BaseOffset)
	}
	var survivors []string
	for _, b := range brokers {
		if b != stopped {
			survivors = append(survivors, b.Addr)
		}
	}
	consumeExactly(t, survivors, "idempotent", 0, 12)
}

// idempotentBatch is n records of producer id/epoch from sequence, whose
// values are "record-<sequence>": the offsets they get on a partition
// only this producer writes.
func idempotentBatch(id int64, epoch int16, sequence int32, n int) []byte {
	var records []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: fmt.Appendf(nil, "record-%d", int(sequence)+i)}
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		records = r.AppendTo(records)
	}
	now := time.Now().UnixMilli()
	batch := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: id, ProducerEpoch: epoch, FirstSequence: sequence, NumRecords: int32(n), Records: records}
	raw := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}
