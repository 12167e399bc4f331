// Package domain holds the order's rules: its states and the transitions
// between them. Handlers and consumers ask it before they change an order;
// a transition it refuses is logged and never applied.
//
//	            paid           used
//	wait-pay ───────> paid ────────> used
//	   │  │                 └──────> refunded
//	   │  └── cancelled (by the user)
//	   └───── expired   (unpaid past the delay)
package domain

import (
	"errors"
	"fmt"
)

// State is an order's state.
type State string

const (
	WaitPay   State = "wait-pay"
	Paid      State = "paid"
	Used      State = "used"
	Refunded  State = "refunded"
	Cancelled State = "cancelled"
	Expired   State = "expired"
)

// ErrIllegalTransition is wrapped by every refused transition.
var ErrIllegalTransition = errors.New("illegal order state transition")

// ErrAlreadyApplied: the order is already in the target state, as when an
// event is delivered again. Callers treat it as success and change nothing.
var ErrAlreadyApplied = errors.New("order is already in that state")

var transitions = map[State][]State{
	WaitPay: {Paid, Cancelled, Expired},
	Paid:    {Used, Refunded},
}

// Transition checks that an order in from may move to to.
func Transition(from, to State) error {
	if from == to {
		return fmt.Errorf("%w: %s", ErrAlreadyApplied, to)
	}
	for _, allowed := range transitions[from] {
		if allowed == to {
			return nil
		}
	}
	return fmt.Errorf("%w: %s -> %s", ErrIllegalTransition, from, to)
}

// From lists the states an order may move to to from.
func From(to State) []State {
	var states []State
	for from, targets := range transitions {
		for _, target := range targets {
			if target == to {
				states = append(states, from)
			}
		}
	}
	return states
}

// Final reports whether no transition leaves s.
func (s State) Final() bool { return len(transitions[s]) == 0 }
