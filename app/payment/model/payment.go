// Package model is the payment service's SQL model. It uses database/sql
// with MySQL-compatible statements, so the same code runs on the embedded
// SQLite default and on MySQL/MariaDB. Status changes go through
// SetStatus, which applies the domain's rules in the UPDATE itself.
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

	"github.com/kqstack/kqstack/app/payment/domain"
)

// ErrNotFound: no payment with that number.
var ErrNotFound = errors.New("payment not found")

// Payment is a row of the payment table.
type Payment struct {
	PaymentNo string
	OrderNo   string
	Amount    int64
	Status    domain.Status
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
	p.Status, p.CreatedAt, p.UpdatedAt = domain.Created, now, now
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

// SetStatus moves a payment to status inside tx, only from the statuses
// the domain allows. changed is false when the payment already had that
// status (a repeated callback); refusals wrap domain.ErrIllegalTransition.
func (m PaymentModel) SetStatus(ctx context.Context, tx *sql.Tx, paymentNo string, status domain.Status) (p *Payment, changed bool, err error) {
	allowed := domain.From(status)
	if len(allowed) == 0 {
		return nil, false, fmt.Errorf("%w: to %q", domain.ErrIllegalTransition, status)
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
	if n == 1 {
		return p, true, nil
	}
	// Why it did not apply.
	if err := domain.Transition(p.Status, status); errors.Is(err, domain.ErrAlreadyApplied) {
		return p, false, nil
	}
	return p, false, fmt.Errorf("%w: %s is %s, cannot become %s", domain.ErrIllegalTransition, paymentNo, p.Status, status)
}
