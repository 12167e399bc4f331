package groupwait

import (
	"testing"
	"time"
)

func TestLongestPause(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	// Out of order, one before from; a 2 s pause ends at 3400.
	times := []time.Time{at(1400), at(100), at(3400), at(1200), at(3500), at(-50)}
	resumed, pause, last := LongestPause(times, at(0))
	if !resumed.Equal(at(3400)) || pause != 2*time.Second || !last.Equal(at(3500)) {
		t.Fatalf("resumed %v, pause %v, last %v", resumed.Sub(base), pause, last.Sub(base))
	}
	// Nothing handled after from: no pause, last is from.
	if resumed, pause, last := LongestPause(times, at(4000)); !resumed.IsZero() || pause != 0 || !last.Equal(at(4000)) {
		t.Fatalf("after the last handling: %v %v %v", resumed, pause, last.Sub(base))
	}
}
