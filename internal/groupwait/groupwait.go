// Package groupwait waits for a consumer group to settle and finds the
// pause a failover left in its handling, for the tests and benchmarks that
// start a group and then break something under it.
package groupwait

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Stable waits up to timeout until groupID is Stable with n members, each
// with partitions assigned, and returns it described; the error says what
// the group last looked like.
func Stable(ctx context.Context, admin *kadm.Client, groupID string, n int, timeout time.Duration) (kadm.DescribedGroup, error) {
	var last string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(50 * time.Millisecond) {
		groups, err := admin.DescribeGroups(ctx, groupID)
		if err != nil {
			last = err.Error()
			continue
		}
		g := groups[groupID]
		last = fmt.Sprintf("%s with %d members (%v)", g.State, len(g.Members), g.Err)
		if g.Err != nil || g.State != "Stable" || len(g.Members) != n {
			continue
		}
		assigned := 0
		for _, m := range g.Members {
			if a, ok := m.Assigned.AsConsumer(); ok && len(a.Topics) > 0 {
				assigned++
			}
		}
		if assigned == n {
			return g, nil
		}
		last = fmt.Sprintf("Stable, %d of %d members with partitions", assigned, n)
	}
	return kadm.DescribedGroup{}, fmt.Errorf("group %s is not stable with %d members after %v: %s", groupID, n, timeout, last)
}

// LongestPause looks at when a group handled records (times, in any
// order) from from on: the longest pause between two handlings (or from
// from to the first), when the group handled records again after it, and
// when it last handled one. A group's failover shows as that pause.
func LongestPause(times []time.Time, from time.Time) (resumed time.Time, pause time.Duration, last time.Time) {
	sorted := slices.Clone(times)
	slices.SortFunc(sorted, func(a, b time.Time) int { return a.Compare(b) })
	last = from
	for _, at := range sorted {
		if at.Before(from) {
			continue
		}
		if gap := at.Sub(last); gap > pause {
			resumed, pause = at, gap
		}
		last = at
	}
	return resumed, pause, last
}
