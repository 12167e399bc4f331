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
// time: with Redis, the ones order-api scheduled in the delay queue; and,
// every sweepEvery checks (every check without Redis), any the orders table
// shows overdue, which also catches a queue claim lost to a crash. The
// expiry and a payment race in the database, where the conditional UPDATE
// lets exactly one of them win. Checks run every CheckIntervalMs; what is
// due is decided by svcCtx.Now, so tests move that clock instead of
// waiting for close times to pass.
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
	checks := 0
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-ticker.C:
		}
		checks++
		if err := c.check(c.svcCtx.Now(), checks); err != nil {
			logx.Errorf("closing unpaid orders: %v", err)
		}
	}
}

// sweepEvery: with a delay queue, the table is swept every this many checks.
const sweepEvery = 60

func (c *CloseUnpaid) check(now time.Time, checks int) error {
	q := c.svcCtx.CloseQueue
	if q == nil || checks%sweepEvery == 0 {
		due, err := c.svcCtx.OrderModel.DueUnpaid(c.ctx, now, 100)
		if err != nil {
			return err
		}
		if err := c.expire(due); err != nil {
			return err
		}
	}
	if q == nil {
		return nil
	}
	due, err := q.Due(c.ctx, now, 100)
	if err != nil {
		return err
	}
	return c.expire(due)
}

func (c *CloseUnpaid) Stop() { c.cancel() }

func (c *CloseUnpaid) expire(due []string) error {
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
