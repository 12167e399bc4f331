package outbox_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/common/outbox"
	"github.com/kqstack/kqstack/common/push"
)

// The event is written in the business change's transaction, so it is
// published if and only if the change committed; the relay pushes it with
// acks=all and deletes its row once the broker has it.
func ExampleRelay() {
	addr, stop, err := brokertest.StartForExample()
	if err != nil {
		panic(err)
	}
	defer stop()
	dir, _ := os.MkdirTemp("", "outbox-example-")
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("sqlite", filepath.Join(dir, "payment.db"))
	if err != nil {
		panic(err)
	}
	defer db.Close()
	for _, schema := range []string{"CREATE TABLE payment (payment_no TEXT PRIMARY KEY, status TEXT)", outbox.Schema(outbox.SQLite)} {
		if _, err := db.Exec(schema); err != nil {
			panic(err)
		}
	}

	// One transaction: the status change and its event. A second one that
	// rolls back leaves no event.
	for _, commit := range []bool{true, false} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			panic(err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO payment VALUES (?, 'paid')", fmt.Sprint("PAY-", commit)); err != nil {
			panic(err)
		}
		if err := outbox.Add(ctx, tx, "payments", "ORD-1", []byte(fmt.Sprintf(`{"committed":%v}`, commit))); err != nil {
			panic(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			panic(err)
		}
	}

	pusher, err := push.NewPusher(push.Config{Brokers: []string{addr}, Topic: "payments", AllowAutoTopicCreation: true})
	if err != nil {
		panic(err)
	}
	defer pusher.Close()
	relay := &outbox.Relay{DB: db, Pushers: map[string]outbox.Pusher{"payments": pusher}}
	published, err := relay.RunOnce(ctx)
	fmt.Println("published:", published, err)

	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("payments"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		panic(err)
	}
	defer consumer.Close()
	record := consumer.PollFetches(ctx).Records()[0]
	fmt.Printf("%s: %s\n", record.Key, record.Value)
	var left int
	_ = db.QueryRow("SELECT COUNT(*) FROM outbox").Scan(&left)
	fmt.Println("rows left in the outbox:", left)
	// Output:
	// published: 1 <nil>
	// ORD-1: {"committed":true}
	// rows left in the outbox: 0
}
