package handler

import (
	"errors"
	"net/http"

	"github.com/kqstack/kqstack/app/payment/domain"
	"github.com/kqstack/kqstack/app/payment/model"
)

// StatusOf is the HTTP status of payment-api's own errors (for
// xerr.Handler): an unknown payment is 404, a status change the payment's
// status does not allow is 409.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, model.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, domain.ErrIllegalTransition):
		return http.StatusConflict
	}
	return 0
}
