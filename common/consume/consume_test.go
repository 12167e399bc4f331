package consume

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
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

func openDedupDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "dedup.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(SQLDedupSchema); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestDedupClaims runs the same claim sequence on both stores. The worker
// of a claim dies and its claim goes stale without the test waiting: the
// SQL store's clock is moved past ClaimTTL; Redis, which times the claim
// itself, must hold it with a TTL of at most ClaimTTL, and the test then
// expires the key as Redis does when that TTL runs out.
func TestDedupClaims(t *testing.T) {
	type store struct {
		dedup Dedup
		stale func(t *testing.T, id string) // makes id's claim stale
	}
	stores := map[string]func(t *testing.T) store{
		"redis": func(t *testing.T) store {
			client := redistest.Start(t)
			return store{
				dedup: RedisDedup{Client: client, Prefix: "claims:", ClaimTTL: time.Second},
				stale: func(t *testing.T, id string) {
					ctx := context.Background()
					ttl, err := client.PTTL(ctx, "claims:"+id).Result()
					if err != nil || ttl <= 0 || ttl > time.Second {
						t.Fatalf("the claim of %s expires in %v (%v), want within the claim TTL of 1s", id, ttl, err)
					}
					// An expiry time in the past: Redis drops the key.
					if err := client.PExpireAt(ctx, "claims:"+id, time.UnixMilli(1)).Err(); err != nil {
						t.Fatal(err)
					}
				},
			}
		},
		"sql": func(t *testing.T) store {
			var now atomic.Int64
			now.Store(time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli())
			return store{
				dedup: SQLDedup{DB: openDedupDB(t), ClaimTTL: time.Second, Now: func() time.Time { return time.UnixMilli(now.Load()) }},
				stale: func(*testing.T, string) { now.Add((time.Second + time.Millisecond).Milliseconds()) },
			}
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			d := s.dedup
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
				{func() (Claim, error) { s.stale(t, "e2"); return d.Begin(ctx, "e2") }, Claimed}, // a stale claim is taken over
				{func() (Claim, error) { return d.Begin(ctx, "e2") }, Busy},                      // by one worker only
			}
			for i, step := range steps {
				got, err := step.do()
				if err != nil || got != step.want {
					t.Fatalf("step %d: %v, %v; want %v", i, got, err, step.want)
				}
			}
		})
	}
}

// TestSQLDedupClaimTTL moves SQLDedup's clock around the claim TTL: a
// claim is stale once it is older than ClaimTTL (1 minute by default), a
// takeover starts its age again, and Done stamps the row with Now.
func TestSQLDedupClaimTTL(t *testing.T) {
	db := openDedupDB(t)
	start := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var elapsed atomic.Int64 // ms since start
	now := func() time.Time { return start.Add(time.Duration(elapsed.Load()) * time.Millisecond) }
	ctx := context.Background()
	for _, ttl := range []time.Duration{0, 5 * time.Second} {
		d := SQLDedup{DB: db, ClaimTTL: ttl, Now: now}
		stale := ttl
		if ttl == 0 {
			stale = time.Minute
		}
		id := fmt.Sprintf("claim-ttl-%v", ttl)
		steps := []struct {
			at   time.Duration // since the first claim
			want Claim
		}{
			{0, Claimed},
			{stale - time.Millisecond, Busy},
			{stale, Busy},                       // exactly ClaimTTL old: not yet stale
			{stale + time.Millisecond, Claimed}, // taken over, stamped again
			{2 * stale, Busy},
			{2*stale + time.Millisecond, Busy}, // not older than ClaimTTL since the takeover
			{2*stale + 2*time.Millisecond, Claimed},
		}
		first := elapsed.Load()
		for i, step := range steps {
			elapsed.Store(first + step.at.Milliseconds())
			if got, err := d.Begin(ctx, id); err != nil || got != step.want {
				t.Fatalf("ClaimTTL %v, step %d (%v after the first claim): %v, %v; want %v", ttl, i, step.at, got, err, step.want)
			}
		}
		if err := d.Done(ctx, id); err != nil {
			t.Fatal(err)
		}
		var updatedAt int64
		if err := db.QueryRow(`SELECT updated_at FROM processed_events WHERE event_id = ?`, id).Scan(&updatedAt); err != nil || updatedAt != now().UnixMilli() {
			t.Fatalf("done at %d, the row says %d (%v)", now().UnixMilli(), updatedAt, err)
		}
		elapsed.Add((24 * time.Hour).Milliseconds())
		if got, err := d.Begin(ctx, id); err != nil || got != Applied {
			t.Fatalf("a day after Done: %v, %v; want Applied", got, err)
		}
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
