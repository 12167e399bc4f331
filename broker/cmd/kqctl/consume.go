package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/ops"
)

// consume prints records, one per line: the value (plain), or a JSON
// object with key, headers, partition, offset and timestamp (json).
func consume(e *env, args []string) error {
	flags := newFlags(e, "consume")
	from := flags.String("from", "latest", "earliest, latest, an offset, or a time (RFC 3339, or @ and Unix ms)")
	partition := flags.Int("p", -1, "only this partition (-1: all)")
	group := flags.String("g", "", "consume in this consumer group, committing what was printed (--from applies to a group with no committed offset)")
	count := flags.Int64("n", 0, "stop after this many records (0: no limit)")
	exitAtEnd := flags.Bool("e", false, "stop at the end of the partitions (their end when consume started)")
	format := flags.String("format", "plain", "plain (the value) or json (key, headers, partition, offset, timestamp)")
	topics, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(topics) != 1 {
		return usageError{"consume needs one topic"}
	}
	if *format != "plain" && *format != "json" {
		return usageError{fmt.Sprintf("--format %q: plain or json", *format)}
	}
	if e.out.json {
		*format = "json"
	}
	topic := topics[0]
	target, err := parseFrom(*from)
	if err != nil {
		return err
	}
	if *group != "" && *partition >= 0 {
		return usageError{"-p and -g exclude each other: a group's partitions are assigned by the group"}
	}
	positions, err := e.client.Positions(e.ctx, topic, target)
	if err != nil {
		return err
	}
	if *partition >= len(positions) {
		return fmt.Errorf("topic %s has partitions 0 to %d, not %d", topic, len(positions)-1, *partition)
	}
	committed := map[int32]int64{}
	if *group != "" {
		if committed, err = e.client.Committed(e.ctx, *group, topic); err != nil {
			return err
		}
	}
	// Where each partition starts (a group resumes from its commits) and,
	// for -e, where it ends now: a partition that starts at its end is done.
	starts := map[int32]kgo.Offset{}
	remaining := map[int32]int64{}
	for _, p := range positions {
		if *partition >= 0 && p.Partition != int32(*partition) {
			continue
		}
		start := p.Target
		if c, ok := committed[p.Partition]; ok {
			start = c
		}
		starts[p.Partition] = kgo.NewOffset().At(start)
		if start < p.End {
			remaining[p.Partition] = p.End
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(e.client.Bootstrap...), kgo.FetchMaxWait(500 * time.Millisecond)}
	if *group != "" {
		opts = append(opts, kgo.ConsumerGroup(*group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(resetOffset(target)), kgo.DisableAutoCommit())
	} else {
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts}))
	}
	consumer, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer consumer.Close()

	progress := newProgress(e.stderr, "consumed")
	var n int64
	for {
		if *exitAtEnd && len(remaining) == 0 {
			break
		}
		fetches := consumer.PollFetches(e.ctx)
		if e.ctx.Err() != nil {
			break // Ctrl-C: what was printed is committed below
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, kgo.ErrClientClosed) {
				return fmt.Errorf("fetching %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		var printed []*kgo.Record
		stop := false
		fetches.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			printRecord(e, r, *format)
			printed = append(printed, r)
			n++
			if end, ok := remaining[r.Partition]; ok && r.Offset+1 >= end {
				delete(remaining, r.Partition)
			}
			if *count > 0 && n >= *count {
				stop = true
			}
		})
		progress.update(n)
		if *group != "" && len(printed) > 0 {
			if err := consumer.CommitRecords(e.ctx, printed...); err != nil {
				return fmt.Errorf("committing group %s: %w", *group, err)
			}
		}
		if stop {
			break
		}
	}
	progress.done(n)
	return nil
}

func printRecord(e *env, r *kgo.Record, format string) {
	if format == "plain" {
		fmt.Fprintln(e.out.w, string(r.Value))
		return
	}
	line, _ := json.Marshal(ops.MessageFromRecord(r))
	fmt.Fprintln(e.out.w, string(line))
}

// parseFrom reads --from: earliest, latest, an offset, or a time
// (RFC 3339, or @ and Unix milliseconds).
func parseFrom(s string) (ops.ResetTarget, error) {
	switch {
	case s == "earliest" || s == "beginning":
		return ops.ResetTarget{Earliest: true}, nil
	case s == "latest" || s == "end":
		return ops.ResetTarget{Latest: true}, nil
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil {
			return ops.ResetTarget{}, usageError{fmt.Sprintf("--from %q: @ needs Unix milliseconds, e.g. @1763800000000", s)}
		}
		return ops.ResetTarget{Time: time.UnixMilli(ms)}, nil
	}
	if offset, err := strconv.ParseInt(s, 10, 64); err == nil && offset >= 0 {
		return ops.ResetTarget{Offset: &offset}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return ops.ResetTarget{Time: t}, nil
	}
	return ops.ResetTarget{}, usageError{fmt.Sprintf("--from %q: use earliest, latest, an offset, or a time (2026-11-22T10:00:00Z, or @ and Unix ms)", s)}
}

// resetOffset is where a group starts a partition it has no commit for.
func resetOffset(t ops.ResetTarget) kgo.Offset {
	switch {
	case t.Earliest:
		return kgo.NewOffset().AtStart()
	case t.Latest:
		return kgo.NewOffset().AtEnd()
	case t.Offset != nil:
		return kgo.NewOffset().At(*t.Offset)
	default:
		return kgo.NewOffset().AfterMilli(t.Time.UnixMilli())
	}
}
