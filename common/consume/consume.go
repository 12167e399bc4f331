// Package consume wraps a go-queue kq handler so that a consumer is
// correct where plain kq is not:
//
//   - idempotent: each event id is claimed in a Dedup store (Redis SETNX
//     with a TTL) before it is applied and marked done after, so a
//     redelivered event is skipped;
//   - retried: a failing handler is tried Attempts times with exponential
//     backoff;
//   - dead-lettered: an event that still fails, or that does not parse, is
//     pushed to <topic>.dlq with the error and its origin in headers, and
//     only after the broker has it is the event committed.
//
// MustNewQueue builds the whole consumer from a KqConf (kq's YAML block
// and the retry and dead-letter settings): a service that calls
// kq.MustNewQueue(c.KqConf, handler) calls consume.MustNewQueue(c.Conf,
// dedup, handle) instead. It runs kq with one fetching goroutine and one
// processor per queue (Consumers: 1, Processors: 1) and ForceCommit: true:
// kq then commits a record only after the wrapper's error handler has
// returned, which is after the dead-letter push succeeded, and never
// commits past a record still being retried. New wraps a handler for a
// kq queue built by hand, with those settings.
package consume

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"

	"github.com/kqstack/kqstack/common/event"
	"github.com/kqstack/kqstack/common/push"
)

// Handler applies one event.
type Handler func(ctx context.Context, e event.Event) error

// Permanent marks an error that retrying cannot fix: the event goes to the
// dead-letter topic at once.
func Permanent(err error) error { return permanentError{err} }

type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// Headers of a dead-lettered record.
const (
	HeaderError             = "x-dlq-error"
	HeaderOriginalTopic     = "x-dlq-original-topic"
	HeaderOriginalPartition = "x-dlq-original-partition"
	HeaderOriginalOffset    = "x-dlq-original-offset"
	HeaderAttempts          = "x-dlq-attempts"
)

// Config says how hard to try and where failures go.
type Config struct {
	Attempts   int           // tries of the handler per event (default 5)
	Backoff    time.Duration // wait after the first failure, doubled each time (default 100ms)
	MaxBackoff time.Duration // cap on the wait (default 5s)
	Dedup      Dedup         // required
	DeadLetter *push.Pusher  // required: the <topic>.dlq Pusher
}

// Consumer is a kq handler with retries, dedup and a dead-letter topic.
type Consumer struct {
	cfg    Config
	handle Handler
}

// New returns the consumer; pass it to kq.MustNewQueue together with
// kq.WithErrorHandler(c.DeadLetterHandler).
func New(cfg Config, handle Handler) (*Consumer, error) {
	if cfg.Dedup == nil || cfg.DeadLetter == nil {
		return nil, errors.New("consume: Dedup and DeadLetter are required")
	}
	if cfg.Attempts < 1 {
		cfg.Attempts = 5
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	return &Consumer{cfg: cfg, handle: handle}, nil
}

var _ kq.ConsumeHandler = (*Consumer)(nil)

// attemptsError carries how many tries an event got to the dead-letter
// handler.
type attemptsError struct {
	error
	attempts int
}

func (e attemptsError) Unwrap() error { return e.error }

// Consume applies one record (kq.ConsumeHandler). It returns an error only
// for an event that must be dead-lettered.
func (c *Consumer) Consume(ctx context.Context, _, value string) error {
	e, err := event.Decode([]byte(value))
	if err != nil {
		return attemptsError{err, 0}
	}
	claim, err := c.claim(ctx, e)
	if err != nil {
		return attemptsError{fmt.Errorf("claiming event %s: %w", e.ID, err), 0}
	}
	if claim == Applied {
		logx.WithContext(ctx).Infof("event %s (%s) was already applied; skipped", e.ID, e.Type)
		return nil
	}
	wait := c.cfg.Backoff
	for attempt := 1; ; attempt++ {
		err = c.handle(ctx, e)
		if err == nil {
			if err := c.cfg.Dedup.Done(ctx, e.ID); err != nil {
				// Applied but not recorded: a redelivery will be caught by
				// the handler's own state checks.
				logx.WithContext(ctx).Errorf("event %s applied, but recording it failed: %v", e.ID, err)
			}
			return nil
		}
		var permanent permanentError
		if attempt == c.cfg.Attempts || errors.As(err, &permanent) {
			if abortErr := c.cfg.Dedup.Abort(ctx, e.ID); abortErr != nil {
				logx.WithContext(ctx).Errorf("event %s: releasing its claim: %v", e.ID, abortErr)
			}
			return attemptsError{err, attempt}
		}
		logx.WithContext(ctx).Infof("event %s (%s) failed (attempt %d of %d), retrying in %v: %v", e.ID, e.Type, attempt, c.cfg.Attempts, wait, err)
		if err := sleep(ctx, wait); err != nil {
			return attemptsError{err, attempt}
		}
		wait = min(2*wait, c.cfg.MaxBackoff)
	}
}

// claim claims the event, waiting while another worker holds it (after a
// rebalance the previous owner may still be applying it).
func (c *Consumer) claim(ctx context.Context, e event.Event) (Claim, error) {
	wait := c.cfg.Backoff
	for {
		claim, err := c.cfg.Dedup.Begin(ctx, e.ID)
		if err != nil || claim != Busy {
			return claim, err
		}
		logx.WithContext(ctx).Infof("event %s is being applied elsewhere; waiting %v", e.ID, wait)
		if err := sleep(ctx, wait); err != nil {
			return Busy, err
		}
		wait = min(2*wait, c.cfg.MaxBackoff)
	}
}

// DeadLetterHandler is the kq.ConsumeErrorHandler: it pushes the failed
// record to the dead-letter topic, with its headers (traceparent among
// them) and the error and origin, and retries the push until the broker
// has it, since kq commits the record as soon as this returns.
func (c *Consumer) DeadLetterHandler(ctx context.Context, msg kafka.Message, cause error) {
	attempts := 0
	var withAttempts attemptsError
	if errors.As(cause, &withAttempts) {
		attempts = withAttempts.attempts
	}
	headers := append([]kafka.Header(nil), msg.Headers...)
	headers = append(headers,
		kafka.Header{Key: HeaderError, Value: []byte(cause.Error())},
		kafka.Header{Key: HeaderOriginalTopic, Value: []byte(msg.Topic)},
		kafka.Header{Key: HeaderOriginalPartition, Value: []byte(strconv.Itoa(msg.Partition))},
		kafka.Header{Key: HeaderOriginalOffset, Value: []byte(strconv.FormatInt(msg.Offset, 10))},
		kafka.Header{Key: HeaderAttempts, Value: []byte(strconv.Itoa(attempts))},
	)
	wait := c.cfg.Backoff
	for {
		err := c.cfg.DeadLetter.PushMessage(context.Background(), msg.Key, string(msg.Value), headers)
		if err == nil {
			logx.WithContext(ctx).Errorf("record %s/%d@%d dead-lettered after %d attempts: %v", msg.Topic, msg.Partition, msg.Offset, attempts, cause)
			return
		}
		logx.WithContext(ctx).Errorf("dead-lettering record %s/%d@%d failed, retrying in %v: %v", msg.Topic, msg.Partition, msg.Offset, wait, err)
		time.Sleep(wait)
		wait = min(2*wait, c.cfg.MaxBackoff)
	}
}

// sleep waits d, or less if ctx ends (its error is returned then).
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
