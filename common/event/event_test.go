package event

import (
	"strings"
	"testing"
	"time"
)

func TestRoundTripAndValidation(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	e, err := New(TypePaymentStatusChanged, 1, at, PaymentStatusChangedV1{PaymentNo: "p1", OrderNo: "o1", Status: PaymentPaid, Amount: 1999})
	if err != nil {
		t.Fatal(err)
	}
	data, err := jsonOf(e)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(data)
	if err != nil || back.ID != e.ID || back.Type != e.Type || !back.OccurredAt.Equal(at) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	var payload PaymentStatusChangedV1
	if err := back.DecodePayload(&payload); err != nil || payload.OrderNo != "o1" || payload.Status != PaymentPaid {
		t.Fatalf("payload: %+v, %v", payload, err)
	}
	bad := []struct{ json, want string }{
		{`nope`, "not an event envelope"},
		{`{"type":"x","schema_version":1}`, "without an id"},
		{`{"id":"1","schema_version":1}`, "without a type"},
		{`{"id":"1","type":"x"}`, "schema version 0"},
	}
	for _, b := range bad {
		if _, err := Decode([]byte(b.json)); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: got %v, want %q", b.json, err, b.want)
		}
	}
}
