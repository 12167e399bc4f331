// Package model is the order service's SQL model, shared by order-api and
// order-mq (one service, one database). It uses MySQL-compatible
// statements, so the same code runs on the embedded SQLite default and on
// MySQL/MariaDB. Every state change goes through Transition, which applies
// the domain's rules in the UPDATE itself, so two concurrent changes (a
// payment and the close of an unpaid order) cannot both win.
package model

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/kqstack/kqstack/app/order/domain"
)

// ErrNotFound: no order with that number.
var ErrNotFound = errors.New("order not found")

// Order is a row of the orders table.
type Order struct {
	OrderNo   string
	UserID    int64
	Amount    int64
	State     domain.State
	CloseAt   int64 // when an unpaid order expires (Unix ms)
	CreatedAt int64
	UpdatedAt int64
}

// SQLiteSchema creates the table on the embedded database; MySQL uses
// deploy/sql/order.sql.
const SQLiteSchema = `CREATE TABLE IF NOT EXISTS orders (
  order_no   VARCHAR(64) PRIMARY KEY,
  user_id    BIGINT      NOT NULL,
  amount     BIGINT      NOT NULL,
  state      VARCHAR(16) NOT NULL,
  close_at   BIGINT      NOT NULL,
  created_at BIGINT      NOT NULL,
  updated_at BIGINT      NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, created_at);
CREATE INDEX IF NOT EXISTS orders_close ON orders (state, close_at)`

// CloseUnpaidQueue is the Redis sorted set of orders to close when unpaid.
const CloseUnpaidQueue = "order:close-unpaid"

// OrderModel reads and writes orders.
type OrderModel struct{ DB *sql.DB }

// NewOrderNo returns a fresh order number.
func NewOrderNo() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "ORD" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// Insert adds an order waiting for payment until closeAt.
func (m OrderModel) Insert(ctx context.Context, o *Order) error {
	now := time.Now().UnixMilli()
	o.State, o.CreatedAt, o.UpdatedAt = domain.WaitPay, now, now
	_, err := m.DB.ExecContext(ctx, `INSERT INTO orders (order_no, user_id, amount, state, close_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		o.OrderNo, o.UserID, o.Amount, o.State, o.CloseAt, o.CreatedAt, o.UpdatedAt)
	return err
}

const columns = `order_no, user_id, amount, state, close_at, created_at, updated_at`

func scan(row interface{ Scan(...any) error }) (*Order, error) {
	var o Order
	err := row.Scan(&o.OrderNo, &o.UserID, &o.Amount, &o.State, &o.CloseAt, &o.CreatedAt, &o.UpdatedAt)
	return &o, err
}

// FindOne returns an order, or ErrNotFound.
func (m OrderModel) FindOne(ctx context.Context, orderNo string) (*Order, error) {
	o, err := scan(m.DB.QueryRowContext(ctx, `SELECT `+columns+` FROM orders WHERE order_no = ?`, orderNo))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, orderNo)
	}
	return o, err
}

// ListByUser returns a user's orders, newest first.
func (m OrderModel) ListByUser(ctx context.Context, userID int64, limit int) ([]*Order, error) {
	rows, err := m.DB.QueryContext(ctx, `SELECT `+columns+` FROM orders WHERE user_id = ? ORDER BY created_at DESC LIMIT ?`, userID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var orders []*Order
	for rows.Next() {
		o, err := scan(rows)
		if err != nil {
			return nil, err
		}
		orders = append(orders, o)
	}
	return orders, rows.Err()
}

// Transition moves an order to to, only from a state the domain allows,
// in one UPDATE. A transition already applied returns
// domain.ErrAlreadyApplied; a refused one domain.ErrIllegalTransition.
func (m OrderModel) Transition(ctx context.Context, orderNo string, to domain.State) error {
	allowed := domain.From(to)
	if len(allowed) > 0 {
		placeholders := strings.TrimSuffix(strings.Repeat("?, ", len(allowed)), ", ")
		args := []any{to, time.Now().UnixMilli(), orderNo}
		for _, s := range allowed {
			args = append(args, s)
		}
		result, err := m.DB.ExecContext(ctx, `UPDATE orders SET state = ?, updated_at = ? WHERE order_no = ? AND state IN (`+placeholders+`)`, args...)
		if err != nil {
			return err
		}
		if n, err := result.RowsAffected(); err != nil || n == 1 {
			return err
		}
	}
	o, err := m.FindOne(ctx, orderNo)
	if err != nil {
		return err
	}
	return domain.Transition(o.State, to) // why it did not apply
}

// DueUnpaid returns orders still waiting for payment past their close time.
func (m OrderModel) DueUnpaid(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := m.DB.QueryContext(ctx, `SELECT order_no FROM orders WHERE state = ? AND close_at <= ? ORDER BY close_at LIMIT ?`, domain.WaitPay, now.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var due []string
	for rows.Next() {
		var orderNo string
		if err := rows.Scan(&orderNo); err != nil {
			return nil, err
		}
		due = append(due, orderNo)
	}
	return due, rows.Err()
}

// Open opens the order database; the embedded SQLite file gets its table.
func Open(driver, dataSource string) (*sql.DB, error) {
	db, err := sql.Open(driver, dataSource)
	if err != nil {
		return nil, err
	}
	if driver == "sqlite" {
		db.SetMaxOpenConns(1)
		if err := ExecSchema(db, SQLiteSchema); err != nil {
			return nil, fmt.Errorf("creating the orders table: %w", err)
		}
	}
	return db, db.Ping()
}

// ExecSchema runs schema statements on the embedded SQLite database,
// trying again for up to 10 s while the database is locked: order-api and
// order-mq open the same file, and when both create their tables at the
// same moment one gets SQLITE_BUSY at once (SQLite does not wait where
// waiting could deadlock, busy_timeout or not).
func ExecSchema(db *sql.DB, schema string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := db.Exec(schema)
		var sqliteErr *sqlite.Error
		if err == nil || !errors.As(err, &sqliteErr) || sqliteErr.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
