package server_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

func TestKadmTopicAdministration(t *testing.T) {
	b := startBroker(t, func(c *config.Config) { c.AutoCreateTopics = false })
	ctx := testContext(t)
	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	admin := kadm.NewClient(client)

	retention := "3600000"
	created, err := admin.CreateTopic(ctx, 2, -1, map[string]*string{"retention.ms": &retention}, "payments")
	if err != nil || created.Err != nil {
		t.Fatalf("create: %v %v", err, created.Err)
	}
	b.Sync(t)
	t.Run("create errors", func(t *testing.T) {
		bad := "x"
		cases := []struct {
			name       string
			topic      string
			partitions int32
			replicas   int16
			configs    map[string]*string
			want       *kerr.Error
		}{
			{"exists", "payments", 1, 1, nil, kerr.TopicAlreadyExists},
			{"bad name", "no/slashes", 1, 1, nil, kerr.InvalidTopicException},
			{"replication factor above the brokers", "rf", 1, int16(brokertest.ClusterSize() + 1), nil, kerr.InvalidReplicationFactor},
			{"zero partitions", "zero", 0, 1, nil, kerr.InvalidPartitions},
			{"unknown config", "cfg", 1, 1, map[string]*string{"retention.minutes": &bad}, kerr.InvalidConfig},
			{"bad config value", "cfg", 1, 1, map[string]*string{"retention.ms": &bad}, kerr.InvalidConfig},
		}
		for _, tt := range cases {
			resp, err := admin.CreateTopic(ctx, tt.partitions, tt.replicas, tt.configs, tt.topic)
			if err == nil {
				err = resp.Err
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
			}
			if tt.name != "exists" && resp.ErrMessage == "" {
				t.Errorf("%s: no error message", tt.name)
			}
		}
	})
	t.Run("unknown topic with auto-creation off", func(t *testing.T) {
		producer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RecordRetries(1), kgo.RecordDeliveryTimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer producer.Close()
		err = producer.ProduceSync(ctx, &kgo.Record{Topic: "missing", Value: []byte("x")}).FirstErr()
		if !errors.Is(err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("got %v, want UNKNOWN_TOPIC_OR_PARTITION", err)
		}
	})
	t.Run("configs", func(t *testing.T) {
		described, err := admin.DescribeTopicConfigs(ctx, "payments")
		if err != nil {
			t.Fatal(err)
		}
		rc, err := described.On("payments", nil)
		if err != nil || rc.Err != nil {
			t.Fatal(err, rc.Err)
		}
		values := map[string]kadm.Config{}
		for _, c := range rc.Configs {
			values[c.Key] = c
		}
		if v := values["retention.ms"]; v.MaybeValue() != "3600000" || v.Source != 1 {
			t.Fatalf("retention.ms = %q source %v", v.MaybeValue(), v.Source)
		}
		if v := values["segment.bytes"]; v.MaybeValue() != "1073741824" {
			t.Fatalf("segment.bytes default = %q", v.MaybeValue())
		}
		logAppend := "LogAppendTime"
		alter, err := admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "message.timestamp.type", Value: &logAppend}, {Op: kadm.DeleteConfig, Name: "retention.ms"}}, "payments")
		if err != nil || alter[0].Err != nil {
			t.Fatalf("alter: %v %v", err, alter)
		}
		b.Sync(t)
		described, _ = admin.DescribeTopicConfigs(ctx, "payments")
		rc, _ = described.On("payments", nil)
		for _, c := range rc.Configs {
			if c.Key == "retention.ms" && c.MaybeValue() != "604800000" {
				t.Errorf("retention.ms after DELETE = %q, want the default", c.MaybeValue())
			}
			if c.Key == "message.timestamp.type" && c.MaybeValue() != "LogAppendTime" {
				t.Errorf("message.timestamp.type = %q", c.MaybeValue())
			}
		}
		// As in Kafka, min.insync.replicas above the replicas is accepted,
		// and acks=all produces are then refused before anything is written.
		bad, zero := "7", "0"
		alter, _ = admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: &zero}}, "payments")
		if !errors.Is(alter[0].Err, kerr.InvalidConfig) {
			t.Errorf("min.insync.replicas=0: %v", alter[0].Err)
		}
		alter, _ = admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Value: &bad}}, "payments")
		if alter[0].Err != nil {
			t.Fatalf("min.insync.replicas=7: %v", alter[0].Err)
		}
		b.Sync(t)
		strict, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.RecordRetries(0), kgo.DisableIdempotentWrite())
		if err != nil {
			t.Fatal(err)
		}
		err = strict.ProduceSync(ctx, &kgo.Record{Topic: "payments", Partition: 0, Value: []byte("refused")}).FirstErr()
		strict.Close()
		if !errors.Is(err, kerr.NotEnoughReplicas) {
			t.Fatalf("acks=all with min.insync.replicas=7, above the replicas: %v, want NOT_ENOUGH_REPLICAS", err)
		}
		if alter, _ = admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "min.insync.replicas", Op: kadm.DeleteConfig}}, "payments"); alter[0].Err != nil {
			t.Fatal(alter[0].Err)
		}
		brokerConfigs, err := admin.DescribeBrokerConfigs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, rc := range brokerConfigs {
			for _, c := range rc.Configs {
				found = found || (c.Key == "num.partitions" && c.MaybeValue() == "1")
			}
		}
		if !found {
			t.Fatal("broker configs lack num.partitions=1")
		}
	})
	t.Run("offsets by time, delete records, partitions, cluster, log dirs", func(t *testing.T) {
		// LogAppendTime is on: the broker's clock stamps each record when it
		// appends it, so a time taken between two produces separates them.
		var between []int64
		for i := 0; i < 5; i++ {
			if err := client.ProduceSync(ctx, &kgo.Record{Topic: "payments", Partition: 0, Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond)
			between = append(between, time.Now().UnixMilli())
			time.Sleep(2 * time.Millisecond)
		}
		listed, err := admin.ListOffsetsAfterMilli(ctx, between[2], "payments")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := listed.Lookup("payments", 0); o.Offset != 3 || o.Timestamp < between[2] {
			t.Fatalf("first offset at or after %d: %d (timestamp %d), want 3", between[2], o.Offset, o.Timestamp)
		}
		deleted, err := admin.DeleteRecords(ctx, kadm.Offsets{"payments": {0: {At: 3}}})
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := deleted.Lookup("payments", 0); d.Err != nil || d.LowWatermark != 3 {
			t.Fatalf("delete records: %+v", d)
		}
		start, _ := admin.ListStartOffsets(ctx, "payments")
		if o, _ := start.Lookup("payments", 0); o.Offset != 3 {
			t.Fatalf("start offset %d, want 3", o.Offset)
		}
		if resp, err := admin.CreatePartitions(ctx, 2, "payments"); err != nil || resp["payments"].Err != nil {
			t.Fatalf("create partitions: %v %v", err, resp)
		}
		b.Sync(t)
		// A new client: kadm answers ListTopics from the metadata its
		// client cached (for 5 s), which predates the new partitions.
		details, err := kadm.NewClient(newClient(t, b.Addr)).ListTopics(ctx, "payments")
		if err != nil || len(details["payments"].Partitions) != 4 {
			t.Fatalf("partitions after growing: %v %v", err, details)
		}
		if resp, _ := admin.CreatePartitions(ctx, -1, "payments"); !errors.Is(resp["payments"].Err, kerr.InvalidPartitions) {
			t.Fatalf("shrinking: %v", resp["payments"].Err)
		}
		meta, err := admin.BrokerMetadata(ctx)
		if err != nil || len(meta.Brokers) != brokertest.ClusterSize() || meta.Cluster == "" {
			t.Fatalf("cluster: %v %+v", err, meta)
		}
		dirs, err := admin.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(0)
		dirs.Each(func(d kadm.DescribedLogDir) {
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) { size += p.Size })
		})
		if size == 0 {
			t.Fatal("log dirs report no data")
		}
	})
	t.Run("topic metadata survives a restart", func(t *testing.T) {
		before, _ := admin.ListTopics(ctx, "payments")
		b.Restart(t)
		after, err := kadm.NewClient(newClient(t, b.Addr)).ListTopics(ctx, "payments")
		if err != nil {
			t.Fatal(err)
		}
		if after["payments"].ID != before["payments"].ID || len(after["payments"].Partitions) != 4 {
			t.Fatalf("after restart: %+v, before: %+v", after["payments"], before["payments"])
		}
		described, _ := admin.DescribeTopicConfigs(ctx, "payments")
		rc, _ := described.On("payments", nil)
		for _, c := range rc.Configs {
			if c.Key == "message.timestamp.type" && c.MaybeValue() != "LogAppendTime" {
				t.Errorf("config lost in the restart: %s=%q", c.Key, c.MaybeValue())
			}
		}
		start, _ := admin.ListStartOffsets(ctx, "payments")
		if o, _ := start.Lookup("payments", 0); o.Offset != 3 {
			t.Fatalf("start offset after restart %d, want 3", o.Offset)
		}
	})
	t.Run("delete", func(t *testing.T) {
		resp, err := admin.DeleteTopics(ctx, "payments")
		if err != nil || resp["payments"].Err != nil {
			t.Fatalf("delete: %v %v", err, resp)
		}
		if resp, _ := admin.DeleteTopics(ctx, "payments"); !errors.Is(resp["payments"].Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("second delete: %v", resp["payments"].Err)
		}
		if created, _ := admin.CreateTopic(ctx, 1, 1, nil, "payments"); created.Err != nil {
			t.Fatalf("re-create: %v", created.Err)
		}
		b.Sync(t)
		end, _ := kadm.NewClient(newClient(t, b.Addr)).ListEndOffsets(ctx, "payments")
		if o, _ := end.Lookup("payments", 0); o.Offset != 0 {
			t.Fatalf("a re-created topic inherited offset %d (%v)", o.Offset, o.Err)
		}
	})
}
