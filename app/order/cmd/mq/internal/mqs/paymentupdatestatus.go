// Package mqs holds order-mq's consumers and workers.
package mqs

import (
	"context"
	"errors"
	"fmt"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/svc"
	"github.com/kqstack/kqstack/app/order/domain"
	"github.com/kqstack/kqstack/common/consume"
	"github.com/kqstack/kqstack/common/event"
)

// PaymentUpdateStatus applies payment status events to orders.
type PaymentUpdateStatus struct {
	svcCtx *svc.ServiceContext
}

func NewPaymentUpdateStatus(svcCtx *svc.ServiceContext) *PaymentUpdateStatus {
	return &PaymentUpdateStatus{svcCtx: svcCtx}
}

// Handle is the consume.Handler: paid and refunded move the order; failed
// leaves it waiting for another payment. A transition the order's rules
// refuse (a payment for an order already closed) is logged, not applied,
// and not retried.
func (p *PaymentUpdateStatus) Handle(ctx context.Context, e event.Event) error {
	if e.Type != event.TypePaymentStatusChanged || e.SchemaVersion != 1 {
		return consume.Permanent(fmt.Errorf("event %s: unexpected %s v%d", e.ID, e.Type, e.SchemaVersion))
	}
	var payload event.PaymentStatusChangedV1
	if err := e.DecodePayload(&payload); err != nil {
		return consume.Permanent(err)
	}
	var to domain.State
	switch payload.Status {
	case event.PaymentPaid:
		to = domain.Paid
	case event.PaymentRefunded:
		to = domain.Refunded
	case event.PaymentFailed:
		logx.WithContext(ctx).Infof("payment %s of order %s failed; the order waits for another payment", payload.PaymentNo, payload.OrderNo)
		return nil
	default:
		return consume.Permanent(fmt.Errorf("event %s: unknown payment status %q", e.ID, payload.Status))
	}
	err := p.svcCtx.OrderModel.Transition(ctx, payload.OrderNo, to)
	switch {
	case err == nil:
		logx.WithContext(ctx).Infof("order %s is %s (payment %s)", payload.OrderNo, to, payload.PaymentNo)
		return nil
	case errors.Is(err, domain.ErrAlreadyApplied):
		return nil
	case errors.Is(err, domain.ErrIllegalTransition):
		logx.WithContext(ctx).Errorf("order %s: %v; payment %s not applied", payload.OrderNo, err, payload.PaymentNo)
		return nil
	default:
		return err
	}
}
