package domain

import (
	"errors"
	"testing"
)

func TestTransition(t *testing.T) {
	tests := []struct {
		from, to State
		want     error
	}{
		{WaitPay, Paid, nil},
		{WaitPay, Cancelled, nil},
		{WaitPay, Expired, nil},
		{Paid, Used, nil},
		{Paid, Refunded, nil},
		{Paid, Paid, ErrAlreadyApplied},
		{Expired, Expired, ErrAlreadyApplied},
		{WaitPay, Used, ErrIllegalTransition},
		{WaitPay, Refunded, ErrIllegalTransition},
		{Paid, Cancelled, ErrIllegalTransition},
		{Paid, Expired, ErrIllegalTransition},
		{Expired, Paid, ErrIllegalTransition},   // a payment that lost the race with the close
		{Cancelled, Paid, ErrIllegalTransition}, // likewise after a cancel
		{Refunded, Used, ErrIllegalTransition},
		{Used, Refunded, ErrIllegalTransition},
		{State("bogus"), Paid, ErrIllegalTransition},
	}
	for _, tt := range tests {
		err := Transition(tt.from, tt.to)
		if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
			t.Errorf("%s -> %s: got %v, want %v", tt.from, tt.to, err, tt.want)
		}
	}
	for _, s := range []State{Used, Refunded, Cancelled, Expired} {
		if !s.Final() {
			t.Errorf("%s should be final", s)
		}
	}
	for _, s := range []State{WaitPay, Paid} {
		if s.Final() {
			t.Errorf("%s should not be final", s)
		}
	}
}
