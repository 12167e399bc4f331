// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package payment

import (
	"context"
	"errors"

	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/types"
	"github.com/kqstack/kqstack/app/payment/model"
	"github.com/kqstack/kqstack/common/xerr"

	"github.com/zeromicro/go-zero/core/logx"
)

type CreatePaymentLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// create a payment for an order
func NewCreatePaymentLogic(ctx context.Context, svcCtx *svc.ServiceContext) *CreatePaymentLogic {
	return &CreatePaymentLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

func (l *CreatePaymentLogic) CreatePayment(req *types.CreatePaymentReq) (resp *types.CreatePaymentResp, err error) {
	if req.OrderNo == "" || req.Amount <= 0 {
		return nil, xerr.BadRequest(errors.New("order_no is required and amount must be positive"))
	}
	p := &model.Payment{PaymentNo: model.NewPaymentNo(), OrderNo: req.OrderNo, Amount: req.Amount}
	if err := l.svcCtx.PaymentModel.Insert(l.ctx, p); err != nil {
		return nil, err
	}
	return &types.CreatePaymentResp{PaymentNo: p.PaymentNo}, nil
}
