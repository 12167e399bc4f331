// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package order

import (
	"context"

	"github.com/kqstack/kqstack/app/order/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/app/order/cmd/api/internal/types"

	"github.com/zeromicro/go-zero/core/logx"
)

type GetOrderLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// get an order
func NewGetOrderLogic(ctx context.Context, svcCtx *svc.ServiceContext) *GetOrderLogic {
	return &GetOrderLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

func (l *GetOrderLogic) GetOrder(req *types.GetOrderReq) (resp *types.Order, err error) {
	o, err := l.svcCtx.OrderModel.FindOne(l.ctx, req.OrderNo)
	if err != nil {
		return nil, err
	}
	view := orderView(o)
	return &view, nil
}
