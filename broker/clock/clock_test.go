package clock

import (
	"testing"
	"time"
)

func TestManualMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewManual(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now() = %v, want %v", c.Now(), start)
	}
	c.Advance(90 * time.Second)
	if want := start.Add(90 * time.Second); !c.Now().Equal(want) {
		t.Fatalf("after Advance: %v, want %v", c.Now(), want)
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Fatalf("after Set: %v, want %v", c.Now(), start)
	}
	var _ Clock = System{}
	if d := time.Since(System{}.Now()); d < 0 || d > time.Minute {
		t.Fatalf("System clock is %v away from time.Now", d)
	}
}

func TestManualTimersAndTickersFireAsTimeMoves(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewManual(start)
	timer := c.NewTimer(10 * time.Second)
	ticker := c.NewTicker(3 * time.Second)
	if c.Waiters() != 2 {
		t.Fatalf("%d waiters, want 2", c.Waiters())
	}
	fired := func(ch <-chan time.Time) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	c.Advance(2 * time.Second)
	if fired(timer.C()) || fired(ticker.C()) {
		t.Fatal("fired before its time")
	}
	c.Advance(time.Second)
	if !fired(ticker.C()) || fired(timer.C()) {
		t.Fatal("the ticker did not fire at 3 s, or the timer fired early")
	}
	c.Advance(7 * time.Second) // 10 s: the timer; the ticker's missed ticks are one
	if !fired(timer.C()) || !fired(ticker.C()) || fired(ticker.C()) {
		t.Fatal("at 10 s: want the timer and one tick")
	}
	if timer.Stop() {
		t.Fatal("Stop of a fired timer reported it running")
	}
	ticker.Stop()
	c.Advance(time.Minute)
	if fired(ticker.C()) || c.Waiters() != 0 {
		t.Fatal("a stopped ticker fired or is still counted")
	}
	if now := c.NewTimer(0); !fired(now.C()) {
		t.Fatal("a timer of 0 did not fire at once")
	}
	var _ Clock = System{}
	if st := (System{}).NewTimer(time.Millisecond); !st.Stop() {
		t.Fatal("a fresh system timer was not running")
	}
}
