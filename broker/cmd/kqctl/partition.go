package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/kqstack/kqstack/broker/ops"
)

// partitionElectLeaders is kafka-leader-election.sh: the preferred
// replicas lead again (or, --unclean, partitions without a leader get a
// live replica).
func partitionElectLeaders(e *env, args []string) error {
	flags := newFlags(e, "partition elect-leaders")
	topic := flags.String("topic", "", "only this topic (default: every partition)")
	partitionList := flags.String("p", "", "only these partitions of --topic, comma-separated")
	unclean := flags.Bool("unclean", false, "elect a live replica outside the ISR for partitions without a leader (may lose records)")
	rest, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q; name the topic with --topic", rest[0])}
	}
	partitions, err := parsePartitions(*partitionList)
	if err != nil {
		return err
	}
	if len(partitions) > 0 && *topic == "" {
		return usageError{"-p needs --topic"}
	}
	results, err := e.client.ElectLeaders(e.ctx, *topic, partitions, *unclean)
	if err != nil {
		return err
	}
	return e.out.print(results, func(w io.Writer) {
		elected := 0
		for _, r := range results {
			if r.Error == "" {
				elected++
			}
		}
		fmt.Fprintf(w, "elected %d of %d partitions' leaders\n", elected, len(results))
		for _, r := range results {
			if r.Error != "" {
				fmt.Fprintf(w, "%s-%d: %s\n", r.Topic, r.Partition, r.Error)
			}
		}
	})
}

func parsePartitions(list string) ([]int32, error) {
	if list == "" {
		return nil, nil
	}
	var partitions []int32
	for _, part := range strings.Split(list, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(part), 10, 32)
		if err != nil || n < 0 {
			return nil, usageError{fmt.Sprintf("partition %q: want a number 0 or more", part)}
		}
		partitions = append(partitions, int32(n))
	}
	return partitions, nil
}

// partitionReassign is kafka-reassign-partitions.sh --execute (or
// --cancel): one partition from flags, or a plan in Kafka's JSON form.
func partitionReassign(e *env, args []string) error {
	flags := newFlags(e, "partition reassign")
	file := flags.String("file", "", `a plan as kafka-reassign-partitions.sh reads it: {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}`)
	partition := flags.Int("p", -1, "the partition of TOPIC to move")
	replicaList := flags.String("replicas", "", "its new replicas, comma-separated, the preferred leader first")
	cancel := flags.Bool("cancel", false, "cancel the partitions' reassignments in progress")
	rest, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	var moves []ops.Move
	switch {
	case *file != "":
		if len(rest) > 0 || *partition >= 0 || *replicaList != "" {
			return usageError{"give either --file, or TOPIC -p N --replicas LIST"}
		}
		data, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		var plan ops.MovePlan
		if err := json.Unmarshal(data, &plan); err != nil {
			return fmt.Errorf("%s: %w (want {\"version\":1,\"partitions\":[{\"topic\":...,\"partition\":...,\"replicas\":[...]}]})", *file, err)
		}
		moves = plan.Partitions
	case len(rest) == 1 && *partition >= 0:
		replicas, err := parsePartitions(*replicaList)
		if err != nil {
			return usageError{"--replicas: " + err.Error()}
		}
		if len(replicas) == 0 && !*cancel {
			return usageError{"--replicas is needed (or --cancel)"}
		}
		moves = []ops.Move{{Topic: rest[0], Partition: int32(*partition), Replicas: replicas}}
	default:
		return usageError{"partition reassign needs TOPIC -p N --replicas LIST, or --file PLAN"}
	}
	if *cancel {
		for i := range moves {
			moves[i].Replicas = nil
		}
	}
	results, err := e.client.Reassign(e.ctx, moves)
	if err != nil {
		return err
	}
	return e.out.print(results, func(w io.Writer) {
		for _, r := range results {
			switch {
			case r.Error != "":
				fmt.Fprintf(w, "%s-%d: %s\n", r.Topic, r.Partition, r.Error)
			case *cancel:
				fmt.Fprintf(w, "%s-%d: reassignment cancelled\n", r.Topic, r.Partition)
			default:
				fmt.Fprintf(w, "%s-%d: reassignment started (kqctl partition reassignments shows it until it is done)\n", r.Topic, r.Partition)
			}
		}
	})
}

// partitionReassignments is kafka-reassign-partitions.sh --list.
func partitionReassignments(e *env, args []string) error {
	if _, err := parseInterleaved(newFlags(e, "partition reassignments"), args); err != nil {
		return err
	}
	moves, err := e.client.Reassignments(e.ctx)
	if err != nil {
		return err
	}
	return e.out.print(moves, func(w io.Writer) {
		if len(moves) == 0 {
			fmt.Fprintln(w, "no reassignment in progress")
			return
		}
		row(w, "TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING")
		for _, m := range moves {
			row(w, m.Topic, m.Partition, ints(m.Replicas), ints(m.Adding), ints(m.Removing))
		}
	})
}
