// Package domain holds the payment's rules: its statuses and the changes
// between them. The model applies them in the UPDATE that changes a
// payment; a change they refuse is answered to the provider's callback and
// never applied, and publishes no event.
//
//	          paid             refunded
//	created ───────> paid ───────────> refunded
//	   │              ^
//	   │ failed       │ paid (the provider retried the card)
//	   └───────> failed
package domain

import (
	"errors"
	"fmt"
)

// Status is a payment's status.
type Status string

const (
	Created  Status = "created"
	Paid     Status = "paid"
	Failed   Status = "failed"
	Refunded Status = "refunded"
)

// statuses are all of them, in the order From lists them.
var statuses = []Status{Created, Paid, Failed, Refunded}

// ErrIllegalTransition is wrapped by every refused change.
var ErrIllegalTransition = errors.New("illegal payment status change")

// ErrAlreadyApplied: the payment already has the target status, as when
// the provider calls back twice. Callers treat it as success and change
// nothing.
var ErrAlreadyApplied = errors.New("payment already has that status")

var transitions = map[Status][]Status{
	Created: {Paid, Failed},
	Failed:  {Paid},
	Paid:    {Refunded},
}

// Transition checks that a payment in from may become to.
func Transition(from, to Status) error {
	if from == to {
		return fmt.Errorf("%w: %s", ErrAlreadyApplied, to)
	}
	for _, allowed := range transitions[from] {
		if allowed == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s cannot become %s", ErrIllegalTransition, from, to)
}

// From lists the statuses a payment may become to from; none for created
// (only a new payment is created) or a status that does not exist.
func From(to Status) []Status {
	var from []Status
	for _, s := range statuses {
		for _, target := range transitions[s] {
			if target == to {
				from = append(from, s)
			}
		}
	}
	return from
}

// Final reports whether no change leaves s.
func (s Status) Final() bool { return len(transitions[s]) == 0 }
