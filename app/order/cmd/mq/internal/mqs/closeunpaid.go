package mqs

import (
	"context"
	"errors"
	"time"

	"github.com/zeromicro/go-zero/core/logx"

	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/svc"
	"github.com/kqstack/kqstack/app/order/domain"
)

// CloseUnpaid expires orders still waiting for payment past their close
// time. The expiry and a payment race in the database, where the
// conditional UPDATE lets exactly one of them win.
type CloseUnpaid struct {
	svcCtx *svc.ServiceContext
	ctx    context.Context
	cancel context.CancelFunc
}

func NewCloseUnpaid(svcCtx *svc.ServiceContext) *CloseUnpaid {
	ctx, cancel := context.WithCancel(context.Background())
	return &CloseUnpaid{svcCtx: svcCtx, ctx: ctx, cancel: cancel}
}

// Start sweeps until Stop (a go-zero service).
func (c *CloseUnpaid) Start() {
	interval := time.Duration(c.svcCtx.Config.CloseUnpaid.CheckIntervalMs) * time.Millisecond
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-ticker.C:
		}
		if err := c.sweep(time.Now()); err != nil {
			logx.Errorf("closing unpaid orders: %v", err)
		}
	}
}

func (c *CloseUnpaid) Stop() { c.cancel() }

func (c *CloseUnpaid) sweep(now time.Time) error {
	due, err := c.svcCtx.OrderModel.DueUnpaid(c.ctx, now, 100)
	if err != nil {
		return err
	}
	for _, orderNo := range due {
		err := c.svcCtx.OrderModel.Transition(c.ctx, orderNo, domain.Expired)
		switch {
		case err == nil:
			logx.Infof("order %s expired unpaid", orderNo)
		case errors.Is(err, domain.ErrIllegalTransition), errors.Is(err, domain.ErrAlreadyApplied):
			// paid meanwhile: the payment won the race
		default:
			return err
		}
	}
	return nil
}
