package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"
	"github.com/zeromicro/go-zero/rest"

	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/config"
	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/common/event"
	"github.com/kqstack/kqstack/common/push"
	"github.com/kqstack/kqstack/internal/testport"
)

// post sends a JSON request and decodes the JSON answer into out; it
// returns the status code, and the body of an answer other than 200.
func post(t *testing.T, url string, body, out any) (int, string) {
	t.Helper()
	data, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		text, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(text))
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, ""
}

func TestPaymentCallbackPublishesOnceThroughTheOutbox(t *testing.T) {
	b := brokertest.Start(t, nil)
	port := testport.Port(t)
	c := config.Config{
		RestConf: rest.RestConf{Host: "127.0.0.1", Port: port, Timeout: 10000,
			ServiceConf: service.ServiceConf{Name: "payment-api-test", Log: logx.LogConf{Mode: "console", Level: "severe"}}},
		PaymentEvents: push.Config{Brokers: []string{b.Addr}, Topic: event.TopicPaymentStatus, AllowAutoTopicCreation: true},
	}
	c.DB.Driver = "sqlite"
	c.DB.DataSource = filepath.Join(t.TempDir(), "payment.db") + "?_pragma=busy_timeout(5000)"
	c.Outbox.IntervalMs = 20
	group := newServiceGroup(c)
	go group.Start()
	defer group.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d/payment/v1", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/payments/none"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("payment-api did not start")
		}
	}

	var created struct {
		PaymentNo string `json:"payment_no"`
	}
	if code, _ := post(t, base+"/payments", map[string]any{"order_no": "ORD1", "amount": 1999}, &created); code != 200 || created.PaymentNo == "" {
		t.Fatalf("create: %d %+v", code, created)
	}
	// Bad input is 400, an unknown payment 404, each with {code, message}.
	if code, text := post(t, base+"/payments", map[string]any{"order_no": "ORD1", "amount": 0}, nil); code != 400 || text != `{"code":400,"message":"order_no is required and amount must be positive"}` {
		t.Fatalf("a payment of 0: %d %s", code, text)
	}
	if code, text := post(t, base+"/callback", "not an object", nil); code != 400 || !strings.HasPrefix(text, `{"code":400,"message":`) {
		t.Fatalf("a callback that does not parse: %d %s", code, text)
	}
	if code, text := post(t, base+"/callback", map[string]any{"payment_no": "nope", "status": "paid"}, nil); code != 404 || text != `{"code":404,"message":"payment not found: nope"}` {
		t.Fatalf("a callback of an unknown payment: %d %s", code, text)
	}
	if resp, err := http.Get(base + "/payments/nope"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("an unknown payment: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The provider calls back three times: one change, one event.
	changes := 0
	for i := 0; i < 3; i++ {
		var r struct {
			Status  string `json:"status"`
			Changed bool   `json:"changed"`
		}
		if code, _ := post(t, base+"/callback", map[string]any{"payment_no": created.PaymentNo, "status": "paid"}, &r); code != 200 || r.Status != "paid" {
			t.Fatalf("callback %d: %d %+v", i, code, r)
		}
		if r.Changed {
			changes++
		}
	}
	if changes != 1 {
		t.Fatalf("%d status changes for 3 identical callbacks", changes)
	}
	if code, text := post(t, base+"/callback", map[string]any{"payment_no": created.PaymentNo, "status": "refunded"}, nil); code != 200 {
		t.Fatalf("refund: %d %s", code, text)
	}
	code, text := post(t, base+"/callback", map[string]any{"payment_no": created.PaymentNo, "status": "failed"}, nil)
	if want := `{"code":409,"message":"illegal payment status change: ` + created.PaymentNo + ` is refunded, cannot become failed"}`; code != 409 || text != want {
		t.Fatalf("failed after refunded: %d %s, want 409 %s", code, text, want)
	}
	// The sentinel: a second payment of the same order, paid. Its event is
	// recorded after every change of the first payment and the relay
	// publishes in record order, to the order's partition, so an extra
	// event of the first payment would come before it.
	var sentinel struct {
		PaymentNo string `json:"payment_no"`
	}
	if code, text := post(t, base+"/payments", map[string]any{"order_no": "ORD1", "amount": 1}, &sentinel); code != 200 {
		t.Fatalf("create the sentinel payment: %d %s", code, text)
	}
	if code, text := post(t, base+"/callback", map[string]any{"payment_no": sentinel.PaymentNo, "status": "paid"}, nil); code != 200 {
		t.Fatalf("pay the sentinel payment: %d %s", code, text)
	}

	// The outbox relay published exactly the two changes, in order, keyed
	// by the order number, then the sentinel's.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics(event.TopicPaymentStatus), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var statuses []event.PaymentStatus
	for sentinelSeen := false; !sentinelSeen; {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			e, err := event.Decode(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			var p event.PaymentStatusChangedV1
			if err := e.DecodePayload(&p); err != nil || string(r.Key) != "ORD1" {
				t.Fatalf("event %+v key %q: %v", p, r.Key, err)
			}
			switch {
			case sentinelSeen:
			case p.PaymentNo == sentinel.PaymentNo:
				sentinelSeen = true
			case p.PaymentNo == created.PaymentNo:
				statuses = append(statuses, p.Status)
			default:
				t.Fatalf("an event of payment %s", p.PaymentNo)
			}
		})
	}
	if len(statuses) != 2 || statuses[0] != event.PaymentPaid || statuses[1] != event.PaymentRefunded {
		t.Fatalf("events %v, want paid then refunded", statuses)
	}
}
