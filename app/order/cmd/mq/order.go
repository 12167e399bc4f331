// Command order-mq applies payment events to orders and closes orders left
// unpaid.
package main

import (
	"flag"

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
	group := service.NewServiceGroup()
	group.Add(consume.MustNewQueue(svcCtx.Config.PaymentUpdateStatusConf, svcCtx.Dedup, mqs.NewPaymentUpdateStatus(svcCtx).Handle))
	group.Add(mqs.NewCloseUnpaid(svcCtx))
	return group
}
