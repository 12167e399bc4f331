package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/queue"
	"github.com/zeromicro/go-zero/core/service"
)

// handled counts how often each record value was handled.
type handled struct {
	mu    sync.Mutex
	count map[string]int
}

func (h *handled) Consume(_ context.Context, _, value string) error {
	h.mu.Lock()
	h.count[value]++
	h.mu.Unlock()
	return nil
}

func (h *handled) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.count)
}

func (h *handled) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, c := range h.count {
		n += c
	}
	return n
}

// startKq starts one go-queue kq consumer (a kafka-go group member with
// manual commits) and returns it running.
func startKq(addr, topic, groupID string, h kq.ConsumeHandler) queue.MessageQueue {
	conf := kq.KqConf{
		ServiceConf: service.ServiceConf{Name: "kq-test", Log: logx.LogConf{Mode: "console", Level: "severe"}},
		Brokers:     []string{addr}, Group: groupID, Topic: topic, Offset: "first",
		Conns: 1, Consumers: 1, Processors: 1, MinBytes: 1, MaxBytes: 10 << 20, ForceCommit: true,
	}
	q := kq.MustNewQueue(conf, h, kq.WithMaxWait(200*time.Millisecond), kq.WithCommitInterval(200*time.Millisecond))
	go q.Start()
	return q
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKqConsumerGroup(t *testing.T) {
	b := groupBroker(t)
	const topic, groupID = "kq-orders", "kq-group"
	produceKeyed(t, b.Addr, topic, 10000)
	h := &handled{count: make(map[string]int)}
	members := []queue.MessageQueue{startKq(b.Addr, topic, groupID, h), startKq(b.Addr, topic, groupID, h), startKq(b.Addr, topic, groupID, h)}
	waitFor(t, "10,000 records handled by 3 members", 60*time.Second, func() bool { return h.distinct() == 10000 })

	// One member stops: the others take its partitions; nothing is lost.
	members[0].Stop()
	produceKeyedFrom(t, b.Addr, topic, 10000, 2000)
	waitFor(t, "the records produced after a member left", 60*time.Second, func() bool { return h.distinct() == 12000 })
	waitFor(t, "lag 0", 30*time.Second, func() bool { return lag(t, b.Addr, groupID, topic) == 0 })
	members[1].Stop()
	members[2].Stop()
	handledBefore := h.total()

	// The broker restarts; a new member resumes after the committed offsets.
	b.Restart(t)
	produceKeyedFrom(t, b.Addr, topic, 12000, 100)
	members = []queue.MessageQueue{startKq(b.Addr, topic, groupID, h)}
	defer members[0].Stop()
	waitFor(t, "the records produced after the restart", 60*time.Second, func() bool { return h.distinct() == 12100 })
	time.Sleep(500 * time.Millisecond) // let any redelivery show
	if again := h.total() - handledBefore - 100; again != 0 {
		t.Fatalf("%d committed records were handled again after the restart", again)
	}
}

// produceKeyedFrom writes records with values first..first+n-1.
func produceKeyedFrom(t *testing.T, addr, topic string, first, n int) {
	t.Helper()
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprint(first + i)
	}
	produceValues(t, addr, topic, values)
}
