// Package model is the payment service's SQL model. It uses database/sql
// with MySQL-compatible statements, so the same code runs on the embedded
// SQLite default and on MySQL/MariaDB.
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
)

// ErrNotFound: no payment with that number.
var ErrNotFound = errors.New("payment not found")

// Status is a payment's state.
type Status string

const (
	Created  Status = "created"
	Paid     Status = "paid"
	Failed   Status = "failed"
	Refunded Status = "refunded"
)

// from lists the states a payment may move to each state from: a provider
// may report paid after failed (a retried card), and refunds follow paid.
var from = map[Status][]Status{
	Paid:     {Created, Failed},
	Failed:   {Created},
	Refunded: {Paid},
}

// Payment is a row of the payment table.
type Payment struct {
	PaymentNo string
	OrderNo   string
	Amount    int64
	Status    Status
	CreatedAt int64
	UpdatedAt int64
}

// SQLiteSchema creates the table on the embedded database; MySQL uses
// deploy/sql/payment.sql.
const SQLiteSchema = `CREATE TABLE IF NOT EXISTS payment (
  payment_no VARCHAR(64) PRIMARY KEY,
  order_no   VARCHAR(64) NOT NULL,
  amount     BIGINT      NOT NULL,
  status     VARCHAR(16) NOT NULL,
  created_at BIGINT      NOT NULL,
  updated_at BIGINT      NOT NULL
);
CREATE INDEX IF NOT EXISTS payment_order_no ON payment (order_no)`

// PaymentModel reads and writes payments.
type PaymentModel struct{ DB *sql.DB }

// NewPaymentNo returns a fresh payment number.
func NewPaymentNo() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return "PAY" + strings.ToUpper(hex.EncodeToString(b[:]))
}

// Insert adds a payment in state created.
func (m PaymentModel) Insert(ctx context.Context, p *Payment) error {
	now := time.Now().UnixMilli()
	p.Status, p.CreatedAt, p.UpdatedAt = Created, now, now
	_, err := m.DB.ExecContext(ctx, `INSERT INTO payment (payment_no, order_no, amount, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		p.PaymentNo, p.OrderNo, p.Amount, p.Status, p.CreatedAt, p.UpdatedAt)
	return err
}

// FindOne returns a payment, or ErrNotFound.
func (m PaymentModel) FindOne(ctx context.Context, paymentNo string) (*Payment, error) {
	return findOne(ctx, m.DB, paymentNo)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func findOne(ctx context.Context, q queryer, paymentNo string) (*Payment, error) {
	var p Payment
	err := q.QueryRowContext(ctx, `SELECT payment_no, order_no, amount, status, created_at, updated_at FROM payment WHERE payment_no = ?`, paymentNo).
		Scan(&p.PaymentNo, &p.OrderNo, &p.Amount, &p.Status, &p.CreatedAt, &p.UpdatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, paymentNo)
	}
	return &p, err
}

// ErrIllegalTransition: the payment cannot move to that state from its own.
var ErrIllegalTransition = errors.New("illegal payment status change")

// SetStatus moves a payment to status inside tx, only from the states that
// allow it. changed is false when the payment already had that status (a
// repeated callback); other refusals are ErrIllegalTransition.
func (m PaymentModel) SetStatus(ctx context.Context, tx *sql.Tx, paymentNo string, status Status) (p *Payment, changed bool, err error) {
	allowed := from[status]
	if len(allowed) == 0 {
		return nil, false, fmt.Errorf("%w: to %q", ErrIllegalTransition, status)
	}
	placeholders := strings.TrimSuffix(strings.Repeat("?, ", len(allowed)), ", ")
	args := []any{status, time.Now().UnixMilli(), paymentNo}
	for _, s := range allowed {
		args = append(args, s)
	}
	result, err := tx.ExecContext(ctx, `UPDATE payment SET status = ?, updated_at = ? WHERE payment_no = ? AND status IN (`+placeholders+`)`, args...)
	if err != nil {
		return nil, false, err
	}
	n, err := result.RowsAffected()
	if err != nil {
		return nil, false, err
	}
	p, err = findOne(ctx, tx, paymentNo)
	if err != nil {
		return nil, false, err
	}
	switch {
	case n == 1:
		return p, true, nil
	case p.Status == status:
		return p, false, nil
	default:
		return p, false, fmt.Errorf("%w: %s is %s, cannot become %s", ErrIllegalTransition, paymentNo, p.Status, status)
	}
}
