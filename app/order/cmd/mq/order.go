// Command order-mq applies payment events to orders and closes orders left
// unpaid.
package main

import (
	"flag"
	"time"

	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/config"
	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/mqs"
	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/svc"
	"github.com/kqstack/kqstack/common/consume"
)

var configFile = flag.String("f", "etc/order-mq.yaml", "the config file")

func main() {
	flag.Parse()
	var c config.Config
	conf.MustLoad(*configFile, &c, conf.UseEnv())
	logx.Must(c.SetUp())
	group := newServiceGroup(svc.NewServiceContext(c))
	defer group.Stop()
	group.Start()
}

// newServiceGroup is the payment-status consumer and the unpaid-order
// closer, started and stopped together.
func newServiceGroup(svcCtx *svc.ServiceContext) *service.ServiceGroup {
	c := svcCtx.Config
	consumer, err := consume.New(consume.Config{
		Attempts:   c.Retry.Attempts,
		Backoff:    time.Duration(c.Retry.BackoffMs) * time.Millisecond,
		Dedup:      svcCtx.Dedup,
		DeadLetter: svcCtx.DeadLetter,
	}, mqs.NewPaymentUpdateStatus(svcCtx).Handle)
	logx.Must(err)
	kqConf := c.PaymentUpdateStatusConf
	if kqConf.Processors != 1 || !kqConf.ForceCommit {
		// One processor per queue and the commit after the dead-letter
		// push: what keeps kq from committing past a failure.
		logx.Infof("PaymentUpdateStatusConf: using Processors 1 and ForceCommit true (were %d, %v)", kqConf.Processors, kqConf.ForceCommit)
		kqConf.Processors, kqConf.ForceCommit = 1, true
	}
	group := service.NewServiceGroup()
	group.Add(kq.MustNewQueue(kqConf, consumer, kq.WithErrorHandler(consumer.DeadLetterHandler)))
	group.Add(mqs.NewCloseUnpaid(svcCtx))
	return group
}
