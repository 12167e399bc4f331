// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package svc

import (
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/zeromicro/go-zero/core/logx"
	_ "modernc.org/sqlite"

	"github.com/kqstack/kqstack/app/order/cmd/api/internal/config"
	"github.com/kqstack/kqstack/app/order/model"
)

type ServiceContext struct {
	Config           config.Config
	OrderModel       model.OrderModel
	CloseUnpaidAfter time.Duration
}

func NewServiceContext(c config.Config) *ServiceContext {
	db, err := model.Open(c.DB.Driver, c.DB.DataSource)
	logx.Must(err)
	closeAfter, err := time.ParseDuration(c.CloseUnpaidAfter)
	logx.Must(err)
	return &ServiceContext{Config: c, OrderModel: model.OrderModel{DB: db}, CloseUnpaidAfter: closeAfter}
}
