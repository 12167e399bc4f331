package server

import (
	"testing"
	"time"
)

func TestRequestMemory(t *testing.T) {
	const MiB = 1 << 20
	var reported int64
	m := newRequestMemory(40*MiB, func(n int64) { reported = n })
	never := make(chan struct{})

	// Large requests fill their three quarters...
	if !m.acquire(20*MiB, never) || !m.acquire(10*MiB, never) {
		t.Fatal("large requests within 30 MiB of a 40 MiB budget must fit")
	}
	if reported != 30*MiB {
		t.Fatalf("in use %d, want %d", reported, 30*MiB)
	}
	// ...and the next large one waits, though 10 MiB are free...
	largeGranted := make(chan bool, 1)
	go func() { largeGranted <- m.acquire(5*MiB, never) }()
	eventually(t, "a large request to wait", 5*time.Second, func() bool { m.mu.Lock(); defer m.mu.Unlock(); return len(m.waitLarge) == 1 })
	// ...while small requests still get the rest.
	for range 10 {
		if !m.acquire(MiB, never) {
			t.Fatal("small request refused")
		}
	}
	// The budget is full: a small request waits, and gives up when told to.
	cancel := make(chan struct{})
	smallGranted := make(chan bool, 1)
	go func() { smallGranted <- m.acquire(MiB, cancel) }()
	eventually(t, "a small request to wait", 5*time.Second, func() bool { m.mu.Lock(); defer m.mu.Unlock(); return len(m.waitSmall) == 1 })
	close(cancel)
	if <-smallGranted {
		t.Fatal("a cancelled wait reported success")
	}
	// Giving back one large reservation lets the waiting large one in.
	m.release(20 * MiB)
	select {
	case ok := <-largeGranted:
		if !ok {
			t.Fatal("large wait failed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting large request was not granted after a release")
	}
	m.release(10 * MiB)
	m.release(5 * MiB)
	for range 10 {
		m.release(MiB)
	}
	if reported != 0 || len(m.waitSmall)+len(m.waitLarge) != 0 {
		t.Fatalf("after every release: %d in use, %d waiting", reported, len(m.waitSmall)+len(m.waitLarge))
	}
}

func TestRequestMemoryServesLargeWaitersInOrder(t *testing.T) {
	const MiB = 1 << 20
	m := newRequestMemory(40*MiB, nil)
	never := make(chan struct{})
	m.acquire(25*MiB, never)
	granted := make(chan int64, 2)
	waiting := func(n int) func() bool {
		return func() bool { m.mu.Lock(); defer m.mu.Unlock(); return len(m.waitLarge) == n }
	}
	go func() { m.acquire(20*MiB, never); granted <- 20 * MiB }()
	eventually(t, "the 20 MiB request to wait", 5*time.Second, waiting(1))
	// 2 MiB would fit, but the 20 MiB request came first: no overtaking,
	// or a stream of medium requests could starve a big one for ever.
	go func() { m.acquire(2*MiB, never); granted <- 2 * MiB }()
	eventually(t, "the 2 MiB request to queue", 5*time.Second, waiting(2))
	time.Sleep(10 * time.Millisecond)
	if len(granted) != 0 {
		t.Fatalf("a request overtook the one waiting before it")
	}
	m.release(25 * MiB)
	for range 2 {
		select {
		case <-granted:
		case <-time.After(5 * time.Second):
			t.Fatal("waiters not granted after the release")
		}
	}
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
