// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package payment

import (
	"context"

	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/types"

	"github.com/zeromicro/go-zero/core/logx"
)

type GetPaymentLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// get a payment
func NewGetPaymentLogic(ctx context.Context, svcCtx *svc.ServiceContext) *GetPaymentLogic {
	return &GetPaymentLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

func (l *GetPaymentLogic) GetPayment(req *types.GetPaymentReq) (resp *types.Payment, err error) {
	p, err := l.svcCtx.PaymentModel.FindOne(l.ctx, req.PaymentNo)
	if err != nil {
		return nil, err
	}
	return &types.Payment{PaymentNo: p.PaymentNo, OrderNo: p.OrderNo, Amount: p.Amount, Status: string(p.Status), CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}, nil
}
