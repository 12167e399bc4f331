package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
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
