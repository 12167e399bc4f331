// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package svc

import (
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/logx"
	_ "modernc.org/sqlite"

	"github.com/kqstack/kqstack/app/order/cmd/api/internal/config"
	"github.com/kqstack/kqstack/app/order/model"
	"github.com/kqstack/kqstack/common/delay"
)

type ServiceContext struct {
	Config           config.Config
	OrderModel       model.OrderModel
	CloseUnpaidAfter time.Duration
	// CloseQueue schedules the close of unpaid orders; nil without Redis.
	CloseQueue *delay.Queue
}

func NewServiceContext(c config.Config) *ServiceContext {
	db, err := model.Open(c.DB.Driver, c.DB.DataSource)
	logx.Must(err)
	closeAfter, err := time.ParseDuration(c.CloseUnpaidAfter)
	logx.Must(err)
	s := &ServiceContext{Config: c, OrderModel: model.OrderModel{DB: db}, CloseUnpaidAfter: closeAfter}
	if c.Redis.Addr != "" {
		s.CloseQueue = &delay.Queue{Client: redis.NewClient(&redis.Options{Addr: c.Redis.Addr}), Key: model.CloseUnpaidQueue}
	} else {
		logx.Infof("no Redis configured: order-mq closes unpaid orders by sweeping the orders table")
	}
	return s
}
