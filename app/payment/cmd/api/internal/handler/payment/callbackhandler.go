// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package payment

import (
	"net/http"

	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/logic/payment"
	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/types"
	"github.com/kqstack/kqstack/common/xerr"
	"github.com/zeromicro/go-zero/rest/httpx"
)

// the payment provider's callback (simulated): paid, failed or refunded
func CallbackHandler(svcCtx *svc.ServiceContext) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req types.CallbackReq
		if err := httpx.Parse(r, &req); err != nil {
			httpx.ErrorCtx(r.Context(), w, xerr.BadRequest(err))
			return
		}

		l := payment.NewCallbackLogic(r.Context(), svcCtx)
		resp, err := l.Callback(&req)
		if err != nil {
			httpx.ErrorCtx(r.Context(), w, err)
		} else {
			httpx.OkJsonCtx(r.Context(), w, resp)
		}
	}
}
