package metadata

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func id(b byte) TopicID { return TopicID{15: b} }

func int32p(v int32) *int32 { return &v }

func strp(v string) *string { return &v }

// orders is a topic of 2 partitions on brokers 1-3, configured.
func orders() []Record {
	return []Record{
		{Topic: &TopicRecord{Name: "orders", ID: id(1)}},
		{Partition: &PartitionRecord{TopicID: id(1), Partition: 0, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, Leader: 1}},
		{Partition: &PartitionRecord{TopicID: id(1), Partition: 1, Replicas: []int32{2, 3, 1}, ISR: []int32{2, 3, 1}, Leader: 2}},
		{Config: &ConfigRecord{TopicID: id(1), Name: "retention.ms", Value: strp("3600000")}},
	}
}

func mustApply(t *testing.T, img *Image, records ...Record) *Image {
	t.Helper()
	next, err := img.Apply(records)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

func TestApplyBuildsTheImage(t *testing.T) {
	img := mustApply(t, Empty(), Record{Cluster: &ClusterRecord{ClusterID: "c1"}})
	img = mustApply(t, img, orders()...)
	topic, ok := img.Topic("orders")
	if !ok || topic.ID != id(1) || len(topic.Partitions) != 2 || topic.Configs["retention.ms"] != "3600000" {
		t.Fatalf("orders: %+v", topic)
	}
	if p := topic.Partitions[1]; p.Leader != 2 || !slices.Equal(p.ISR, []int32{2, 3, 1}) {
		t.Fatalf("partition 1: %+v", p)
	}

	// The leader changes: leader epoch and partition epoch move on.
	next := mustApply(t, img, Record{PartitionChange: &PartitionChangeRecord{TopicID: id(1), Partition: 0, ISR: []int32{2, 3}, Leader: int32p(2)}})
	p := next.topicByName(t, "orders").Partitions[0]
	if p.Leader != 2 || p.LeaderEpoch != 1 || p.PartitionEpoch != 1 || !slices.Equal(p.ISR, []int32{2, 3}) {
		t.Fatalf("after the change: %+v", p)
	}
	// An ISR change alone moves only the partition epoch.
	next = mustApply(t, next, Record{PartitionChange: &PartitionChangeRecord{TopicID: id(1), Partition: 0, ISR: []int32{2, 3, 1}}})
	if p := next.topicByName(t, "orders").Partitions[0]; p.LeaderEpoch != 1 || p.PartitionEpoch != 2 {
		t.Fatalf("after an ISR change: %+v", p)
	}
	// The image it was applied to is untouched.
	if p := img.topicByName(t, "orders").Partitions[0]; p.Leader != 1 || p.LeaderEpoch != 0 || len(p.ISR) != 3 {
		t.Fatalf("the older image changed: %+v", p)
	}

	// Configs are removed by a nil value; topics by a remove record.
	next = mustApply(t, next, Record{Config: &ConfigRecord{TopicID: id(1), Name: "retention.ms"}})
	if _, set := next.topicByName(t, "orders").Configs["retention.ms"]; set {
		t.Fatal("config not removed")
	}
	if _, set := img.topicByName(t, "orders").Configs["retention.ms"]; !set {
		t.Fatal("the older image lost its config")
	}
	next = mustApply(t, next, Record{RemoveTopic: &RemoveTopicRecord{TopicID: id(1)}})
	if _, ok := next.Topic("orders"); ok || len(next.Topics()) != 0 {
		t.Fatal("topic not removed")
	}
	if len(img.Topics()) != 1 {
		t.Fatal("the older image lost its topic")
	}
}

func (img *Image) topicByName(t *testing.T, name string) *Topic {
	t.Helper()
	topic, ok := img.Topic(name)
	if !ok {
		t.Fatalf("no topic %q", name)
	}
	return topic
}

func TestApplyIsAllOrNothing(t *testing.T) {
	img := mustApply(t, Empty(), orders()...)
	cases := []struct {
		name    string
		records []Record
		want    string
	}{
		{"name taken", []Record{{Topic: &TopicRecord{Name: "orders", ID: id(2)}}}, `topic "orders" already exists`},
		{"id taken", []Record{{Topic: &TopicRecord{Name: "other", ID: id(1)}}}, "is taken"},
		{"partition out of order", []Record{{Topic: &TopicRecord{Name: "t", ID: id(3)}}, {Partition: &PartitionRecord{TopicID: id(3), Partition: 1, Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}}, "out of order"},
		{"ISR outside the replicas", []Record{{PartitionChange: &PartitionChangeRecord{TopicID: id(1), Partition: 0, ISR: []int32{1, 4}}}}, "not a subset"},
		{"leader outside the ISR", []Record{{PartitionChange: &PartitionChangeRecord{TopicID: id(1), Partition: 0, ISR: []int32{2, 3}}}}, "leader 1 is not in the ISR"},
		{"unknown partition", []Record{{PartitionChange: &PartitionChangeRecord{TopicID: id(1), Partition: 7, Leader: int32p(1)}}}, "no partition 7"},
		{"unknown topic", []Record{{Config: &ConfigRecord{TopicID: id(9), Name: "x", Value: strp("1")}}}, "unknown topic id"},
		{"producer ids not contiguous", []Record{{ProducerIDs: &ProducerIDsRecord{BrokerID: 1, FirstID: 5, Size: 1000}}}, "does not start at the next free id 0"},
		{"other cluster", []Record{{Cluster: &ClusterRecord{ClusterID: "a"}}, {Cluster: &ClusterRecord{ClusterID: "b"}}}, "belongs to cluster"},
		{"broker epoch back", []Record{{RegisterBroker: &RegisterBrokerRecord{BrokerID: 1, Epoch: 5}}, {RegisterBroker: &RegisterBrokerRecord{BrokerID: 1, Epoch: 5}}}, "not above its epoch"},
		{"fence an unknown epoch", []Record{{RegisterBroker: &RegisterBrokerRecord{BrokerID: 1, Epoch: 5}}, {FenceBroker: &FenceBrokerRecord{BrokerID: 1, Epoch: 4}}}, "not registered"},
	}
	for _, tt := range cases {
		// a good record first: it must not survive the bad one
		records := append([]Record{{Config: &ConfigRecord{TopicID: id(1), Name: "segment.ms", Value: strp("1")}}}, tt.records...)
		next, err := img.Apply(records)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
		if next != img || img.topicByName(t, "orders").Configs["segment.ms"] != "" {
			t.Errorf("%s: a failed batch changed the image", tt.name)
		}
	}
	var exists *TopicExistsError
	if _, err := img.Apply([]Record{{Topic: &TopicRecord{Name: "orders", ID: id(2)}}}); !errors.As(err, &exists) {
		t.Errorf("a taken name: %v, want a TopicExistsError", err)
	}
}

func TestBrokersAndProducerIDs(t *testing.T) {
	img := mustApply(t, Empty(),
		Record{RegisterBroker: &RegisterBrokerRecord{BrokerID: 2, Epoch: 10, Advertise: "b2:9092", InterBroker: "b2:9093"}},
		Record{RegisterBroker: &RegisterBrokerRecord{BrokerID: 1, Epoch: 11, Advertise: "b1:9092"}},
		Record{ProducerIDs: &ProducerIDsRecord{BrokerID: 1, FirstID: 0, Size: 1000}},
		Record{ProducerIDs: &ProducerIDsRecord{BrokerID: 2, FirstID: 1000, Size: 1000}},
	)
	if b, _ := img.Broker(2); !b.Fenced || b.InterBroker != "b2:9093" {
		t.Fatalf("a registered broker starts fenced: %+v", b)
	}
	img = mustApply(t, img, Record{UnfenceBroker: &UnfenceBrokerRecord{BrokerID: 2, Epoch: 10}})
	if b, _ := img.Broker(2); b.Fenced {
		t.Fatal("unfence did not")
	}
	if brokers := img.Brokers(); len(brokers) != 2 || brokers[0].ID != 1 {
		t.Fatalf("brokers by id: %+v", brokers)
	}
	if img.NextProducerID != 2000 {
		t.Fatalf("next producer id %d, want 2000", img.NextProducerID)
	}
}

func TestBatchEncoding(t *testing.T) {
	records := append(orders(), Record{ProducerIDs: &ProducerIDsRecord{BrokerID: 1, FirstID: 0, Size: 1000}})
	data, err := EncodeBatch(records)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"id":"00000000000000000000000000000001"`) {
		t.Errorf("topic ids are written in hex: %s", data)
	}
	decoded, err := DecodeBatch(data)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Empty().Apply(records)
	b, err := Empty().Apply(decoded)
	if err != nil || b.topicByName(t, "orders").Configs["retention.ms"] != a.topicByName(t, "orders").Configs["retention.ms"] || b.NextProducerID != 1000 {
		t.Fatalf("decoded batch gives another image: %v", err)
	}
	if _, err := EncodeBatch([]Record{{}}); err == nil {
		t.Error("a record of no kind was encoded")
	}
	for _, bad := range []string{``, `{}`, `{"records":[]}`, `{"records":[{}]}`, `{"records":[{"topic":{"id":"zz"}}]}`} {
		if _, err := DecodeBatch([]byte(bad)); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}

// FuzzApply: any entry either fails to decode or applies (or not) without
// panicking, and a failed batch leaves the image as it was.
func FuzzApply(f *testing.F) {
	seed, _ := EncodeBatch(orders())
	f.Add(seed)
	f.Add([]byte(`{"records":[{"partition_change":{"topic_id":"00000000000000000000000000000001","partition":0,"leader":3}}]}`))
	base := mustApply(&testing.T{}, Empty(), orders()...)
	f.Fuzz(func(t *testing.T, data []byte) {
		records, err := DecodeBatch(data)
		if err != nil {
			return
		}
		next, err := base.Apply(records)
		if err != nil && next != base {
			t.Fatal("a failed batch returned another image")
		}
		if p := base.topicByName(t, "orders").Partitions[0]; p.Leader != 1 || p.LeaderEpoch != 0 {
			t.Fatal("applying changed the base image")
		}
	})
}

func TestRecordsRebuildTheImage(t *testing.T) {
	img := mustApply(t, Empty(), Record{Cluster: &ClusterRecord{ClusterID: "c1"}},
		Record{RegisterBroker: &RegisterBrokerRecord{BrokerID: 1, Epoch: 3, Advertise: "a:1"}},
		Record{RegisterBroker: &RegisterBrokerRecord{BrokerID: 2, Epoch: 4, Advertise: "b:1"}},
		Record{UnfenceBroker: &UnfenceBrokerRecord{BrokerID: 2, Epoch: 4}},
		Record{ProducerIDs: &ProducerIDsRecord{BrokerID: 1, FirstID: 0, Size: 1000}})
	img = mustApply(t, img, orders()...)
	img = mustApply(t, img, Record{PartitionChange: &PartitionChangeRecord{TopicID: id(1), Partition: 0, ISR: []int32{2, 3}, Leader: int32p(2)}})
	rebuilt := mustApply(t, Empty(), img.Records()...)
	if !reflect.DeepEqual(rebuilt.Records(), img.Records()) {
		t.Fatalf("rebuilt image differs:\n%+v\n%+v", rebuilt.Records(), img.Records())
	}
	if p := rebuilt.topicByName(t, "orders").Partitions[0]; p.LeaderEpoch != 1 || p.PartitionEpoch != 1 || p.Leader != 2 {
		t.Fatalf("epochs lost: %+v", p)
	}
	if b, _ := rebuilt.Broker(2); b.Fenced || rebuilt.NextProducerID != 1000 || rebuilt.ClusterID != "c1" {
		t.Fatalf("brokers or producer ids lost: %+v %d", b, rebuilt.NextProducerID)
	}
}
