package xerr_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zeromicro/go-zero/rest/httpx"

	"github.com/kqstack/kqstack/common/xerr"
)

var errNoSuchThing = errors.New("no such thing")

func statusOf(err error) int {
	if errors.Is(err, errNoSuchThing) {
		return http.StatusNotFound
	}
	return 0
}

func TestHandlerStatuses(t *testing.T) {
	handle := xerr.Handler(statusOf)
	for _, tc := range []struct {
		err    error
		status int
		body   xerr.Body
	}{
		{fmt.Errorf("%w: thing 7", errNoSuchThing), 404, xerr.Body{Code: 404, Message: "no such thing: thing 7"}},
		{xerr.BadRequest(errors.New("amount must be positive")), 400, xerr.Body{Code: 400, Message: "amount must be positive"}},
		{fmt.Errorf("creating: %w", xerr.BadRequest(errors.New("no name"))), 400, xerr.Body{Code: 400, Message: "creating: no name"}},
		// The cause of a 500 goes to the log, not to the client.
		{errors.New("dial tcp 10.0.0.7:3306: connection refused"), 500, xerr.Body{Code: 500, Message: "internal error"}},
	} {
		status, body := handle(context.Background(), tc.err)
		if status != tc.status || body != tc.body {
			t.Errorf("%v: %d %+v, want %d %+v", tc.err, status, body, tc.status, tc.body)
		}
	}
	if xerr.BadRequest(nil) != nil {
		t.Error("BadRequest(nil) is not nil")
	}
	wrapped := errors.New("cause")
	if !errors.Is(xerr.BadRequest(wrapped), wrapped) {
		t.Error("BadRequest hides its cause from errors.Is")
	}
}

// A service answers its errors with their status and a JSON body.
func Example() {
	httpx.SetErrorHandlerCtx(xerr.Handler(statusOf)) // once, in main
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/things/7", nil)
	httpx.ErrorCtx(r.Context(), w, fmt.Errorf("%w: thing 7", errNoSuchThing))
	fmt.Println(w.Code, w.Body.String())
	// Output: 404 {"code":404,"message":"no such thing: thing 7"}
}
