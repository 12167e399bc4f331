// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package order

import (
	"context"

	"github.com/kqstack/kqstack/app/order/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/app/order/cmd/api/internal/types"

	"github.com/zeromicro/go-zero/core/logx"
)

type ListOrdersLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// list a user's orders, newest first
func NewListOrdersLogic(ctx context.Context, svcCtx *svc.ServiceContext) *ListOrdersLogic {
	return &ListOrdersLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

func (l *ListOrdersLogic) ListOrders(req *types.ListOrdersReq) (resp *types.ListOrdersResp, err error) {
	orders, err := l.svcCtx.OrderModel.ListByUser(l.ctx, req.UserID, req.Limit)
	if err != nil {
		return nil, err
	}
	resp = &types.ListOrdersResp{Orders: make([]types.Order, 0, len(orders))}
	for _, o := range orders {
		resp.Orders = append(resp.Orders, orderView(o))
	}
	return resp, nil
}
