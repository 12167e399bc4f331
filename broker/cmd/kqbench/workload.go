package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// A workload is one measured run against one target. Runs are independent:
// each uses its own topic and deletes it afterwards, so kfake, which keeps
// everything in memory, starts every run as kqbroker does.
type workload struct {
	name string // as printed: "produce 100 B acks=1 1 partition"
	// setup runs once per target before the first run; teardown after the last.
	setup    func(ctx context.Context, t *target) error
	teardown func(ctx context.Context, t *target)
	run      func(ctx context.Context, t *target) (measurement, error)
}

// A measurement holds a run's figures by name ("records/s", "p99 ms", "rss MB").
type measurement map[string]float64

var topicSequence atomic.Int64

// uniqueTopic names a run's topic; kqbench's topics start with "kqbench-".
func uniqueTopic(kind string) string {
	return fmt.Sprintf("kqbench-%s-%d-%d", kind, time.Now().UnixNano()%1e9, topicSequence.Add(1))
}

// values returns n record values of size bytes that compress about as JSON
// events do: fixed field names around random hex.
func values(n, size int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	const hex = "0123456789abcdef"
	out := make([][]byte, n)
	for i := range out {
		v := make([]byte, 0, size)
		for len(v) < size {
			v = append(v, `{"order_id":"`...)
			for j := 0; j < 16; j++ {
				v = append(v, hex[rng.IntN(16)])
			}
			v = append(v, `","amount":`...)
			v = append(v, fmt.Sprint(rng.IntN(100000))...)
			v = append(v, "},"...)
		}
		out[i] = v[:size]
	}
	return out
}

func megabytes(bytes int64) float64 { return float64(bytes) / (1 << 20) }
