// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package order

import (
	"net/http"

	"github.com/kqstack/kqstack/app/order/cmd/api/internal/logic/order"
	"github.com/kqstack/kqstack/app/order/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/app/order/cmd/api/internal/types"
	"github.com/kqstack/kqstack/common/xerr"
	"github.com/zeromicro/go-zero/rest/httpx"
)

// list a user's orders, newest first
func ListOrdersHandler(svcCtx *svc.ServiceContext) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req types.ListOrdersReq
		if err := httpx.Parse(r, &req); err != nil {
			httpx.ErrorCtx(r.Context(), w, xerr.BadRequest(err))
			return
		}

		l := order.NewListOrdersLogic(r.Context(), svcCtx)
		resp, err := l.ListOrders(&req)
		if err != nil {
			httpx.ErrorCtx(r.Context(), w, err)
		} else {
			httpx.OkJsonCtx(r.Context(), w, resp)
		}
	}
}
