package replica

import (
	"sync"
	"time"

	"github.com/kqstack/kqstack/broker/clock"
)

// byteRate is a token bucket of bytes per second, one second deep: a
// reassignment's copy may run ahead by a second's worth, then waits.
type byteRate struct {
	clock  clock.Clock
	mu     sync.Mutex
	rate   int64 // bytes per second
	tokens float64
	last   time.Time
}

func newByteRate(clk clock.Clock, rate int64) *byteRate {
	return &byteRate{clock: clk, rate: rate, tokens: float64(rate), last: clk.Now()}
}

func (b *byteRate) refillLocked() {
	now := b.clock.Now()
	b.tokens = min(b.tokens+now.Sub(b.last).Seconds()*float64(b.rate), float64(b.rate))
	b.last = now
}

// wait is how long until the bucket has tokens again (0: now).
func (b *byteRate) wait() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked()
	if b.tokens > 0 {
		return 0
	}
	return time.Duration(-b.tokens / float64(b.rate) * float64(time.Second))
}

// spend takes n bytes; the bucket may go below zero (a fetch answer is not
// cut), and then waits longer.
func (b *byteRate) spend(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked()
	b.tokens -= float64(n)
}

// available is the bytes the bucket holds now (at least 0).
func (b *byteRate) available() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked()
	return max(int64(b.tokens), 0)
}
