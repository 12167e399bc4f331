// Package outbox publishes events that a service records in the same SQL
// transaction as the state change they describe, so a change is never
// committed without its event, nor an event pushed for a change that
// rolled back (no dual writes).
//
// Add inserts a row inside the caller's transaction. A Relay pushes rows in
// id order with a synchronous acks=all Pusher, a round's rows in one batch,
// and deletes them only after the broker acknowledged all of them; when a
// push fails the round stops and the rows stay, so later rows of the same
// key are not pushed ahead of them. A crash between the push
// and the delete pushes a row twice: consumers dedup by event id.
//
// The table (MySQL):
//
//	CREATE TABLE outbox (
//	  id          BIGINT AUTO_INCREMENT PRIMARY KEY,
//	  topic       VARCHAR(255) NOT NULL,
//	  msg_key     VARCHAR(255) NOT NULL,
//	  payload     MEDIUMTEXT   NOT NULL,
//	  traceparent VARCHAR(64)  NULL,     -- the writer's trace, carried to the consumer
//	  created_at  BIGINT       NOT NULL
//	);
//
// SQLite uses INTEGER PRIMARY KEY AUTOINCREMENT for id; see Schema.
package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/kqstack/kqstack/common/push"
)

// Dialect names the SQL flavour for Schema.
type Dialect string

const (
	MySQL  Dialect = "mysql"
	SQLite Dialect = "sqlite"
)

// Schema returns the CREATE TABLE statement for the outbox.
func Schema(d Dialect) string {
	id := "id BIGINT AUTO_INCREMENT PRIMARY KEY"
	payload := "MEDIUMTEXT"
	if d == SQLite {
		id, payload = "id INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT"
	}
	return `CREATE TABLE IF NOT EXISTS outbox (
  ` + id + `,
  topic       VARCHAR(255) NOT NULL,
  msg_key     VARCHAR(255) NOT NULL,
  payload     ` + payload + ` NOT NULL,
  traceparent VARCHAR(64)  NULL,
  created_at  BIGINT NOT NULL
)`
}

// Add records an event to publish, inside the caller's transaction, with
// the caller's trace context (W3C traceparent) for the message headers.
func Add(ctx context.Context, tx *sql.Tx, topic, key string, payload []byte) error {
	carrier := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, carrier)
	var traceparent any
	if tp := carrier.Get("traceparent"); tp != "" {
		traceparent = tp
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO outbox (topic, msg_key, payload, traceparent, created_at) VALUES (?, ?, ?, ?, ?)",
		topic, key, string(payload), traceparent, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// Pusher is what the relay pushes with (common/push.Pusher).
type Pusher interface {
	// PushBatch pushes messages in order and returns once the broker has
	// every one, or an error.
	PushBatch(ctx context.Context, messages []push.Message) error
}

// Relay drains the outbox.
type Relay struct {
	DB *sql.DB
	// Pushers by topic.
	Pushers map[string]Pusher
	// Batch is how many rows a round reads (default 100).
	Batch int
	// Interval is the pause between rounds that found nothing (default 100ms).
	Interval time.Duration

	wakeOnce sync.Once
	wake     chan struct{}
}

// Notify tells the relay that a transaction added rows, so it runs a round
// now instead of at its next poll. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.wakeup() <- struct{}{}:
	default: // a round is already due
	}
}

func (r *Relay) wakeup() chan struct{} {
	r.wakeOnce.Do(func() { r.wake = make(chan struct{}, 1) })
	return r.wake
}

type row struct {
	id          int64
	topic, key  string
	payload     string
	traceparent sql.NullString
}

// RunOnce pushes up to Batch rows in id order, deleting each once the
// broker has it. It returns how many it published; an error stops the
// round at the row that failed.
func (r *Relay) RunOnce(ctx context.Context) (int, error) {
	batch := r.Batch
	if batch <= 0 {
		batch = 100
	}
	rows, err := r.DB.QueryContext(ctx, "SELECT id, topic, msg_key, payload, traceparent FROM outbox ORDER BY id LIMIT ?", batch)
	if err != nil {
		return 0, fmt.Errorf("outbox: reading: %w", err)
	}
	var pending []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.id, &x.topic, &x.key, &x.payload, &x.traceparent); err != nil {
			rows.Close()
			return 0, fmt.Errorf("outbox: reading: %w", err)
		}
		pending = append(pending, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("outbox: reading: %w", err)
	}
	published := 0
	for len(pending) > 0 {
		// The leading rows of one topic go in one push, in id order.
		n := 1
		for n < len(pending) && pending[n].topic == pending[0].topic {
			n++
		}
		if err := r.publish(ctx, pending[:n]); err != nil {
			return published, err
		}
		published += n
		pending = pending[n:]
	}
	return published, nil
}

// publish pushes rows of one topic in one batch and, once the broker has
// all of them, deletes exactly those rows (not "id <= last": a row with a
// lower id can commit later).
func (r *Relay) publish(ctx context.Context, rows []row) error {
	pusher, ok := r.Pushers[rows[0].topic]
	if !ok {
		return fmt.Errorf("outbox: row %d is for topic %q, which has no pusher", rows[0].id, rows[0].topic)
	}
	messages := make([]push.Message, len(rows))
	ids := make([]any, len(rows))
	for i, x := range rows {
		messages[i] = push.Message{Key: x.key, Value: x.payload}
		if x.traceparent.Valid {
			messages[i].Headers = map[string]string{"traceparent": x.traceparent.String}
		}
		ids[i] = x.id
	}
	if err := pusher.PushBatch(ctx, messages); err != nil {
		return fmt.Errorf("outbox: rows %d..%d: %w", rows[0].id, rows[len(rows)-1].id, err)
	}
	placeholders := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	if _, err := r.DB.ExecContext(ctx, "DELETE FROM outbox WHERE id IN ("+placeholders+")", ids...); err != nil {
		return fmt.Errorf("outbox: deleting rows %d..%d after their push: %w", rows[0].id, rows[len(rows)-1].id, err)
	}
	return nil
}

// Run drains the outbox until ctx ends, backing off while pushes fail.
func (r *Relay) Run(ctx context.Context) {
	interval := r.Interval
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	wait := interval
	for ctx.Err() == nil {
		n, err := r.RunOnce(ctx)
		switch {
		case err != nil:
			logx.WithContext(ctx).Errorf("outbox relay: %v; retrying in %v", err, wait)
			wait = min(2*wait, 5*time.Second)
		case n > 0:
			wait = interval
			continue
		default:
			wait = interval
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		case <-r.wakeup():
		}
	}
}
