package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kqstack/kqstack/broker/ops"
)

func topicCreate(e *env, args []string) error {
	flags := newFlags(e, "topic create")
	partitions := flags.Int("p", -1, "partitions; -1 takes the broker default")
	flags.IntVar(partitions, "partitions", -1, "partitions; -1 takes the broker default")
	replication := flags.Int("r", -1, "replication factor; -1 takes the broker default")
	flags.IntVar(replication, "replication-factor", -1, "replication factor; -1 takes the broker default")
	ifNotExists := flags.Bool("if-not-exists", false, "succeed if the topic exists")
	var configs repeated
	flags.Var(&configs, "config", "topic config key=value (repeatable)")
	names, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usageError{"topic create needs one topic name"}
	}
	name := names[0]
	settings, err := keyValues("--config", configs)
	if err != nil {
		return err
	}
	configPointers := map[string]*string{}
	for k, v := range settings {
		configPointers[k] = &v
	}
	created, err := e.client.CreateTopic(e.ctx, name, int32(*partitions), int16(*replication), configPointers)
	if errors.Is(err, kerr.TopicAlreadyExists) && *ifNotExists {
		return e.out.print(map[string]any{"topic": name, "created": false}, func(w io.Writer) { fmt.Fprintf(w, "topic %s exists\n", name) })
	}
	if err != nil {
		return err
	}
	return e.out.print(map[string]any{"topic": name, "created": true, "partitions": created}, func(w io.Writer) {
		fmt.Fprintf(w, "created topic %s with %d partitions\n", name, created)
	})
}

func topicList(e *env, args []string) error {
	flags := newFlags(e, "topic list")
	internal := flags.Bool("internal", false, "also list internal topics (__consumer_offsets)")
	if _, err := parseInterleaved(flags, args); err != nil {
		return err
	}
	topics, err := e.client.Topics(e.ctx)
	if err != nil {
		return err
	}
	shown := []ops.TopicSummary{}
	for _, t := range topics {
		if !t.Internal || *internal {
			shown = append(shown, t)
		}
	}
	return e.out.print(shown, func(w io.Writer) {
		row(w, "TOPIC", "PARTITIONS", "REPLICATION", "RECORDS", "SIZE")
		for _, t := range shown {
			row(w, t.Name, t.Partitions, t.Replication, t.Records, bytesText(t.SizeBytes))
		}
	})
}

func topicDescribe(e *env, args []string) error {
	names, err := parseInterleaved(newFlags(e, "topic describe"), args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usageError{"topic describe needs one topic name"}
	}
	d, err := e.client.Topic(e.ctx, names[0])
	if err != nil {
		return err
	}
	return e.out.print(d, func(w io.Writer) {
		fmt.Fprintf(w, "Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tRecords: %d\tSize: %s\n",
			d.Name, d.ID, d.TopicSummary.Partitions, d.Replication, d.Records, bytesText(d.SizeBytes))
		var overrides []string
		for _, c := range d.Configs {
			if c.Source == "DYNAMIC_TOPIC_CONFIG" {
				overrides = append(overrides, c.Name+"="+c.Value)
			}
		}
		fmt.Fprintf(w, "Configs: %s\n\n", strings.Join(overrides, ","))
		row(w, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "OFFLINE", "START-OFFSET", "END-OFFSET", "SIZE")
		for _, p := range d.Partitions {
			leader := fmt.Sprint(p.Leader)
			if p.Leader < 0 {
				leader = "none"
			}
			row(w, p.Partition, leader, p.LeaderEpoch, ints(p.Replicas), ints(p.ISR), ints(p.Offline), p.StartOffset, p.EndOffset, bytesText(p.SizeBytes))
		}
	})
}

func ints(xs []int32) string {
	if len(xs) == 0 {
		return "-"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}

func topicDelete(e *env, args []string) error {
	names, err := parseInterleaved(newFlags(e, "topic delete"), args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return usageError{"topic delete needs at least one topic name"}
	}
	if err := e.client.DeleteTopics(e.ctx, names...); err != nil {
		return err
	}
	return e.out.print(map[string]any{"deleted": names}, func(w io.Writer) {
		for _, n := range names {
			fmt.Fprintf(w, "deleted topic %s\n", n)
		}
	})
}

func topicAlterConfig(e *env, args []string) error {
	flags := newFlags(e, "topic alter-config")
	var set, reset repeated
	flags.Var(&set, "set", "config key=value to set (repeatable)")
	flags.Var(&reset, "delete", "config key to return to the broker default (repeatable)")
	names, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(names) != 1 {
		return usageError{"topic alter-config needs one topic name"}
	}
	settings, err := keyValues("--set", set)
	if err != nil {
		return err
	}
	if err := e.client.AlterTopicConfig(e.ctx, names[0], settings, reset); err != nil {
		return err
	}
	return e.out.print(map[string]any{"topic": names[0], "set": settings, "deleted": []string(reset)}, func(w io.Writer) {
		fmt.Fprintf(w, "altered the configs of topic %s\n", names[0])
	})
}
