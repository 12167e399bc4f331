package consume

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Claim is the outcome of Dedup.Begin.
type Claim int

const (
	// Claimed: this worker applies the event.
	Claimed Claim = iota
	// Applied: the event was applied before; skip it.
	Applied
	// Busy: another worker holds the claim (it may still fail); wait.
	Busy
)

// Dedup remembers which events were applied.
type Dedup interface {
	// Begin claims an event id.
	Begin(ctx context.Context, id string) (Claim, error)
	// Done records that the event was applied.
	Done(ctx context.Context, id string) error
	// Abort gives up a claim after a failure, so a retry can claim it.
	Abort(ctx context.Context, id string) error
}

// RedisDedup keeps event ids in Redis: SETNX of "applying" with a short
// TTL claims an id (a crashed worker's claim expires), SET of "done" with
// a long TTL records it.
type RedisDedup struct {
	Client   *redis.Client
	Prefix   string        // key prefix, e.g. "order-mq:event:"
	TTL      time.Duration // how long applied ids are remembered (default 7 days)
	ClaimTTL time.Duration // how long a claim lasts (default 1 minute)
}

const (
	claimValue = "applying"
	doneValue  = "done"
)

func (d RedisDedup) key(id string) string { return d.Prefix + id }

func (d RedisDedup) Begin(ctx context.Context, id string) (Claim, error) {
	claimTTL := d.ClaimTTL
	if claimTTL <= 0 {
		claimTTL = time.Minute
	}
	for {
		claimed, err := d.Client.SetNX(ctx, d.key(id), claimValue, claimTTL).Result()
		if err != nil || claimed {
			return Claimed, err
		}
		value, err := d.Client.Get(ctx, d.key(id)).Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue // the claim ended between the two calls
		case err != nil:
			return Busy, err
		case value == doneValue:
			return Applied, nil
		default:
			return Busy, nil
		}
	}
}

func (d RedisDedup) Done(ctx context.Context, id string) error {
	ttl := d.TTL
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	return d.Client.Set(ctx, d.key(id), doneValue, ttl).Err()
}

// abortScript deletes the key only while it is still a claim.
var abortScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

func (d RedisDedup) Abort(ctx context.Context, id string) error {
	return abortScript.Run(ctx, d.Client, []string{d.key(id)}, claimValue).Err()
}
