// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package main

import (
	"flag"
	"fmt"

	"github.com/kqstack/kqstack/app/order/cmd/api/internal/config"
	"github.com/kqstack/kqstack/app/order/cmd/api/internal/handler"
	"github.com/kqstack/kqstack/app/order/cmd/api/internal/svc"
	"github.com/kqstack/kqstack/common/xerr"

	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/rest"
	"github.com/zeromicro/go-zero/rest/httpx"
)

var configFile = flag.String("f", "etc/order-api.yaml", "the config file")

func main() {
	flag.Parse()

	var c config.Config
	conf.MustLoad(*configFile, &c, conf.UseEnv())

	server := newServer(c)
	defer server.Stop()

	fmt.Printf("Starting server at %s:%d...\n", c.Host, c.Port)
	server.Start()
}

// newServer is order-api's HTTP server, its errors answered as
// {code, message} with their status (404 for an unknown order, 400 for
// bad input).
func newServer(c config.Config) *rest.Server {
	server := rest.MustNewServer(c.RestConf)
	httpx.SetErrorHandlerCtx(xerr.Handler(handler.StatusOf))
	handler.RegisterHandlers(server, svc.NewServiceContext(c))
	return server
}
