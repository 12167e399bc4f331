package server_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/broker/config"
)

// failingHandler fails on some values and records what it saw.
type failingHandler struct {
	mu     sync.Mutex
	failOn map[string]bool
	seen   []string
}

func (h *failingHandler) Consume(_ context.Context, _, value string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, value)
	if h.failOn[value] {
		return errors.New("handler failed")
	}
	return nil
}

func (h *failingHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

// committedOffset is the group's committed offset on partition 0.
func committedOffset(t *testing.T, addr, groupID, topic string) int64 {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	offsets, err := kadm.NewClient(client).FetchOffsets(testContext(t), groupID)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offsets.Lookup(topic, 0)
	if !ok {
		return -1
	}
	return o.At
}

// TestKqForceCommitFalse documents what go-queue kq v1.2.2 does when a
// handler fails with ForceCommit=false, against this broker:
//   - the failed record itself is not committed: if it is the last one in
//     its partition, the committed offset stays at it and the record is
//     delivered again to the next consumer;
//   - but kafka-go commits the highest offset handled per partition, so
//     any later record that succeeds commits past the failure, and the
//     failed record is never seen again. kq alone cannot prevent that;
//     the go-zero stack's common/ consumer wrapper retries, then
//     dead-letters a failing record before returning, so nothing after it
//     is handled (and committed) first.
func TestKqForceCommitFalse(t *testing.T) {
	b := startBroker(t, func(c *config.Config) { c.GroupInitialRebalanceDelayMs = 0 })
	start := func(topic string, h *failingHandler) func() {
		conf := kq.KqConf{
			ServiceConf: service.ServiceConf{Name: "kq-test", Log: logx.LogConf{Mode: "console", Level: "severe"}},
			Brokers:     []string{b.Addr}, Group: topic, Topic: topic, Offset: "first",
			Conns: 1, Consumers: 1, Processors: 1, MinBytes: 1, MaxBytes: 1 << 20, ForceCommit: false,
		}
		q := kq.MustNewQueue(conf, h, kq.WithMaxWait(200*time.Millisecond), kq.WithCommitInterval(100*time.Millisecond))
		go q.Start()
		return q.Stop
	}
	t.Run("a failed last record is not committed and comes back", func(t *testing.T) {
		const topic = "kq-fail-last"
		produceValues(t, b.Addr, topic, []string{"0", "1", "2"})
		h := &failingHandler{failOn: map[string]bool{"2": true}}
		stop := start(topic, h)
		waitFor(t, "three records handled", 30*time.Second, func() bool { return h.count() == 3 })
		waitFor(t, "commit of the successes", 30*time.Second, func() bool { return committedOffset(t, b.Addr, topic, topic) == 2 })
		stop()
		again := &failingHandler{}
		stop = start(topic, again)
		defer stop()
		waitFor(t, "the failed record delivered again", 30*time.Second, func() bool { return again.count() == 1 })
		if again.seen[0] != "2" {
			t.Fatalf("redelivered %q, want the failed record 2", again.seen[0])
		}
	})
	t.Run("a later success commits past a failure (kq's pitfall)", func(t *testing.T) {
		const topic = "kq-fail-middle"
		produceValues(t, b.Addr, topic, []string{"0", "1", "2"})
		h := &failingHandler{failOn: map[string]bool{"1": true}}
		stop := start(topic, h)
		defer stop()
		waitFor(t, "the committed offset past the failure", 30*time.Second, func() bool { return committedOffset(t, b.Addr, topic, topic) == 3 })
	})
}
