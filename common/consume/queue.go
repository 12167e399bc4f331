package consume

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/queue"

	"github.com/kqstack/kqstack/common/push"
)

// KqConf is a consumer's config block: kq.KqConf's fields, under the same
// names (an existing kq YAML block keeps working), and what makes it
// safe: how a failing handler is retried and where an event that keeps
// failing goes.
//
//	PaymentUpdateStatusConf:
//	  Name: payment-update-paystatus
//	  Brokers: [127.0.0.1:9092]
//	  Group: payment-update-paystatus-group
//	  Topic: payment-update-paystatus-topic
//	  Offset: first
//	  Attempts: 5          # tries per event, then the dead-letter topic
//	  Backoff: 100ms       # doubled after each failure, up to MaxBackoff
//	  DeadLetterTopic: payment-update-paystatus-topic.dlq   # the default
type KqConf struct {
	kq.KqConf
	// Attempts is how often the handler is tried per event.
	Attempts int `json:",default=5"`
	// Backoff is the wait after the first failure, doubled after each one
	// up to MaxBackoff.
	Backoff    time.Duration `json:",default=100ms"`
	MaxBackoff time.Duration `json:",default=5s"`
	// DeadLetterTopic is where events that keep failing or do not parse
	// go; empty: Topic + ".dlq".
	DeadLetterTopic string `json:",optional"`
	// Dedup is where the ids of applied events are kept when MustNewQueue
	// is given no Dedup store: a Redis server (host:port), keys prefixed
	// with Prefix (default Name + ":event:").
	Dedup struct {
		Redis  string `json:",optional"`
		Prefix string `json:",optional"`
	}
}

// MustNewQueue is kq.MustNewQueue with the handler wrapped by New: each
// event applied once (dedup), retried, dead-lettered, and committed only
// after, in order. It uses one fetching goroutine (Consumers), one
// processor and ForceCommit, saying so if the config asked otherwise: kq
// hands records from several fetching goroutines to its processors in
// whatever order those goroutines run, and with several processors it
// commits a record while one before it is still being retried; either way
// a crash can lose a record whose successor was committed, and one key's
// events are applied out of order. Add it to a service group as kq's.
//
// dedup nil takes the store from c.Dedup (Redis); with neither, it panics
// saying so: a consumer without one applies a redelivered event again.
func MustNewQueue(c KqConf, dedup Dedup, handle Handler, opts ...kq.QueueOption) queue.MessageQueue {
	if dedup == nil {
		if c.Dedup.Redis == "" {
			logx.Must(fmt.Errorf("%s: no Dedup store: pass one to MustNewQueue (consume.SQLDedup, consume.RedisDedup) or set Dedup.Redis", c.Topic))
		}
		prefix := c.Dedup.Prefix
		if prefix == "" {
			prefix = c.Name + ":event:"
		}
		dedup = RedisDedup{Client: redis.NewClient(&redis.Options{Addr: c.Dedup.Redis}), Prefix: prefix}
	}
	topic := c.DeadLetterTopic
	if topic == "" {
		topic = c.Topic + ".dlq"
	}
	deadLetter, err := push.NewPusher(push.Config{Brokers: c.Brokers, Topic: topic, AllowAutoTopicCreation: true})
	logx.Must(err)
	consumer, err := New(Config{Attempts: c.Attempts, Backoff: c.Backoff, MaxBackoff: c.MaxBackoff, Dedup: dedup, DeadLetter: deadLetter}, handle)
	logx.Must(err)
	kqConf := c.KqConf
	if kqConf.Consumers != 1 || kqConf.Processors != 1 || !kqConf.ForceCommit {
		logx.Infof("%s: using Consumers 1, Processors 1 and ForceCommit true (were %d, %d, %v), so that records are applied in order and none is committed before the ones ahead of it are done",
			kqConf.Topic, kqConf.Consumers, kqConf.Processors, kqConf.ForceCommit)
		kqConf.Consumers, kqConf.Processors, kqConf.ForceCommit = 1, 1, true
	}
	q := kq.MustNewQueue(kqConf, consumer, append(opts, kq.WithErrorHandler(consumer.DeadLetterHandler))...)
	return deadLetteringQueue{MessageQueue: q, deadLetter: deadLetter}
}

// deadLetteringQueue closes the dead-letter Pusher once the queue stopped.
type deadLetteringQueue struct {
	queue.MessageQueue
	deadLetter *push.Pusher
}

func (q deadLetteringQueue) Stop() {
	q.MessageQueue.Stop()
	_ = q.deadLetter.Close()
}
