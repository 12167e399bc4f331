// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package order

import (
	"context"
	"errors"
	"time"

	"github.com/kqstack/kqstack/app/order/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/app/order/cmd/api/internal/types"

	"github.com/kqstack/kqstack/app/order/model"
	"github.com/kqstack/kqstack/common/xerr"
	"github.com/zeromicro/go-zero/core/logx"
)

type CreateOrderLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// create an order waiting for payment
func NewCreateOrderLogic(ctx context.Context, svcCtx *svc.ServiceContext) *CreateOrderLogic {
	return &CreateOrderLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

func (l *CreateOrderLogic) CreateOrder(req *types.CreateOrderReq) (resp *types.CreateOrderResp, err error) {
	if req.UserID <= 0 || req.Amount <= 0 {
		return nil, xerr.BadRequest(errors.New("user_id and amount must be positive"))
	}
	o := &model.Order{OrderNo: model.NewOrderNo(), UserID: req.UserID, Amount: req.Amount,
		CloseAt: time.Now().Add(l.svcCtx.CloseUnpaidAfter).UnixMilli()}
	if err := l.svcCtx.OrderModel.Insert(l.ctx, o); err != nil {
		return nil, err
	}
	if q := l.svcCtx.CloseQueue; q != nil {
		// The order is saved either way; order-mq's sweep closes it if
		// scheduling fails.
		if err := q.Add(l.ctx, o.OrderNo, time.UnixMilli(o.CloseAt)); err != nil {
			l.Errorf("scheduling the close of order %s: %v; the sweep will close it", o.OrderNo, err)
		}
	}
	return &types.CreateOrderResp{OrderNo: o.OrderNo}, nil
}
