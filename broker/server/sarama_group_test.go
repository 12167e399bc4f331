package server_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

type saramaHandler struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *saramaHandler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.seen[string(m.Value)] = true
		h.mu.Unlock()
		session.MarkMessage(m, "")
	}
	return nil
}

func (h *saramaHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen)
}

func TestSaramaConsumerGroup(t *testing.T) {
	b := groupBroker(t)
	const topic, groupID, n = "sarama-group", "sarama-group", 2000
	produceKeyed(t, b.Addr, topic, n)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_0_0_0
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Interval = 100 * time.Millisecond
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	h := &saramaHandler{seen: make(map[string]bool)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for member := 0; member < 2; member++ {
		group, err := sarama.NewConsumerGroup([]string{b.Addr}, groupID, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer group.Close()
			for ctx.Err() == nil {
				if err := group.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
					t.Errorf("consume: %v", err)
					return
				}
			}
		}()
	}
	waitFor(t, "sarama to consume every record", 60*time.Second, func() bool { return h.count() == n })
	waitFor(t, "lag 0", 30*time.Second, func() bool { return lag(t, b.Addr, groupID, topic) == 0 })
	cancel()
	wg.Wait()
}

func TestKcatConsumerGroup(t *testing.T) {
	b := groupBroker(t)
	produceKeyed(t, b.Addr, "kcat-group", 500)
	out := kcat(t, "", "-b", b.Addr, "-G", "kcat-group", "-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=100",
		"-e", "-f", "%s\n", "kcat-group")
	lines := 0
	for _, c := range out {
		if c == '\n' {
			lines++
		}
	}
	if lines != 500 {
		t.Fatalf("kcat -G consumed %d records, want 500", lines)
	}
	if l := lag(t, b.Addr, "kcat-group", "kcat-group"); l != 0 {
		t.Fatalf("lag %d after kcat -G", l)
	}
}
