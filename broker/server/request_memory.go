package server

import "sync"

// smallRequestBytes divides requests into small ones (most produce and
// every fetch, commit and metadata request) and large ones. A quarter of
// the request memory is open to small requests only.
const smallRequestBytes = 1 << 20

// requestMemory is the broker-wide budget for the bytes of requests held
// while they are read and handled (Kafka's queued.max.request.bytes).
//
// A connection reserves a request's announced size once the request's
// header names an API and version this broker serves, and gives it back
// when the request is handled; its buffer still grows only as the bytes
// arrive, so a client that announces 100 MB and sends 1 KB costs the
// broker 1 KB of memory. A reservation is all or nothing, so requests that
// are being read never wait on one another for the rest of their room.
// When a request does not fit, its connection waits (it reads nothing
// more) until one does: back-pressure, not allocation.
//
// Small requests may use the whole budget, large ones three quarters of it,
// so that clients stuck halfway through huge requests cannot stop the
// small requests of everyone else. Within each class waiters are served in
// arrival order.
type requestMemory struct {
	capacity      int64
	largeCapacity int64
	inUse         func(bytes int64) // told after every change; may be nil

	mu        sync.Mutex
	used      int64 // by all requests
	usedLarge int64 // by large requests
	waitSmall []*memoryWaiter
	waitLarge []*memoryWaiter
}

// memoryWaiter is a reservation waiting for room; ready is closed when it
// is granted.
type memoryWaiter struct {
	bytes int64
	ready chan struct{}
}

func newRequestMemory(capacity int64, inUse func(int64)) *requestMemory {
	return &requestMemory{capacity: capacity, largeCapacity: capacity - capacity/4, inUse: inUse}
}

// acquire reserves bytes, waiting until they fit or cancel is closed; it
// reports whether they were reserved.
func (m *requestMemory) acquire(bytes int64, cancel <-chan struct{}) bool {
	large := bytes > smallRequestBytes
	m.mu.Lock()
	queue := &m.waitSmall
	if large {
		queue = &m.waitLarge
	}
	if len(*queue) == 0 && m.fitsLocked(bytes) {
		m.takeLocked(bytes)
		m.mu.Unlock()
		return true
	}
	waiter := &memoryWaiter{bytes: bytes, ready: make(chan struct{})}
	*queue = append(*queue, waiter)
	m.mu.Unlock()

	select {
	case <-waiter.ready:
		return true
	case <-cancel:
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-waiter.ready: // granted while cancelling: give it back
		m.giveBackLocked(bytes)
	default:
		for i, w := range *queue {
			if w == waiter {
				*queue = append((*queue)[:i], (*queue)[i+1:]...)
				break
			}
		}
		m.grantLocked() // the next in line may fit now
	}
	return false
}

// release gives back what acquire reserved.
func (m *requestMemory) release(bytes int64) {
	m.mu.Lock()
	m.giveBackLocked(bytes)
	m.mu.Unlock()
}

func (m *requestMemory) fitsLocked(bytes int64) bool {
	if m.used+bytes > m.capacity {
		return false
	}
	return bytes <= smallRequestBytes || m.usedLarge+bytes <= m.largeCapacity
}

func (m *requestMemory) takeLocked(bytes int64) {
	m.used += bytes
	if bytes > smallRequestBytes {
		m.usedLarge += bytes
	}
	if m.inUse != nil {
		m.inUse(m.used)
	}
}

func (m *requestMemory) giveBackLocked(bytes int64) {
	m.used -= bytes
	if bytes > smallRequestBytes {
		m.usedLarge -= bytes
	}
	if m.inUse != nil {
		m.inUse(m.used)
	}
	m.grantLocked()
}

// grantLocked wakes the waiters at the head of each queue that fit now.
func (m *requestMemory) grantLocked() {
	for _, queue := range []*[]*memoryWaiter{&m.waitSmall, &m.waitLarge} {
		for len(*queue) > 0 && m.fitsLocked((*queue)[0].bytes) {
			waiter := (*queue)[0]
			*queue = (*queue)[1:]
			m.takeLocked(waiter.bytes)
			close(waiter.ready)
		}
	}
}
