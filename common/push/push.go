// Package push is a Pusher with the shape of go-queue kq's
// (Push, PushWithKey), without kq's pitfalls: every push waits for the
// broker's acks=all answer and returns its error, failed sends are
// retried, and the key chooses the partition with Kafka's own murmur2
// hash, so one key's events stay in order and land where Java, franz-go
// and librdkafka producers would put them. The caller's trace context is
// carried in the message headers (traceparent), as kq does.
package push

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel"
)

// Config is a Pusher's configuration, in go-zero's config style.
type Config struct {
	Brokers []string
	Topic   string
	// Attempts is how often a push is tried before its error is returned.
	Attempts int `json:",default=5"`
	// BatchTimeout is how long the writer waits to fill a batch. kq leaves
	// kafka-go's 1 s, which a synchronous push waits out every time.
	BatchTimeout time.Duration `json:",default=2ms"`
	// AllowAutoTopicCreation: create the topic on first push (local stack).
	AllowAutoTopicCreation bool `json:",optional"`
	// MetadataTTL bounds how long the writer routes by old metadata.
	// kafka-go refreshes it only on this timer (a random time below it),
	// not when a broker answers NOT_LEADER_FOR_PARTITION or is gone, so
	// after a partition's leader moves pushes fail until then: with
	// kafka-go's 6 s, a broker's kill -9 held the outbox up to 9 s.
	MetadataTTL time.Duration `json:",default=1s"`
}

// Pusher pushes messages to one topic. Safe for concurrent use.
type Pusher struct {
	topic     string
	writer    *kafka.Writer
	transport *kafka.Transport
}

// NewPusher returns a Pusher; it connects on first use.
func NewPusher(c Config) (*Pusher, error) {
	if len(c.Brokers) == 0 || c.Topic == "" {
		return nil, errors.New("push: Brokers and Topic are required")
	}
	if c.Attempts < 1 {
		c.Attempts = 5
	}
	if c.BatchTimeout <= 0 {
		c.BatchTimeout = 2 * time.Millisecond
	}
	if c.MetadataTTL <= 0 {
		c.MetadataTTL = time.Second
	}
	// kafka.DefaultTransport's dialer, with the Pusher's metadata TTL.
	transport := &kafka.Transport{Dial: (&net.Dialer{Timeout: 3 * time.Second}).DialContext, MetadataTTL: c.MetadataTTL}
	return &Pusher{topic: c.Topic, transport: transport, writer: &kafka.Writer{
		Addr:                   kafka.TCP(c.Brokers...),
		Topic:                  c.Topic,
		Balancer:               kafka.Murmur2Balancer{},
		RequiredAcks:           kafka.RequireAll,
		MaxAttempts:            c.Attempts,
		BatchTimeout:           c.BatchTimeout,
		Compression:            kafka.Snappy,
		AllowAutoTopicCreation: c.AllowAutoTopicCreation,
		Transport:              transport,
	}}, nil
}

// MustNewPusher is kq.NewPusher's signature: a service that calls
// kq.NewPusher(c.Brokers, c.Topic) switches by changing the import. It
// panics on a config NewPusher refuses, as go-zero's Must functions do.
func MustNewPusher(addrs []string, topic string) *Pusher {
	p, err := NewPusher(Config{Brokers: addrs, Topic: topic})
	if err != nil {
		panic(err)
	}
	return p
}

// Name is the topic, as kq's Pusher names itself.
func (p *Pusher) Name() string { return p.topic }

// KPush is PushWithKey, under kq's other name for it.
func (p *Pusher) KPush(ctx context.Context, key, v string) error { return p.PushWithKey(ctx, key, v) }

// Push sends v with no key (a random partition) and waits for the broker.
func (p *Pusher) Push(ctx context.Context, v string) error {
	return p.send(ctx, nil, v, nil)
}

// PushWithKey sends v with key; the key chooses the partition.
func (p *Pusher) PushWithKey(ctx context.Context, key, v string) error {
	return p.send(ctx, []byte(key), v, nil)
}

// PushMessage sends a message with extra headers (the dead-letter path).
func (p *Pusher) PushMessage(ctx context.Context, key []byte, v string, headers []kafka.Header) error {
	return p.send(ctx, key, v, headers)
}

// Message is one message of PushBatch. Headers given here win over the
// trace context of PushBatch's ctx (an outbox row keeps its writer's trace).
type Message struct {
	Key, Value string
	Headers    map[string]string
}

// PushBatch sends messages in one call, in order, and waits until the
// broker has all of them; messages of one partition keep their order.
func (p *Pusher) PushBatch(ctx context.Context, messages []Message) error {
	msgs := make([]kafka.Message, len(messages))
	for i, m := range messages {
		msgs[i] = kafka.Message{Key: []byte(m.Key), Value: []byte(m.Value)}
		otel.GetTextMapPropagator().Inject(ctx, headerCarrier{&msgs[i]})
		for k, v := range m.Headers {
			headerCarrier{&msgs[i]}.Set(k, v)
		}
	}
	if err := p.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("push %d messages to %s: %w", len(msgs), p.topic, err)
	}
	return nil
}

func (p *Pusher) send(ctx context.Context, key []byte, v string, headers []kafka.Header) error {
	msg := kafka.Message{Key: key, Value: []byte(v), Headers: headers}
	otel.GetTextMapPropagator().Inject(ctx, headerCarrier{&msg})
	if err := p.writer.WriteMessages(ctx, msg); err != nil {
		return fmt.Errorf("push to %s: %w", p.topic, err)
	}
	return nil
}

// Close flushes and closes the writer, and its connections.
func (p *Pusher) Close() error {
	err := p.writer.Close()
	p.transport.CloseIdleConnections()
	return err
}

// headerCarrier lets the otel propagator read and write kafka headers.
type headerCarrier struct{ msg *kafka.Message }

func (c headerCarrier) Get(key string) string {
	for _, h := range c.msg.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	for i, h := range c.msg.Headers {
		if h.Key == key {
			c.msg.Headers[i].Value = []byte(value)
			return
		}
	}
	c.msg.Headers = append(c.msg.Headers, kafka.Header{Key: key, Value: []byte(value)})
}

func (c headerCarrier) Keys() []string {
	keys := make([]string, len(c.msg.Headers))
	for i, h := range c.msg.Headers {
		keys[i] = h.Key
	}
	return keys
}
