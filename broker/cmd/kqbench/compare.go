package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// A side is one half of a comparison: a workload on a target.
type side struct {
	target *target
	work   workload
	args   []string // the kqbench command line that runs this workload
}

// A row is one line of the report: side a, optionally against side b, run
// alternately (a b a b ...) for the given number of pairs, so that drift
// on a shared machine hits both alike.
type row struct {
	metric string // the measurement compared, e.g. "records/s"
	a, b   *side
	goal   goal
}

// A goal is a row's target: on the median ratio a/b, or on a's median.
type goal struct {
	ratioAtLeast float64 // median ratio a/b >= this
	valueAtMost  float64 // a's median <= this (in the row's metric)
}

func (g goal) String() string {
	switch {
	case g.ratioAtLeast > 0:
		return fmt.Sprintf("≥ %.1fx", g.ratioAtLeast)
	case g.valueAtMost > 0:
		return fmt.Sprintf("≤ %s", formatValue(g.valueAtMost))
	}
	return ""
}

// A result is what a row measured.
type result struct {
	row     row
	a, b    []measurement
	ratios  []float64 // per pair, a/b
	elapsed time.Duration
}

// withRow is the same runs reported for another row (metric and goal).
func (r result) withRow(other row) result {
	out := r
	out.row = other
	out.ratios = nil
	for i := range min(len(r.a), len(r.b)) {
		if b := r.b[i][other.metric]; b != 0 {
			out.ratios = append(out.ratios, r.a[i][other.metric]/b)
		}
	}
	return out
}

func (r result) aStats() stats { return summarize(r.a, r.row.metric) }
func (r result) bStats() stats { return summarize(r.b, r.row.metric) }

func (r result) medianRatio() float64 { return median(r.ratios) }

// met reports whether the goal was met, and whether the row has one.
func (r result) met() (met, hasGoal bool) {
	switch {
	case r.row.goal.ratioAtLeast > 0:
		return r.medianRatio() >= r.row.goal.ratioAtLeast, true
	case r.row.goal.valueAtMost > 0:
		return r.aStats().median <= r.row.goal.valueAtMost, true
	}
	return false, false
}

type stats struct{ min, median, max float64 }

func summarize(ms []measurement, metric string) stats {
	values := make([]float64, 0, len(ms))
	for _, m := range ms {
		values = append(values, m[metric])
	}
	if len(values) == 0 {
		return stats{}
	}
	slices.Sort(values)
	return stats{values[0], median(values), values[len(values)-1]}
}

func median(values []float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// runRow runs a row's pairs, printing progress to log.
func runRow(ctx context.Context, r row, pairs int, log io.Writer) (result, error) {
	begin := time.Now()
	res := result{row: r}
	sides := []*side{r.a}
	if r.b != nil {
		sides = append(sides, r.b)
	}
	for _, s := range sides {
		if s.work.setup != nil {
			fmt.Fprintf(log, "  setting up %s on %s\n", s.work.name, s.target.name)
			if err := s.work.setup(ctx, s.target); err != nil {
				return res, fmt.Errorf("%s on %s: setup: %w", s.work.name, s.target.name, err)
			}
		}
		if s.work.teardown != nil {
			defer s.work.teardown(context.Background(), s.target)
		}
	}
	for pair := 1; pair <= pairs; pair++ {
		for i, s := range sides {
			runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			m, err := s.work.run(runCtx, s.target)
			cancel()
			if err != nil {
				return res, fmt.Errorf("%s on %s: %w", s.work.name, s.target.name, err)
			}
			fmt.Fprintf(log, "  %d/%d %-8s %-48s %s\n", pair, pairs, s.target.name, s.work.name, formatMeasurement(m, r.metric))
			if i == 0 {
				res.a = append(res.a, m)
			} else {
				res.b = append(res.b, m)
			}
		}
		if r.b != nil {
			a, b := res.a[len(res.a)-1][r.metric], res.b[len(res.b)-1][r.metric]
			if b != 0 {
				res.ratios = append(res.ratios, a/b)
			}
		}
	}
	res.elapsed = time.Since(begin)
	return res, nil
}

// formatMeasurement prints the row's metric first, then the others.
func formatMeasurement(m measurement, metric string) string {
	parts := []string{fmt.Sprintf("%s %s", formatValue(m[metric]), metric)}
	var others []string
	for name := range m {
		if name != metric {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range others {
		parts = append(parts, fmt.Sprintf("%s %s", formatValue(m[name]), name))
	}
	return strings.Join(parts, ", ")
}

// formatValue prints a figure with 3 significant digits and k/M suffixes.
func formatValue(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
