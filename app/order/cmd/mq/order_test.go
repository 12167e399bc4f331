package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/config"
	"github.com/kqstack/kqstack/app/order/domain"
	"github.com/kqstack/kqstack/app/order/model"
	"github.com/kqstack/kqstack/broker/brokertest"
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
	c.PaymentUpdateStatusConf = kq.KqConf{ServiceConf: c.ServiceConf, Brokers: []string{b.Addr}, Group: "payment-update-paystatus-group",
		Topic: event.TopicPaymentStatus, Offset: "first", Conns: 1, Consumers: 1, Processors: 1, MinBytes: 1, MaxBytes: 1 << 20, ForceCommit: true}
	c.DeadLetter = push.Config{Brokers: []string{b.Addr}, Topic: event.TopicPaymentStatus + ".dlq", AllowAutoTopicCreation: true}
	c.Redis.Addr = rdb.Options().Addr
	c.Retry.Attempts, c.Retry.BackoffMs = 3, 10
	c.CloseUnpaid.CheckIntervalMs = 50

	db, err := model.Open("sqlite", dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	orders := model.OrderModel{DB: db}
	now := time.Now()
	for _, o := range []*model.Order{
		{OrderNo: "O-PAID", UserID: 1, Amount: 100, CloseAt: now.Add(time.Hour).UnixMilli()},
		{OrderNo: "O-UNPAID", UserID: 1, Amount: 100, CloseAt: now.Add(300 * time.Millisecond).UnixMilli()},
		{OrderNo: "O-RACE", UserID: 2, Amount: 100, CloseAt: now.Add(400 * time.Millisecond).UnixMilli()},
		{OrderNo: "O-AFTER-POISON", UserID: 2, Amount: 100, CloseAt: now.Add(1500 * time.Millisecond).UnixMilli()},
	} {
		if err := orders.Insert(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	// Scheduled as order-api schedules them.
	closeQueue := delay.Queue{Client: rdb, Key: model.CloseUnpaidQueue}
	for _, orderNo := range []string{"O-UNPAID", "O-RACE", "O-AFTER-POISON"} {
		o, _ := orders.FindOne(ctx, orderNo)
		if err := closeQueue.Add(ctx, orderNo, time.UnixMilli(o.CloseAt)); err != nil {
			t.Fatal(err)
		}
	}
	pusher, err := push.NewPusher(push.Config{Brokers: []string{b.Addr}, Topic: event.TopicPaymentStatus, AllowAutoTopicCreation: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	send := func(orderNo string, status event.PaymentStatus, times int) {
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
		o, err := orders.FindOne(ctx, orderNo)
		if err != nil {
			t.Fatal(err)
		}
		return o.State
	}
	waitState := func(orderNo string, want domain.State) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for stateOf(orderNo) != want {
			if time.Now().After(deadline) {
				t.Fatalf("order %s is %s after 2s, want %s", orderNo, stateOf(orderNo), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	group := newServiceGroup(c)
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

	waitState("O-UNPAID", domain.Expired)

	// A payment racing the close: exactly one of them wins, for good.
	time.Sleep(time.Until(now.Add(400 * time.Millisecond)))
	send("O-RACE", event.PaymentPaid, 1)
	time.Sleep(300 * time.Millisecond)
	final := stateOf("O-RACE")
	if final != domain.Paid && final != domain.Expired {
		t.Fatalf("the raced order is %s", final)
	}
	time.Sleep(200 * time.Millisecond)
	if again := stateOf("O-RACE"); again != final {
		t.Fatalf("the raced order changed from %s to %s", final, again)
	}

	// A paid order never closes, even past its close time.
	time.Sleep(time.Until(now.Add(1800 * time.Millisecond)))
	if state := stateOf("O-AFTER-POISON"); state != domain.Paid {
		t.Fatalf("a paid order became %s after its close time", state)
	}

	// The poison record is in the dead-letter topic.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics(event.TopicPaymentStatus+".dlq"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	fetches := consumer.PollFetches(ctx)
	if fetches.NumRecords() != 1 || string(fetches.Records()[0].Key) != "O-POISON" {
		t.Fatalf("dead letters: %d records", fetches.NumRecords())
	}
}
