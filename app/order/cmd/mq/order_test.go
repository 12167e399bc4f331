package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/config"
	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/svc"
	"github.com/kqstack/kqstack/app/order/domain"
	"github.com/kqstack/kqstack/app/order/model"
	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/common/consume"
	"github.com/kqstack/kqstack/common/delay"
	"github.com/kqstack/kqstack/common/event"
	"github.com/kqstack/kqstack/common/push"
	"github.com/kqstack/kqstack/common/redistest"
)

func TestOrderMQ(t *testing.T) {
	b := brokertest.Start(t, nil)
	rdb := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dbPath := filepath.Join(t.TempDir(), "order.db") + "?_pragma=busy_timeout(5000)"

	var c config.Config
	c.ServiceConf = service.ServiceConf{Name: "order-mq-test", Log: logx.LogConf{Mode: "console", Level: "severe"}}
	c.DB.Driver, c.DB.DataSource = "sqlite", dbPath
	c.PaymentUpdateStatusConf = consume.KqConf{KqConf: kq.KqConf{ServiceConf: c.ServiceConf, Brokers: []string{b.Addr}, Group: "payment-update-paystatus-group",
		Topic: event.TopicPaymentStatus, Offset: "first", Conns: 1, Consumers: 1, Processors: 1, MinBytes: 1, MaxBytes: 1 << 20, ForceCommit: true},
		Attempts: 3, Backoff: 10 * time.Millisecond, MaxBackoff: time.Second}
	c.Redis.Addr = rdb.Options().Addr
	c.CloseUnpaid.CheckIntervalMs = 20

	db, err := model.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orders := model.OrderModel{DB: db}
	closeQueue := delay.Queue{Client: rdb, Key: model.CloseUnpaidQueue}
	// The closer's clock: it stands still until the test moves it.
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(base.UnixMilli())
	// addOrder inserts an order waiting for payment until closeAfter past
	// base and schedules its close, as order-api does.
	addOrder := func(orderNo string, userID int64, closeAfter time.Duration) {
		t.Helper()
		closeAt := base.Add(closeAfter)
		if err := orders.Insert(ctx, &model.Order{OrderNo: orderNo, UserID: userID, Amount: 100, CloseAt: closeAt.UnixMilli()}); err != nil {
			t.Fatal(err)
		}
		if err := closeQueue.Add(ctx, orderNo, closeAt); err != nil {
			t.Fatal(err)
		}
	}
	addOrder("O-PAID", 1, time.Hour)
	addOrder("O-UNPAID", 1, 300*time.Millisecond)
	addOrder("O-RACE", 2, 400*time.Millisecond)
	addOrder("O-AFTER-POISON", 2, 1500*time.Millisecond)

	pusher, err := push.NewPusher(push.Config{Brokers: []string{b.Addr}, Topic: event.TopicPaymentStatus, AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	send := func(orderNo string, status event.PaymentStatus, times int) {
		t.Helper()
		e, err := event.New(event.TypePaymentStatusChanged, 1, time.Now(), event.PaymentStatusChangedV1{PaymentNo: "P-" + orderNo, OrderNo: orderNo, Status: status, Amount: 100})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(e)
		for i := 0; i < times; i++ {
			if err := pusher.PushWithKey(ctx, orderNo, string(data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	stateOf := func(orderNo string) domain.State {
		t.Helper()
		o, err := orders.FindOne(ctx, orderNo)
		if err != nil {
			t.Fatal(err)
		}
		return o.State
	}
	waitState := func(orderNo string, want domain.State) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for stateOf(orderNo) != want {
			if time.Now().After(deadline) {
				t.Fatalf("order %s is %s after 10s, want %s", orderNo, stateOf(orderNo), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	scheduled := func(orderNo string) bool {
		t.Helper()
		_, err := rdb.ZScore(ctx, model.CloseUnpaidQueue, orderNo).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		return err == nil
	}
	// advance moves the closer's clock to at past base, runs meanwhile
	// (if any), and returns once the closer checked at that time: a
	// sentinel order due exactly then is scheduled first; checks handle
	// what is due in close time order, one order after the other, so once
	// the sentinel is expired every order due before it was handled
	// (expired, or left alone because it was paid).
	advance := func(at time.Duration, meanwhile func()) {
		t.Helper()
		sentinel := fmt.Sprintf("O-CLOSE-SENTINEL-%d", at.Milliseconds())
		addOrder(sentinel, 9, at)
		clock.Store(base.Add(at).UnixMilli())
		if meanwhile != nil {
			meanwhile()
		}
		waitState(sentinel, domain.Expired)
	}
	// drain returns once the consumer handled every event sent before: a
	// paid event for a sentinel order goes to the same (single) partition
	// after them, and the consumer handles a partition's records in order.
	drains := 0
	drain := func() {
		t.Helper()
		drains++
		sentinel := fmt.Sprintf("O-PAY-SENTINEL-%d", drains)
		addOrder(sentinel, 9, time.Hour)
		send(sentinel, event.PaymentPaid, 1)
		waitState(sentinel, domain.Paid)
	}

	svcCtx := svc.NewServiceContext(c)
	svcCtx.Now = func() time.Time { return time.UnixMilli(clock.Load()) }
	group := newServiceGroup(svcCtx)
	go group.Start()
	defer group.Stop()

	send("O-PAID", event.PaymentPaid, 3) // the same event delivered three times
	waitState("O-PAID", domain.Paid)
	send("O-PAID", event.PaymentRefunded, 1)
	waitState("O-PAID", domain.Refunded)

	if err := pusher.PushWithKey(ctx, "O-POISON", `{"not":"an event"}`); err != nil {
		t.Fatal(err)
	}
	send("O-AFTER-POISON", event.PaymentPaid, 1)
	waitState("O-AFTER-POISON", domain.Paid) // the consumer moved on

	// Unpaid orders close at their close time, not before.
	advance(299*time.Millisecond, nil)
	if state := stateOf("O-UNPAID"); state != domain.WaitPay || !scheduled("O-UNPAID") {
		t.Fatalf("an order due at 300ms is %s at 299ms (still scheduled: %v)", state, scheduled("O-UNPAID"))
	}
	advance(350*time.Millisecond, nil)
	if state := stateOf("O-UNPAID"); state != domain.Expired {
		t.Fatalf("an unpaid order is %s past its close time", state)
	}
	if state := stateOf("O-RACE"); state != domain.WaitPay {
		t.Fatalf("an order due at 400ms is %s at 350ms", state)
	}

	// A payment racing the close: the clock passes the order's close time
	// as its payment arrives. Once both are handled (the two sentinels),
	// exactly one of them has won, for good.
	advance(450*time.Millisecond, func() { send("O-RACE", event.PaymentPaid, 1) })
	drain()
	final := stateOf("O-RACE")
	if final != domain.Paid && final != domain.Expired {
		t.Fatalf("the raced order is %s", final)
	}
	t.Logf("the raced order is %s", final)

	// A paid order never closes, even past its close time: the closer
	// claimed it from the queue and left it paid.
	advance(1800*time.Millisecond, nil)
	if state := stateOf("O-AFTER-POISON"); state != domain.Paid || scheduled("O-AFTER-POISON") {
		t.Fatalf("a paid order is %s after its close time (still scheduled: %v)", state, scheduled("O-AFTER-POISON"))
	}
	if again := stateOf("O-RACE"); again != final {
		t.Fatalf("the raced order changed from %s to %s", final, again)
	}
	if state := stateOf("O-PAID"); state != domain.Refunded {
		t.Fatalf("the refunded order became %s", state)
	}

	// The poison record, and nothing else, is in the dead-letter topic: the
	// consumer has handled every event (drain), so a dead letter would be
	// ahead of a sentinel the test writes there now.
	drain()
	deadLetters, err := push.NewPusher(push.Config{Brokers: []string{b.Addr}, Topic: event.TopicPaymentStatus + ".dlq", AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer deadLetters.Close()
	if err := deadLetters.PushWithKey(ctx, "DLQ-SENTINEL", "sentinel"); err != nil {
		t.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics(event.TopicPaymentStatus+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var dead []string
	for sentinel := false; !sentinel; {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "DLQ-SENTINEL" {
				sentinel = true
			} else if !sentinel {
				dead = append(dead, string(r.Key))
			}
		})
	}
	if len(dead) != 1 || dead[0] != "O-POISON" {
		t.Fatalf("dead letters before the sentinel: %q, want only O-POISON", dead)
	}
}
