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
	start, err := parseFrom(*from)
	if err != nil {
		return err
	}
	detail, err := e.client.Topic(e.ctx, topic)
	if err != nil {
		return err
	}
	if *partition >= detail.TopicSummary.Partitions {
		return fmt.Errorf("topic %s has partitions 0 to %d, not %d", topic, detail.TopicSummary.Partitions-1, *partition)
	}
	// With -e: where each partition ends now; a partition already at its
	// end (or empty) is done.
	remaining := map[int32]int64{}
	for _, p := range detail.Partitions {
		if (*partition < 0 || p.Partition == int32(*partition)) && p.EndOffset > p.StartOffset {
			remaining[p.Partition] = p.EndOffset
		}
	}
	opts := []kgo.Opt{kgo.SeedBrokers(e.client.Bootstrap...), kgo.FetchMaxWait(500 * time.Millisecond)}
	switch {
	case *group != "":
		if *partition >= 0 {
			return usageError{"-p and -g exclude each other: a group's partitions are assigned by the group"}
		}
		opts = append(opts, kgo.ConsumerGroup(*group), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start), kgo.DisableAutoCommit())
	case *partition >= 0:
		opts = append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {int32(*partition): start}}))
	default:
		opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start))
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

// parseFrom reads --from: earliest, latest, an offset, or a time.
func parseFrom(s string) (kgo.Offset, error) {
	switch {
	case s == "earliest" || s == "beginning":
		return kgo.NewOffset().AtStart(), nil
	case s == "latest" || s == "end":
		return kgo.NewOffset().AtEnd(), nil
	case strings.HasPrefix(s, "@"):
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil {
			return kgo.Offset{}, usageError{fmt.Sprintf("--from %q: @ needs Unix milliseconds, e.g. @1763800000000", s)}
		}
		return kgo.NewOffset().AfterMilli(ms), nil
	}
	if offset, err := strconv.ParseInt(s, 10, 64); err == nil && offset >= 0 {
		return kgo.NewOffset().At(offset), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return kgo.NewOffset().AfterMilli(t.UnixMilli()), nil
	}
	return kgo.Offset{}, usageError{fmt.Sprintf("--from %q: use earliest, latest, an offset, or a time (2026-11-22T10:00:00Z, or @ and Unix ms)", s)}
}
