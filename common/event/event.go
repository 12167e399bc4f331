// Package event is the JSON envelope every event of the stack travels in,
// and the event types producers and consumers share. Services depend on
// this package, never on each other's.
package event

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event is the envelope: who it is (ID), what it is (Type, SchemaVersion),
// when it happened, and its payload.
type Event struct {
	ID            string          `json:"id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	OccurredAt    time.Time       `json:"occurred_at"`
	Payload       json.RawMessage `json:"payload"`
}

// New wraps payload in an envelope with a fresh random id.
func New(eventType string, schemaVersion int, occurredAt time.Time, payload any) (Event, error) {
	body, err := json.Marshal(payload)
	if err != nil {
		return Event{}, fmt.Errorf("event %s: %w", eventType, err)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	return Event{ID: hex.EncodeToString(id[:]), Type: eventType, SchemaVersion: schemaVersion, OccurredAt: occurredAt.UTC(), Payload: body}, nil
}

// Decode parses an envelope and checks the fields every consumer relies on.
func Decode(data []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return Event{}, fmt.Errorf("not an event envelope: %w", err)
	}
	switch {
	case e.ID == "":
		return Event{}, errors.New("event envelope without an id")
	case e.Type == "":
		return Event{}, errors.New("event envelope without a type")
	case e.SchemaVersion < 1:
		return Event{}, fmt.Errorf("event %s: schema version %d", e.ID, e.SchemaVersion)
	}
	return e, nil
}

// DecodePayload unmarshals the payload into v.
func (e Event) DecodePayload(v any) error {
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("event %s (%s v%d): payload: %w", e.ID, e.Type, e.SchemaVersion, err)
	}
	return nil
}

// PaymentStatusChanged is published on TopicPaymentStatus when a payment is
// paid, fails or is refunded. The order number is the message key, so one
// order's events stay in order.
const (
	TypePaymentStatusChanged = "payment.status_changed"
	TopicPaymentStatus       = "payment-update-paystatus-topic"
)

// PaymentStatus is a payment's state as the payment service reports it.
type PaymentStatus string

const (
	PaymentPaid     PaymentStatus = "paid"
	PaymentFailed   PaymentStatus = "failed"
	PaymentRefunded PaymentStatus = "refunded"
)

// PaymentStatusChangedV1 is the payload of TypePaymentStatusChanged, v1.
type PaymentStatusChangedV1 struct {
	PaymentNo string        `json:"payment_no"`
	OrderNo   string        `json:"order_no"`
	Status    PaymentStatus `json:"status"`
	Amount    int64         `json:"amount"` // in the smallest currency unit
}
