package consume_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/conf"
	_ "modernc.org/sqlite"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/common/consume"
	"github.com/kqstack/kqstack/common/event"
	"github.com/kqstack/kqstack/common/push"
)

// An existing kq YAML block loads into consume.KqConf as it is; the
// queue applies each event once (a redelivered one is skipped), sends one
// that cannot be applied to the dead-letter topic, and commits both.
func ExampleMustNewQueue() {
	addr, stop, err := brokertest.StartForExample()
	if err != nil {
		panic(err)
	}
	defer stop()
	dir, _ := os.MkdirTemp("", "consume-example-")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var c struct{ PaymentsConf consume.KqConf }
	yaml := fmt.Sprintf("PaymentsConf:\n  Name: payments-mq\n  Log:\n    Mode: console\n    Level: severe\n  Brokers: [%s]\n  Group: payments-group\n  Topic: payments\n  Offset: first\n  MinBytes: 1\n  Attempts: 2\n  Backoff: 10ms\n", addr)
	if err := conf.LoadFromYamlBytes([]byte(yaml), &c); err != nil {
		panic(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "dedup.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.Exec(consume.SQLDedupSchema); err != nil {
		panic(err)
	}

	// The producer side: event envelopes, one of them pushed twice.
	pusher, err := push.NewPusher(push.Config{Brokers: []string{addr}, Topic: "payments", AllowAutoTopicCreation: true})
	if err != nil {
		panic(err)
	}
	defer pusher.Close()
	for _, order := range []string{"ORD-1", "ORD-1", "ORD-BAD", "ORD-2"} {
		e, _ := event.New("payment.paid", 1, time.Unix(0, 0), map[string]string{"order_no": order})
		if order == "ORD-1" {
			e.ID = "the-same-id" // a redelivery: the same event again
		}
		value, _ := json.Marshal(e)
		if err := pusher.PushWithKey(ctx, order, string(value)); err != nil {
			panic(err)
		}
	}

	done := make(chan struct{})
	q := consume.MustNewQueue(c.PaymentsConf, consume.SQLDedup{DB: db}, func(_ context.Context, e event.Event) error {
		var payload struct {
			OrderNo string `json:"order_no"`
		}
		if err := e.DecodePayload(&payload); err != nil {
			return consume.Permanent(err)
		}
		if payload.OrderNo == "ORD-BAD" {
			return errors.New("no such order") // tried Attempts times, then dead-lettered
		}
		fmt.Println("applied", payload.OrderNo)
		if payload.OrderNo == "ORD-2" {
			close(done)
		}
		return nil
	}, kq.WithMaxWait(100*time.Millisecond), kq.WithCommitInterval(50*time.Millisecond))
	go q.Start()
	defer q.Stop()
	<-done

	client, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		panic(err)
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	for {
		dead, _ := admin.ListEndOffsets(ctx, "payments.dlq")
		committed, _ := admin.FetchOffsets(ctx, "payments-group")
		d, _ := dead.Lookup("payments.dlq", 0)
		o, _ := committed.Lookup("payments", 0)
		if d.Offset == 1 && o.At == 4 {
			fmt.Println("dead-lettered:", d.Offset, "committed up to:", o.At)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Output:
	// applied ORD-1
	// applied ORD-2
	// dead-lettered: 1 committed up to: 4
}
