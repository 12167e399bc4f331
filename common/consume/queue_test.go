package consume

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/conf"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/common/push"
	"github.com/kqstack/kqstack/common/redistest"
)

// TestMustNewQueueTakesAKqBlock: an existing kq YAML block (8 processors,
// as kq's defaults) loads into KqConf with the safety fields' defaults; the
// queue applies each event once, dead-letters a poison one to <topic>.dlq
// after Attempts, and commits every record.
func TestMustNewQueueTakesAKqBlock(t *testing.T) {
	b := brokertest.Start(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var c struct {
		Consumer KqConf
	}
	yaml := fmt.Sprintf(`Consumer:
  Name: orders-mq
  Log:
    Mode: console
    Level: severe
  Brokers: [%s]
  Group: orders-group
  Topic: orders
  Offset: first
  Processors: 8
  MinBytes: 1
  Attempts: 2
  Backoff: 10ms
`, b.Addr)
	if err := conf.LoadFromYamlBytes([]byte(yaml), &c); err != nil {
		t.Fatal(err)
	}
	if c.Consumer.Consumers != 8 || c.Consumer.MaxBackoff != 5*time.Second || c.Consumer.DeadLetterTopic != "" || !c.Consumer.ForceCommit {
		t.Fatalf("kq's and the safety fields' defaults: %+v", c.Consumer)
	}
	pusher, err := push.NewPusher(push.Config{Brokers: []string{b.Addr}, Topic: "orders", AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	good, goodJSON := paymentEvent(t, "o-good")
	poison, poisonJSON := paymentEvent(t, "o-poison")
	last, lastJSON := paymentEvent(t, "o-last")
	for _, v := range []string{goodJSON, poisonJSON, goodJSON, lastJSON} {
		if err := pusher.PushWithKey(ctx, "order", v); err != nil {
			t.Fatal(err)
		}
	}
	r := &recorder{applied: map[string]int{}, calls: map[string]int{}, failFor: map[string]int{poison.ID: -1}}
	q := MustNewQueue(c.Consumer, SQLDedup{DB: openDedupDB(t)}, r.handle, kq.WithMaxWait(200*time.Millisecond), kq.WithCommitInterval(100*time.Millisecond))
	go q.Start()
	defer q.Stop()

	waitFor(t, "the last event", func() bool { applied, _ := r.count(last.ID); return applied == 1 })
	if applied, calls := r.count(good.ID); applied != 1 || calls != 1 {
		t.Fatalf("an event delivered twice: applied %d times in %d calls", applied, calls)
	}
	if applied, calls := r.count(poison.ID); applied != 0 || calls != 2 {
		t.Fatalf("the poison event: applied %d times in %d calls, want 0 in 2", applied, calls)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics("orders.dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	fetches := consumer.PollFetches(ctx)
	if err := fetches.Err(); err != nil || len(fetches.Records()) != 1 || string(fetches.Records()[0].Value) != poisonJSON {
		t.Fatalf("orders.dlq: %v %d records", err, len(fetches.Records()))
	}
	admin := kadm.NewClient(consumer)
	waitFor(t, "the commit of every record", func() bool {
		offsets, err := admin.FetchOffsets(ctx, "orders-group")
		o, ok := offsets.Lookup("orders", 0)
		return err == nil && ok && o.At == 4
	})
}

// Without a Dedup store given, MustNewQueue takes Redis from the config's
// Dedup block: an event delivered twice is applied once, its id kept under
// Name + ":event:".
func TestMustNewQueueTakesItsDedupFromTheConfig(t *testing.T) {
	b := brokertest.Start(t, nil)
	rdb := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var c struct{ Consumer KqConf }
	yaml := fmt.Sprintf("Consumer:\n  Name: orders-mq\n  Log:\n    Mode: console\n    Level: severe\n  Brokers: [%s]\n  Group: orders-group\n  Topic: orders\n  Offset: first\n  MinBytes: 1\n  Dedup:\n    Redis: %s\n", b.Addr, rdb.Options().Addr)
	if err := conf.LoadFromYamlBytes([]byte(yaml), &c); err != nil {
		t.Fatal(err)
	}
	pusher, err := push.NewPusher(push.Config{Brokers: []string{b.Addr}, Topic: "orders", AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	twice, twiceJSON := paymentEvent(t, "o-twice")
	last, lastJSON := paymentEvent(t, "o-last")
	for _, v := range []string{twiceJSON, twiceJSON, lastJSON} {
		if err := pusher.PushWithKey(ctx, "order", v); err != nil {
			t.Fatal(err)
		}
	}
	r := &recorder{applied: map[string]int{}, calls: map[string]int{}, failFor: map[string]int{}}
	q := MustNewQueue(c.Consumer, nil, r.handle, kq.WithMaxWait(200*time.Millisecond))
	go q.Start()
	defer q.Stop()
	waitFor(t, "the last event", func() bool { applied, _ := r.count(last.ID); return applied == 1 })
	if applied, calls := r.count(twice.ID); applied != 1 || calls != 1 {
		t.Fatalf("an event delivered twice: applied %d times in %d calls", applied, calls)
	}
	if got, _ := rdb.Get(ctx, "orders-mq:event:"+twice.ID).Result(); got != doneValue {
		t.Fatalf("redis has %q for the applied event", got)
	}
}
