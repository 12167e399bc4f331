package handler

import (
	"errors"
	"net/http"

	"github.com/kqstack/kqstack/app/order/model"
)

// StatusOf is the HTTP status of order-api's own errors (for
// xerr.Handler): an unknown order is 404. (Its state changes come from
// events, in order-mq, not from requests.)
func StatusOf(err error) int {
	if errors.Is(err, model.ErrNotFound) {
		return http.StatusNotFound
	}
	return 0
}
