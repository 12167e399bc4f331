// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package main

import (
	"flag"
	"fmt"

	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/config"
	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/handler"
	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/common/xerr"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/service"
	"github.com/zeromicro/go-zero/rest"
	"github.com/zeromicro/go-zero/rest/httpx"
)

var configFile = flag.String("f", "etc/payment-api.yaml", "the config file")

func main() {
	flag.Parse()

	var c config.Config
	conf.MustLoad(*configFile, &c)

	group := newServiceGroup(c)
	defer group.Stop()
	fmt.Printf("Starting server at %s:%d...\n", c.Host, c.Port)
	group.Start()
}

// newServiceGroup is the HTTP server and the outbox relay, started and
// stopped together.
func newServiceGroup(c config.Config) *service.ServiceGroup {
	server := rest.MustNewServer(c.RestConf)
	httpx.SetErrorHandlerCtx(xerr.Handler(handler.StatusOf))
	ctx := svc.NewServiceContext(c)
	handler.RegisterHandlers(server, ctx)

	group := service.NewServiceGroup()
	group.Add(server)
	group.Add(ctx.RelayService())
	return group
}
