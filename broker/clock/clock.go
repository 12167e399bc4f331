// Package clock gives the broker's core logic its notion of time.
//
// Retention, segment age, group session timeouts, the ISR's lag rule, the
// controller's fencing and every periodic loop read time and wait through
// a Clock, so that tests move time forward instead of sleeping. Two things
// stay on the wall clock: network deadlines (the kernel keeps them) and
// durations measured for metrics.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the current time and makes timers and tickers on it.
type Clock interface {
	Now() time.Time
	// NewTimer sends the time on its channel once d has passed, as
	// time.NewTimer does; d <= 0 fires at once.
	NewTimer(d time.Duration) Timer
	// NewTicker sends the time on its channel every d (d > 0), dropping
	// ticks a slow reader misses, as time.NewTicker does.
	NewTicker(d time.Duration) Ticker
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	C() <-chan time.Time
	// Stop keeps it from firing; false if it already fired or stopped.
	Stop() bool
}

// Ticker is a periodic ticker of a Clock.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// System is the wall clock.
type System struct{}

// Now returns time.Now().
func (System) Now() time.Time { return time.Now() }

// NewTimer returns a time.Timer.
func (System) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

// NewTicker returns a time.Ticker.
func (System) NewTicker(d time.Duration) Ticker { return systemTicker{time.NewTicker(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time { return t.t.C }
func (t systemTimer) Stop() bool          { return t.t.Stop() }

type systemTicker struct{ t *time.Ticker }

func (t systemTicker) C() <-chan time.Time { return t.t.C }
func (t systemTicker) Stop()               { t.t.Stop() }

// Manual is a Clock that only moves when told to; its timers and tickers
// fire as Advance or Set moves it past their time. Safe for concurrent
// use.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*waiter]struct{}
}

// waiter is a timer (period 0) or a ticker of a Manual clock.
type waiter struct {
	clock  *Manual
	at     time.Time
	period time.Duration
	c      chan time.Time
}

// NewManual returns a Manual clock set to start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start, waiters: make(map[*waiter]struct{})}
}

// Now returns the clock's current time.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Advance moves the clock forward by d.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.moveLocked(m.now.Add(d))
}

// Set moves the clock to t.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.moveLocked(t)
}

// Waiters is how many timers and tickers are running: a test waits for
// the code under test to reach its wait before it advances the clock.
func (m *Manual) Waiters() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.waiters)
}

// NewTimer returns a timer firing when the clock reaches now + d.
func (m *Manual) NewTimer(d time.Duration) Timer {
	return manualTimer{m.add(d, 0)}
}

// NewTicker returns a ticker firing every d of the clock's time.
func (m *Manual) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	return manualTicker{m.add(d, d)}
}

func (m *Manual) add(d, period time.Duration) *waiter {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := &waiter{clock: m, at: m.now.Add(d), period: period, c: make(chan time.Time, 1)}
	m.waiters[w] = struct{}{}
	m.moveLocked(m.now) // d <= 0 fires at once
	return w
}

// moveLocked sets the time and fires what is due, earliest first.
func (m *Manual) moveLocked(t time.Time) {
	m.now = t
	var due []*waiter
	for w := range m.waiters {
		if !w.at.After(t) {
			due = append(due, w)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, w := range due {
		select {
		case w.c <- t:
		default: // the reader has not taken the last one: dropped, as time.Ticker does
		}
		if w.period == 0 {
			delete(m.waiters, w)
			continue
		}
		for !w.at.After(t) {
			w.at = w.at.Add(w.period)
		}
	}
}

type manualTimer struct{ *waiter }

func (t manualTimer) C() <-chan time.Time { return t.c }
func (t manualTimer) Stop() bool          { return t.stop() }

type manualTicker struct{ *waiter }

func (t manualTicker) C() <-chan time.Time { return t.c }
func (t manualTicker) Stop()               { t.stop() }

// stop takes the waiter off its clock; false if it was no longer on it.
func (w *waiter) stop() bool {
	w.clock.mu.Lock()
	defer w.clock.mu.Unlock()
	_, running := w.clock.waiters[w]
	delete(w.clock.waiters, w)
	return running
}
