// Package delay is a delay queue in a Redis sorted set: members scored by
// the Unix millisecond when they are due. Due claims them atomically
// (a Lua script: ZRANGEBYSCORE then ZREM), so two workers never get the same
// member. A worker that claims a member and crashes before acting on it
// loses it: callers that cannot afford that (closing unpaid orders) also
// sweep their database for overdue rows at start.
package delay

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Queue is one delay queue.
type Queue struct {
	Client *redis.Client
	Key    string // the sorted set, e.g. "order:close-unpaid"
}

// Add schedules member for at; adding it again moves it.
func (q Queue) Add(ctx context.Context, member string, at time.Time) error {
	return q.Client.ZAdd(ctx, q.Key, redis.Z{Score: float64(at.UnixMilli()), Member: member}).Err()
}

// Remove unschedules member (the order was paid in time).
func (q Queue) Remove(ctx context.Context, member string) error {
	return q.Client.ZRem(ctx, q.Key, member).Err()
}

var claimScript = redis.NewScript(`
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
if #due > 0 then redis.call("ZREM", KEYS[1], unpack(due)) end
return due`)

// Due claims up to limit members due at or before now.
func (q Queue) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	result, err := claimScript.Run(ctx, q.Client, []string{q.Key}, now.UnixMilli(), limit).StringSlice()
	if err == redis.Nil {
		return nil, nil
	}
	return result, err
}
