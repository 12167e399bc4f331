// Package xerr answers a go-zero service's errors as HTTP statuses with a
// JSON body, {"code": <status>, "message": "..."}, through httpx's error
// handler. A service sets it once in main:
//
//	httpx.SetErrorHandlerCtx(xerr.Handler(statusOf))
//
// where statusOf maps the service's own errors (its model's ErrNotFound,
// its domain's illegal transitions) to 404, 409 and so on. Errors marked
// with BadRequest (bad input: a body that does not parse, a field out of
// range) are 400; anything else is a 500 whose message says no more than
// "internal error", the error itself going to the log.
package xerr

import (
	"context"
	"errors"
	"net/http"

	"github.com/zeromicro/go-zero/core/logx"
)

// ErrBadRequest is the kind of errors made by BadRequest.
var ErrBadRequest = errors.New("bad request")

// Body is the JSON body of an error answer.
type Body struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type badRequest struct{ err error }

func (e badRequest) Error() string { return e.err.Error() }

func (e badRequest) Unwrap() []error { return []error{ErrBadRequest, e.err} }

// BadRequest marks err as the client's mistake: answered 400 with its
// message. It returns nil for nil.
func BadRequest(err error) error {
	if err == nil {
		return nil
	}
	return badRequest{err}
}

// Handler is an httpx error handler: statusOf gives the status of the
// service's errors, 0 for those it does not know.
func Handler(statusOf func(error) int) func(context.Context, error) (int, any) {
	return func(ctx context.Context, err error) (int, any) {
		status := statusOf(err)
		switch {
		case status != 0:
		case errors.Is(err, ErrBadRequest):
			status = http.StatusBadRequest
		default:
			logx.WithContext(ctx).Errorf("answered 500: %v", err)
			return http.StatusInternalServerError, Body{Code: http.StatusInternalServerError, Message: "internal error"}
		}
		return status, Body{Code: status, Message: err.Error()}
	}
}
