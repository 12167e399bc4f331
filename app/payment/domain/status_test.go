package domain

import (
	"errors"
	"slices"
	"testing"
)

// TestTransition lists every pair of statuses, and some that do not exist.
func TestTransition(t *testing.T) {
	tests := []struct {
		from, to Status
		want     error
	}{
		{Created, Paid, nil},
		{Created, Failed, nil},
		{Failed, Paid, nil}, // the provider retried the card
		{Paid, Refunded, nil},

		{Created, Created, ErrAlreadyApplied},
		{Paid, Paid, ErrAlreadyApplied}, // the provider called back twice
		{Failed, Failed, ErrAlreadyApplied},
		{Refunded, Refunded, ErrAlreadyApplied},

		{Created, Refunded, ErrIllegalTransition}, // nothing was paid
		{Paid, Created, ErrIllegalTransition},
		{Paid, Failed, ErrIllegalTransition}, // a late failure of a paid payment
		{Failed, Created, ErrIllegalTransition},
		{Failed, Refunded, ErrIllegalTransition},
		{Refunded, Created, ErrIllegalTransition},
		{Refunded, Paid, ErrIllegalTransition},
		{Refunded, Failed, ErrIllegalTransition},

		{Created, Status("bogus"), ErrIllegalTransition},
		{Status("bogus"), Paid, ErrIllegalTransition},
		{Status(""), Created, ErrIllegalTransition},
	}
	for _, tt := range tests {
		err := Transition(tt.from, tt.to)
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s -> %s: got %v, want %v", tt.from, tt.to, err, tt.want)
		}
	}
	if err := Transition(Refunded, Failed); err.Error() != "illegal payment status change: refunded cannot become failed" {
		t.Errorf("a refused change says %q", err)
	}
}

func TestFromAndFinal(t *testing.T) {
	tests := []struct {
		to    Status
		from  []Status
		final bool
	}{
		{Created, nil, false},
		{Paid, []Status{Created, Failed}, false},
		{Failed, []Status{Created}, false},
		{Refunded, []Status{Paid}, true},
		{Status("bogus"), nil, true},
	}
	for _, tt := range tests {
		if got := From(tt.to); !slices.Equal(got, tt.from) {
			t.Errorf("From(%s) = %v, want %v", tt.to, got, tt.from)
		}
		if got := tt.to.Final(); got != tt.final {
			t.Errorf("%s.Final() = %v, want %v", tt.to, got, tt.final)
		}
		// From agrees with Transition.
		for _, from := range statuses {
			allowed := Transition(from, tt.to) == nil
			if allowed != slices.Contains(tt.from, from) {
				t.Errorf("Transition(%s, %s) allowed %v, but From(%s) = %v", from, tt.to, allowed, tt.to, From(tt.to))
			}
		}
	}
}
