package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	_ "modernc.org/sqlite"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/common/push"
)

func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "outbox.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(Schema(SQLite)); err != nil {
		t.Fatal(err)
	}
	return db
}

// addInTx records rows the way a service does: one transaction per change.
func addInTx(t *testing.T, db *sql.DB, first, n int, rollback bool) {
	t.Helper()
	for i := first; i < first+n; i++ {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := Add(context.Background(), tx, "orders", fmt.Sprintf("order-%d", i%3), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if rollback {
			err = tx.Rollback()
		} else {
			err = tx.Commit()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestRelayDrainsInOrderAndSurvivesABrokerRestart(t *testing.T) {
	b := brokertest.Start(t, func(c *config.Config) { c.DefaultPartitions = 3 })
	db := openSQLite(t)
	pusher, err := push.NewPusher(push.Config{Brokers: []string{b.Addr}, Topic: "orders", AllowAutoTopicCreation: true, Attempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer pusher.Close()
	relay := &Relay{DB: db, Pushers: map[string]Pusher{"orders": pusher}, Batch: 10}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// A row written inside a traced request carries its trace.
	otel.SetTextMapPropagator(propagation.TraceContext{})
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	traced := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled}))
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if err := Add(traced, tx, "orders", "order-traced", []byte("traced")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	addInTx(t, db, 0, 30, false)
	addInTx(t, db, 1000, 5, true) // rolled back: never published
	for {
		n, err := relay.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	// The broker (every broker, with KQ_TEST_BROKERS) goes away mid-flow:
	// rows wait in the outbox.
	b.StopAll(t)
	addInTx(t, db, 30, 10, false)
	if n, err := relay.RunOnce(ctx); err == nil || n != 0 {
		t.Fatalf("with the broker down: published %d, err %v", n, err)
	}
	var left int
	if err := db.QueryRow("SELECT COUNT(*) FROM outbox").Scan(&left); err != nil || left != 10 {
		t.Fatalf("%d rows in the outbox while the broker is down (%v), want 10", left, err)
	}
	b.StartAllAgain(t)
	go relay.Run(ctx)
	// Everything arrives once the broker is back, each key in order.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]bool{}
	last := map[string]int{}
	duplicates := 0
	defer func() { t.Logf("%d records came more than once", duplicates) }()
	for len(seen) < 41 {
		fetches := consumer.PollFetches(ctx)
		if err := fetches.Err(); err != nil {
			t.Fatal(err)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "traced" {
				seen["traced"] = true
				for _, h := range r.Headers {
					if h.Key == "traceparent" && strings.Contains(string(h.Value), traceID.String()) {
						return
					}
				}
				t.Errorf("the traced row lost its trace: %v", r.Headers)
				return
			}
			var n int
			fmt.Sscan(string(r.Value), &n)
			if n >= 1000 {
				t.Errorf("a rolled-back row was published: %d", n)
			}
			// A push retried after a lost answer comes again (at least
			// once: consumers deduplicate); what is new must come in
			// order.
			if seen[string(r.Value)] {
				duplicates++
				return
			}
			if prev, ok := last[string(r.Key)]; ok && n < prev {
				t.Errorf("key %s out of order: %d after %d", r.Key, n, prev)
			}
			last[string(r.Key)] = n
			seen[string(r.Value)] = true
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := db.QueryRow("SELECT COUNT(*) FROM outbox").Scan(&left); err == nil && left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows left in the outbox", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
