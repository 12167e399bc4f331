package main

import (
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/common/expfmt"
)

// fsyncHistogram is kqbroker's kqbroker_fsync_duration_seconds: cumulative
// counts by upper bound, in seconds.
type fsyncHistogram map[float64]uint64

// fsyncs reads the histogram from the broker's /metrics; nil for a target
// without an admin port (kfake, or a broker given with -bootstrap).
func (t *target) fsyncs() fsyncHistogram {
	if t.admin == "" {
		return nil
	}
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + t.admin + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	families, err := new(expfmt.TextParser).TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	family, ok := families["kqbroker_fsync_duration_seconds"]
	if !ok || len(family.Metric) == 0 || family.Metric[0].Histogram == nil {
		return nil
	}
	h := fsyncHistogram{}
	for _, b := range family.Metric[0].Histogram.Bucket {
		h[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	h[math.Inf(1)] = family.Metric[0].Histogram.GetSampleCount()
	return h
}

// slowFsyncs compares two readings: how many fsyncs in between took longer
// than threshold, and the bucket bound the slowest one fell under.
func slowFsyncs(before, after fsyncHistogram, threshold time.Duration) (slow uint64, slowestUnder string) {
	if before == nil || after == nil {
		return 0, ""
	}
	total := after[math.Inf(1)] - before[math.Inf(1)]
	under := after[threshold.Seconds()] - before[threshold.Seconds()]
	slow = total - under
	slowestUnder = "0"
	for _, bound := range sortedBounds(after) {
		if after[bound]-before[bound] == total {
			if math.IsInf(bound, 1) {
				slowestUnder = "+Inf"
			} else {
				slowestUnder = fmt.Sprint(time.Duration(bound * float64(time.Second)))
			}
			break
		}
	}
	return slow, slowestUnder
}

func sortedBounds(h fsyncHistogram) []float64 {
	return slices.Sorted(maps.Keys(h))
}
