package server_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func TestGroupAdministration(t *testing.T) {
	b := groupBroker(t)
	const topic, groupID = "admin-orders", "admin-group"
	produceKeyed(t, b.Addr, topic, 60)
	ctx := testContext(t)
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumerGroup(groupID), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.ClientID("admin-test-consumer"))
	if err != nil {
		t.Fatal(err)
	}
	consumed := 0
	for consumed < 60 {
		pollCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fetches := consumer.PollFetches(pollCtx)
		cancel()
		consumed += fetches.NumRecords()
		if err := fetches.Err(); err != nil && pollCtx.Err() == nil {
			t.Fatal(err)
		}
	}
	if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin := kadm.NewClient(client)

	listed, err := admin.ListGroups(ctx, "Stable")
	if err != nil || len(listed) != 1 || listed[groupID].State != "Stable" {
		t.Fatalf("stable groups: %v %+v", err, listed)
	}
	described, err := admin.DescribeGroups(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	g := described[groupID]
	if len(g.Members) != 1 || g.Members[0].ClientID != "admin-test-consumer" || g.Protocol == "" {
		t.Fatalf("described: %+v", g)
	}
	if a, ok := g.Members[0].Assigned.AsConsumer(); !ok || len(a.Topics) != 1 || len(a.Topics[0].Partitions) != 6 {
		t.Fatalf("assignment: %+v", g.Members[0].Assigned)
	}
	if l := lag(t, b.Addr, groupID, topic); l != 0 {
		t.Fatalf("lag %d", l)
	}
	deleted, err := admin.DeleteGroups(ctx, groupID)
	if err != nil || !errors.Is(deleted[groupID].Err, kerr.NonEmptyGroup) {
		t.Fatalf("deleting an active group: %v %+v", err, deleted)
	}
	offsetDeleted, err := admin.DeleteOffsets(ctx, groupID, kadm.TopicsSet{topic: {0: {}}})
	if err == nil {
		err = offsetDeleted.Error()
	}
	if !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Fatalf("deleting offsets of an active group: %v", err)
	}

	consumer.Close() // leaves the group
	waitFor(t, "the group to be empty", 10*time.Second, func() bool {
		d, _ := admin.DescribeGroups(ctx, groupID)
		return d[groupID].State == "Empty"
	})
	offsetDeleted, err = admin.DeleteOffsets(ctx, groupID, kadm.TopicsSet{topic: {0: {}}})
	if err != nil || offsetDeleted.Error() != nil {
		t.Fatalf("OffsetDelete: %v %v", err, offsetDeleted.Error())
	}
	fetched, err := admin.FetchOffsets(ctx, groupID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fetched.Lookup(topic, 0); ok {
		t.Fatal("partition 0's offset was not deleted")
	}
	if o, ok := fetched.Lookup(topic, 1); !ok || o.At <= 0 {
		t.Fatalf("partition 1's offset: %+v %v", o, ok)
	}
	deleted, err = admin.DeleteGroups(ctx, groupID)
	if err != nil || deleted[groupID].Err != nil {
		t.Fatalf("DeleteGroups: %v %+v", err, deleted)
	}
	if listed, _ := admin.ListGroups(ctx); len(listed) != 0 {
		t.Fatalf("groups after deleting: %+v", listed)
	}
	// The groups live in __consumer_offsets, an internal topic as in
	// Kafka: listed with internal topics, not without.
	topics, err := admin.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range topics {
		if name != topic && (name != "__consumer_offsets" || !d.IsInternal || len(d.Partitions) != 50) {
			t.Fatalf("unexpected topic %q in Metadata: %+v", name, d)
		}
	}
	if offsets, ok := topics["__consumer_offsets"]; !ok || !offsets.IsInternal {
		t.Fatalf("__consumer_offsets in Metadata: %+v %v", offsets, ok)
	}
	if user, _ := admin.ListTopics(ctx); len(user) != 1 {
		t.Fatalf("topics without the internal ones: %v", user.Names())
	}
}

// As in Kafka, deleting a topic deletes the groups' committed offsets on
// it: a topic created again under the name starts with none, also after a
// restart (the deletion is in __consumer_offsets).
func TestDeletedTopicTakesItsCommittedOffsets(t *testing.T) {
	b := groupBroker(t)
	const topic, groupID = "recreated", "recreated-group"
	ctx := testContext(t)
	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	offsets := kadm.Offsets{}
	offsets.AddOffset(topic, 0, 0, -1)
	offsets.AddOffset(topic, 1, 0, -1)
	offsets.AddOffset("other", 0, 0, -1)
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "other"); err != nil {
		t.Fatal(err)
	}
	b.Sync(t)
	if resp, err := admin.CommitOffsets(ctx, groupID, offsets); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v %v", err, resp.Error())
	}
	if _, err := admin.DeleteTopics(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	b.Sync(t)
	// The coordinator deletes them when it applies the deletion, as
	// Kafka's does: a moment after DeleteTopics is answered.
	waitFor(t, "the deleted topic's offsets to go", 10*time.Second, func() bool {
		fetched, err := admin.FetchOffsets(ctx, groupID)
		_, kept := fetched.Lookup(topic, 0)
		return err == nil && !kept
	})
	check := func(when string) {
		fetched, err := admin.FetchOffsets(ctx, groupID)
		if err != nil {
			t.Fatal(err)
		}
		for p := int32(0); p < 2; p++ {
			if o, ok := fetched.Lookup(topic, p); ok && o.At >= 0 {
				t.Errorf("%s: %s[%d] still has committed offset %d", when, topic, p, o.At)
			}
		}
		if o, ok := fetched.Lookup("other", 0); !ok || o.At != 0 {
			t.Errorf("%s: the other topic's offset was lost: %+v", when, o)
		}
	}
	check("after the delete")
	client.Close()
	b.Restart(t)
	client, err = kgo.NewClient(kgo.SeedBrokers(b.Addr))
	if err != nil {
		t.Fatal(err)
	}
	admin = kadm.NewClient(client)
	check("after a restart")
}

// A member's commit to a group that does not exist: GROUP_ID_NOT_FOUND
// from OffsetCommit v9, ILLEGAL_GENERATION before it, as Kafka answers.
func TestCommitToAMissingGroupByVersion(t *testing.T) {
	b := groupBroker(t)
	ctx := testContext(t)
	client := newClient(t, b.Addr)
	for version, want := range map[int16]error{9: kerr.GroupIDNotFound, 8: kerr.IllegalGeneration, 2: kerr.IllegalGeneration} {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version, req.Group, req.Generation, req.MemberID = version, "never-joined", 3, "member-1"
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "orders"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Offset = 5
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		coordinator := groupCoordinatorClient(t, ctx, client, "never-joined")
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(8, version)
		old, err := kgo.NewClient(kgo.SeedBrokers(coordinator), kgo.MaxVersions(versions))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := req.RequestWith(ctx, old)
		old.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); got != want || resp.Version != version {
			t.Fatalf("v%d (sent as v%d): %v, want %v", version, resp.Version, got, want)
		}
	}
}

// groupCoordinatorClient is the address of groupID's coordinator.
func groupCoordinatorClient(t *testing.T, ctx context.Context, client *kgo.Client, groupID string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		found := kadm.NewClient(client).FindGroupCoordinators(ctx, groupID)
		if c, ok := found[groupID]; ok && c.Err == nil {
			return net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
		} else if time.Now().After(deadline) {
			t.Fatalf("no coordinator for %s: %+v", groupID, found)
		}
	}
}
