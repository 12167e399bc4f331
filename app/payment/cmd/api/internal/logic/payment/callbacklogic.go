// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package payment

import (
	"context"
	"encoding/json"
	"time"

	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/types"
	"github.com/kqstack/kqstack/app/payment/domain"
	"github.com/kqstack/kqstack/common/event"
	"github.com/kqstack/kqstack/common/outbox"

	"github.com/zeromicro/go-zero/core/logx"
)

type CallbackLogic struct {
	logx.Logger
	ctx    context.Context
	svcCtx *svc.ServiceContext
}

// the payment provider's callback (simulated): paid, failed or refunded
func NewCallbackLogic(ctx context.Context, svcCtx *svc.ServiceContext) *CallbackLogic {
	return &CallbackLogic{
		Logger: logx.WithContext(ctx),
		ctx:    ctx,
		svcCtx: svcCtx,
	}
}

// Callback changes the payment's status and records the event in the same
// transaction; the relay publishes it. A repeated callback changes nothing
// and records no event.
func (l *CallbackLogic) Callback(req *types.CallbackReq) (resp *types.CallbackResp, err error) {
	tx, err := l.svcCtx.DB.BeginTx(l.ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	p, changed, err := l.svcCtx.PaymentModel.SetStatus(l.ctx, tx, req.PaymentNo, domain.Status(req.Status))
	if err != nil {
		l.Infof("callback refused: %v", err)
		return nil, err
	}
	if changed {
		e, err := event.New(event.TypePaymentStatusChanged, 1, time.Now(), event.PaymentStatusChangedV1{
			PaymentNo: p.PaymentNo, OrderNo: p.OrderNo, Status: event.PaymentStatus(p.Status), Amount: p.Amount})
		if err != nil {
			return nil, err
		}
		payload, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		if err := outbox.Add(l.ctx, tx, l.svcCtx.Config.PaymentEvents.Topic, p.OrderNo, payload); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if changed {
		l.svcCtx.Relay.Notify() // publish now rather than at the next poll
	}
	return &types.CallbackResp{PaymentNo: p.PaymentNo, Status: string(p.Status), Changed: changed}, nil
}
