package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produce sends one record per input line, waits for every
// acknowledgement, and fails if any record failed.
func produce(e *env, args []string) error {
	flags := newFlags(e, "produce")
	file := flags.String("f", "", "read lines from this file instead of stdin")
	key := flags.String("k", "", "key of every record")
	keySep := flags.String("K", "", "split each line at the first SEP into key and value (kcat -K)")
	acks := flags.String("acks", "all", "all, 1 or 0")
	partition := flags.Int("p", -1, "partition (-1: by key, as Kafka clients choose)")
	var headers repeated
	flags.Var(&headers, "H", "header key=value on every record (repeatable)")
	topics, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	if len(topics) != 1 {
		return usageError{"produce needs one topic"}
	}
	topic := topics[0]
	headerValues, err := keyValues("-H", headers)
	if err != nil {
		return err
	}
	created, partitions, err := e.client.EnsureTopic(e.ctx, topic)
	if err != nil {
		return err
	}
	switch {
	case created && partitions > 0:
		fmt.Fprintf(e.stderr, "created topic %s with %d partitions (the broker creates topics on first use)\n", topic, partitions)
	case created:
		fmt.Fprintf(e.stderr, "created topic %s (the broker creates topics on first use)\n", topic)
	}
	opts := []kgo.Opt{kgo.SeedBrokers(e.client.Bootstrap...), kgo.DefaultProduceTopic(topic)}
	switch *acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return usageError{fmt.Sprintf("--acks %q: all, 1 or 0", *acks)}
	}
	if *partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	producer, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer producer.Close()

	input := e.stdin
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		input = f
	}
	var recordHeaders []kgo.RecordHeader
	for k, v := range headerValues {
		recordHeaders = append(recordHeaders, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	progress := newProgress(e.stderr, "produced")
	failed := make(chan error, 1)
	var sent int64
	scanner := bufio.NewScanner(input)
	scanner.Buffer(make([]byte, 64<<10), 16<<20)
	for scanner.Scan() {
		line := scanner.Text()
		r := &kgo.Record{Value: []byte(line), Headers: recordHeaders, Partition: int32(*partition)}
		switch {
		case *keySep != "":
			k, v, ok := strings.Cut(line, *keySep)
			if !ok {
				return fmt.Errorf("line %d has no key separator %q", sent+1, *keySep)
			}
			r.Key, r.Value = []byte(k), []byte(v)
		case *key != "":
			r.Key = []byte(*key)
		}
		producer.Produce(e.ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case failed <- err:
				default:
				}
			}
		})
		sent++
		progress.update(sent)
	}
	if err := scanner.Err(); err != nil {
		return fmt.Errorf("reading the input: %w", err)
	}
	if err := producer.Flush(e.ctx); err != nil {
		return err
	}
	select {
	case err := <-failed:
		return fmt.Errorf("a record was not acknowledged: %w", err)
	default:
	}
	progress.done(sent)
	return e.out.print(map[string]any{"topic": topic, "records": sent}, func(w io.Writer) {
		fmt.Fprintf(w, "produced %d records to %s\n", sent, topic)
	})
}

// progress prints a running count on stderr, once a second, for runs
// that last longer than that.
type progress struct {
	w     io.Writer
	verb  string
	next  time.Time
	shown bool
}

func newProgress(w io.Writer, verb string) *progress {
	return &progress{w: w, verb: verb, next: time.Now().Add(time.Second)}
}

func (p *progress) update(n int64) {
	if now := time.Now(); now.After(p.next) {
		fmt.Fprintf(p.w, "\r%s %d records", p.verb, n)
		p.next, p.shown = now.Add(time.Second), true
	}
}

func (p *progress) done(n int64) {
	if p.shown {
		fmt.Fprintf(p.w, "\r%s %d records\n", p.verb, n)
	}
}
