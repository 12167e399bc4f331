package server_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/brokertest"
)

// TestIncrementalFetchSessions drives a KIP-227 session as a client
// would: a full fetch opens it, incremental ones name only what changed
// and are answered with only the partitions that have news, a stale epoch
// or an unknown id is refused with Kafka's errors, and epoch -1 closes it.
func TestIncrementalFetchSessions(t *testing.T) {
	b := startBroker(t, nil)
	ctx := testContext(t)
	client := newClient(t, b.Addr)
	if _, err := kadm.NewClient(client).CreateTopics(ctx, 6, -1, nil, "sessions"); err != nil {
		t.Fatal(err)
	}
	// Two partitions with the same leader: one session covers both.
	b.Sync(t)
	topic, _ := b.Cluster.Topic("sessions")
	byLeader := map[int32][]int32{}
	var p0, p1 int32 = -1, -1
	for i, p := range topic.Partitions {
		leader := p.State().Leader
		byLeader[leader] = append(byLeader[leader], int32(i))
		if len(byLeader[leader]) == 2 {
			p0, p1 = byLeader[leader][0], byLeader[leader][1]
			break
		}
	}
	if p0 < 0 {
		t.Fatalf("no two of 6 partitions share a leader: %v", byLeader)
	}
	leader := leaderOf(t, b, client, "sessions", p0)
	produce := func(partition int32) {
		t.Helper()
		record := &kgo.Record{Topic: "sessions", Partition: partition, Value: []byte("v")}
		manual := newClient(t, b.Addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := manual.ProduceSync(ctx, record).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(p0)
	produce(p1)

	fetch := func(id, epoch int32, offsets map[int32]int64, forget []int32) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 10, 1<<20
		req.SessionID, req.SessionEpoch = id, epoch
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = "sessions", topic.ID
		for partition, offset := range offsets {
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = partition, offset, 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			req.Topics = append(req.Topics, rt)
		}
		if len(forget) > 0 {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.TopicID, ft.Partitions = "sessions", topic.ID, forget
			req.ForgottenTopics = append(req.ForgottenTopics, ft)
		}
		resp, err := req.RequestWith(ctx, leader)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// answered lists the partitions of an answer with the records in each.
	answered := func(resp *kmsg.FetchResponse) map[int32]int {
		t.Helper()
		if resp.ErrorCode != 0 {
			t.Fatalf("fetch: %v", kerr.ErrorForCode(resp.ErrorCode))
		}
		got := map[int32]int{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					t.Fatalf("partition %d: %v", rp.Partition, kerr.ErrorForCode(rp.ErrorCode))
				}
				records := 0
				for _, batch := range fetchedBatches(t, rp.RecordBatches) {
					records += int(batch.NumRecords)
				}
				got[rp.Partition] = records
			}
		}
		return got
	}

	// A full fetch opens a session and answers every partition.
	opened := fetch(0, 0, map[int32]int64{p0: 0, p1: 0}, nil)
	id := opened.SessionID
	if got := answered(opened); id == 0 || got[p0] != 1 || got[p1] != 1 {
		t.Fatalf("full fetch: session %d, records by partition %v; want a session and 1 record in each of %d, %d", id, got, p0, p1)
	}
	// Both move on; nothing is new, so the answer names no partition.
	if got := answered(fetch(id, 1, map[int32]int64{p0: 1, p1: 1}, nil)); len(got) != 0 {
		t.Fatalf("incremental fetch with nothing new answered %v", got)
	}
	// A record for one: the answer has that partition alone, though the
	// request named none.
	produce(p1)
	if got := answered(fetch(id, 2, nil, nil)); len(got) != 1 || got[p1] != 1 {
		t.Fatalf("after a record in %d: %v, want that partition alone", p1, got)
	}
	if resp := fetch(id, 2, nil, nil); resp.ErrorCode != kerr.InvalidFetchSessionEpoch.Code {
		t.Fatalf("epoch 2 again: %v, want INVALID_FETCH_SESSION_EPOCH", kerr.ErrorForCode(resp.ErrorCode))
	}
	// A forgotten partition is no longer read.
	produce(p0)
	produce(p1)
	if got := answered(fetch(id, 3, map[int32]int64{p1: 2}, []int32{p0})); len(got) != 1 || got[p1] != 1 {
		t.Fatalf("with %d forgotten: %v, want %d alone", p0, got, p1)
	}
	if resp := fetch(id+1000, 1, nil, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("an unknown session: %v, want FETCH_SESSION_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}
	// Epoch -1 closes it and is a full fetch without a session.
	closed := fetch(id, -1, map[int32]int64{p0: 0}, nil)
	if got := answered(closed); closed.SessionID != 0 || got[p0] != 2 {
		t.Fatalf("closing fetch: session %d, %v; want no session and the 2 records of %d", closed.SessionID, got, p0)
	}
	if resp := fetch(id, 4, nil, nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("the closed session: %v, want FETCH_SESSION_ID_NOT_FOUND", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// TestFollowersFetchInSessions: followers keep one session with each
// leader, so a follower fetch names only partitions that moved.
func TestFollowersFetchInSessions(t *testing.T) {
	brokers := brokertest.StartCluster(t, 3, nil)
	ctx := testContext(t)
	client := newClient(t, brokers[0].Addr, kgo.DefaultProduceTopic("followed"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if _, err := kadm.NewClient(client).CreateTopics(ctx, 3, 3, nil, "followed"); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range brokers {
		// Every broker leads a partition of it, followed by the other two.
		if sessions, partitions := b.Server().FetchSessions(); sessions < 2 || partitions < 2 {
			t.Errorf("broker %d holds %d fetch sessions of %d partitions; want one from each follower", b.Config.NodeID, sessions, partitions)
		}
	}
}

// fetchedBatches decodes the record batches of a fetch answer.
func fetchedBatches(t *testing.T, data []byte) []kmsg.RecordBatch {
	t.Helper()
	var batches []kmsg.RecordBatch
	for len(data) > 0 {
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(data); err != nil {
			t.Fatalf("a fetched batch: %v", err)
		}
		batches = append(batches, batch)
		data = data[12+batch.Length:]
	}
	return batches
}

// TestFetchSessionCacheIsBounded: clients opening sessions fill the cache
// up to its 1000 and are then declined (session id 0: they fetch in full),
// but a follower's session still takes the place of a client's.
func TestFetchSessionCacheIsBounded(t *testing.T) {
	b := startBroker(t, nil)
	ctx := testContext(t)
	client := newClient(t, b.Addr)
	open := func(replicaID int32) int32 {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxBytes, req.SessionEpoch = replicaID, 1<<20, 0
		resp, err := req.RequestWith(ctx, client)
		if err != nil || resp.ErrorCode != 0 {
			t.Fatalf("opening a session: %v %v", err, kerr.ErrorForCode(resp.ErrorCode))
		}
		return resp.SessionID
	}
	opened := 0
	for open(-1) != 0 {
		if opened++; opened > 1000 {
			t.Fatal("more than 1000 sessions cached")
		}
	}
	if sessions, _ := b.Server().FetchSessions(); sessions != 1000 {
		t.Fatalf("a client was declined with %d sessions cached, want 1000", sessions)
	}
	if id := open(99); id == 0 {
		t.Fatal("a follower's session was declined by a cache full of clients' sessions")
	}
	if id := open(-1); id != 0 {
		t.Fatalf("a client got session %d from a full cache", id)
	}
}

// TestFetchSessionPartitionsAreBounded: a session naming more partitions
// than the cache holds is declined (the fetch is answered in full).
func TestFetchSessionPartitionsAreBounded(t *testing.T) {
	b := startBroker(t, nil)
	ctx := testContext(t)
	client := newClient(t, b.Addr)
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, 0
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "no-such-topic"
	for i := range 200_001 {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.PartitionMaxBytes = int32(i), 1024
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if resp.SessionID != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 200_001 {
		t.Fatalf("a session of 200001 partitions: session %d, %d topics answered; want no session and every partition answered", resp.SessionID, len(resp.Topics))
	}
	if _, partitions := b.Server().FetchSessions(); partitions > 200_000 {
		t.Fatalf("%d partitions cached", partitions)
	}
}
