package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Message is a record as the browser and kqctl consume -f json show it.
type Message struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       *string           `json:"key"`
	Value     *string           `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
	// JSON is set when the value is a JSON document.
	JSON bool `json:"json"`
}

// MessageFromRecord converts a consumed record; bytes that are not UTF-8
// are shown as Go-quoted text.
func MessageFromRecord(r *kgo.Record) Message {
	m := Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp}
	if r.Key != nil {
		k := printable(r.Key)
		m.Key = &k
	}
	if r.Value != nil {
		v := printable(r.Value)
		m.Value = &v
		m.JSON = json.Valid(r.Value)
	}
	if len(r.Headers) > 0 {
		m.Headers = map[string]string{}
		for _, h := range r.Headers {
			m.Headers[h.Key] = printable(h.Value)
		}
	}
	return m
}

func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return fmt.Sprintf("%q", b)
}

// Browse reads up to limit records of one partition from an offset, or
// from the first record at or after a time when at is not zero. It
// returns what is there, fewer when the partition ends first.
func (c *Client) Browse(ctx context.Context, topic string, partition int32, offset int64, at time.Time, limit int) ([]Message, error) {
	target := ResetTarget{Offset: &offset}
	if !at.IsZero() {
		target = ResetTarget{Time: at}
	}
	positions, err := c.Positions(ctx, topic, target)
	if err != nil {
		return nil, err
	}
	if partition < 0 || int(partition) >= len(positions) {
		return nil, fmt.Errorf("topic %s has partitions 0 to %d, not %d", topic, len(positions)-1, partition)
	}
	p := positions[partition]
	if p.Target >= p.End {
		return []Message{}, nil // nothing from there to the end
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(c.Bootstrap...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(p.Target)}}), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	out := []Message{}
	deadline, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for len(out) < limit {
		fetches := consumer.PollRecords(deadline, limit-len(out))
		if deadline.Err() != nil {
			break
		}
		if err := fetches.Err0(); err != nil {
			return out, c.explain(err)
		}
		done := false
		fetches.EachRecord(func(r *kgo.Record) {
			if len(out) < limit {
				out = append(out, MessageFromRecord(r))
			}
			if r.Offset+1 >= p.End {
				done = true
			}
		})
		if done {
			break
		}
	}
	return out, nil
}
