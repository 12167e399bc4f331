package consume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"
	_ "modernc.org/sqlite"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/common/event"
	"github.com/kqstack/kqstack/common/push"
	"github.com/kqstack/kqstack/common/redistest"
)

type recorder struct {
	mu      sync.Mutex
	applied map[string]int
	calls   map[string]int
	failFor map[string]int // event id -> how many calls fail (-1: all)
}

func (r *recorder) handle(_ context.Context, e event.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[e.ID]++
	if n := r.failFor[e.ID]; n == -1 || r.calls[e.ID] <= n {
		return fmt.Errorf("handler failed on call %d", r.calls[e.ID])
	}
	r.applied[e.ID]++
	return nil
}

func (r *recorder) count(id string) (applied, calls int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied[id], r.calls[id]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func paymentEvent(t *testing.T, orderNo string) (event.Event, string) {
	t.Helper()
	e, err := event.New(event.TypePaymentStatusChanged, 1, time.Now(), event.PaymentStatusChangedV1{PaymentNo: "p-" + orderNo, OrderNo: orderNo, Status: event.PaymentPaid, Amount: 100})
	if err != nil {
		t.Fatal(err)
	}
	return e, string(mustJSON(t, e))
}

func TestConsumerDedupRetriesAndDeadLetters(t *testing.T) {
	b := brokertest.Start(t, nil)
	rdb := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "payments"
	pusher, err := push.NewPusher(push.Config{Brokers: []string{b.Addr}, Topic: topic, AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	dlq, err := push.NewPusher(push.Config{Brokers: []string{b.Addr}, Topic: topic + ".dlq", AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dlq.Close()

	duplicate, duplicateJSON := paymentEvent(t, "o-dup")
	flaky, flakyJSON := paymentEvent(t, "o-flaky")
	poison, poisonJSON := paymentEvent(t, "o-poison")
	last, lastJSON := paymentEvent(t, "o-last")
	r := &recorder{applied: map[string]int{}, calls: map[string]int{}, failFor: map[string]int{flaky.ID: 2, poison.ID: -1}}
	for _, v := range []string{duplicateJSON, duplicateJSON, flakyJSON, duplicateJSON, poisonJSON, "not json", lastJSON} {
		if err := pusher.PushWithKey(ctx, "order", v); err != nil {
			t.Fatal(err)
		}
	}

	c, err := New(Config{Attempts: 3, Backoff: 10 * time.Millisecond, Dedup: RedisDedup{Client: rdb, Prefix: "test:"}, DeadLetter: dlq}, r.handle)
	if err != nil {
		t.Fatal(err)
	}
	conf := kq.KqConf{
		ServiceConf: service.ServiceConf{Name: "consume-test", Log: logx.LogConf{Mode: "console", Level: "severe"}},
		Brokers:     []string{b.Addr}, Group: "payments-group", Topic: topic, Offset: "first",
		Conns: 1, Consumers: 1, Processors: 1, MinBytes: 1, MaxBytes: 1 << 20, ForceCommit: true,
	}
	q := kq.MustNewQueue(conf, c, kq.WithErrorHandler(c.DeadLetterHandler), kq.WithMaxWait(200*time.Millisecond), kq.WithCommitInterval(100*time.Millisecond))
	go q.Start()
	defer q.Stop()

	waitFor(t, "the last event", func() bool { applied, _ := r.count(last.ID); return applied == 1 })
	if applied, calls := r.count(duplicate.ID); applied != 1 || calls != 1 {
		t.Fatalf("an event delivered 3 times was applied %d times in %d calls", applied, calls)
	}
	if applied, calls := r.count(flaky.ID); applied != 1 || calls != 3 {
		t.Fatalf("the flaky event: applied %d times in %d calls, want 1 in 3", applied, calls)
	}
	if applied, calls := r.count(poison.ID); applied != 0 || calls != 3 {
		t.Fatalf("the poison event: applied %d times in %d calls, want 0 in 3", applied, calls)
	}

	// The dead-letter topic has the poison event and the unparseable record,
	// with the error and where they came from.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics(topic+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var dead []*kgo.Record
	for len(dead) < 2 {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		dead = append(dead, fetches.Records()...)
	}
	header := func(r *kgo.Record, key string) string {
		for _, h := range r.Headers {
			if h.Key == key {
				return string(h.Value)
			}
		}
		return ""
	}
	if string(dead[0].Value) != poisonJSON || header(dead[0], HeaderAttempts) != "3" || header(dead[0], HeaderOriginalOffset) != "4" ||
		header(dead[0], HeaderOriginalTopic) != topic || header(dead[0], HeaderError) == "" {
		t.Fatalf("dead letter 1: %q with headers %v", dead[0].Value, dead[0].Headers)
	}
	if string(dead[1].Value) != "not json" || header(dead[1], HeaderAttempts) != "0" || header(dead[1], HeaderOriginalOffset) != "5" {
		t.Fatalf("dead letter 2: %q with headers %v", dead[1].Value, dead[1].Headers)
	}

	// Everything is committed: the consumer moved on past the poison event.
	admin := kadm.NewClient(consumer)
	waitFor(t, "the commit of every record", func() bool {
		offsets, err := admin.FetchOffsets(ctx, "payments-group")
		if err != nil {
			return false
		}
		o, ok := offsets.Lookup(topic, 0)
		return ok && o.At == 7
	})
	if got, _ := rdb.Get(ctx, "test:"+duplicate.ID).Result(); got != doneValue {
		t.Fatalf("redis has %q for an applied event", got)
	}
	if n, _ := rdb.Exists(ctx, "test:"+poison.ID).Result(); n != 0 {
		t.Fatal("a dead-lettered event's claim was left behind")
	}
}

// TestDedupClaims runs the same claim sequence on both stores.
func TestDedupClaims(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "dedup.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(SQLDedupSchema); err != nil {
		t.Fatal(err)
	}
	stores := map[string]func(t *testing.T) Dedup{
		"redis": func(t *testing.T) Dedup {
			return RedisDedup{Client: redistest.Start(t), Prefix: "claims:", ClaimTTL: time.Second}
		},
		"sql": func(t *testing.T) Dedup { return SQLDedup{DB: db, ClaimTTL: time.Second} },
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			d := open(t)
			ctx := context.Background()
			steps := []struct {
				do   func() (Claim, error)
				want Claim
			}{
				{func() (Claim, error) { return d.Begin(ctx, "e1") }, Claimed},
				{func() (Claim, error) { return d.Begin(ctx, "e1") }, Busy},
				{func() (Claim, error) { return Claimed, d.Abort(ctx, "e1") }, Claimed},
				{func() (Claim, error) { return d.Begin(ctx, "e1") }, Claimed},
				{func() (Claim, error) { return Claimed, d.Done(ctx, "e1") }, Claimed},
				{func() (Claim, error) { return d.Begin(ctx, "e1") }, Applied},
				{func() (Claim, error) { return Claimed, d.Abort(ctx, "e1") }, Claimed}, // does not undo Done
				{func() (Claim, error) { return d.Begin(ctx, "e1") }, Applied},
				{func() (Claim, error) { return d.Begin(ctx, "e2") }, Claimed},
				{func() (Claim, error) { time.Sleep(1100 * time.Millisecond); return d.Begin(ctx, "e2") }, Claimed}, // a stale claim is taken over
			}
			for i, s := range steps {
				got, err := s.do()
				if err != nil || got != s.want {
					t.Fatalf("step %d: %v, %v; want %v", i, got, err, s.want)
				}
			}
		})
	}
}

func TestConfigAndPermanent(t *testing.T) {
	if _, err := New(Config{}, nil); err == nil {
		t.Fatal("a consumer without Dedup and DeadLetter was accepted")
	}
	var permanent permanentError
	if !errors.As(Permanent(errors.New("x")), &permanent) {
		t.Fatal("Permanent does not mark the error")
	}
}
