package svc

import (
	"database/sql"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"github.com/zeromicro/go-zero/core/logx"
	_ "modernc.org/sqlite"

	"github.com/kqstack/kqstack/app/order/cmd/mq/internal/config"
	"github.com/kqstack/kqstack/app/order/model"
	"github.com/kqstack/kqstack/common/consume"
	"github.com/kqstack/kqstack/common/delay"
)

type ServiceContext struct {
	Config     config.Config
	DB         *sql.DB
	OrderModel model.OrderModel
	Dedup      consume.Dedup
	// CloseQueue holds orders to close when unpaid; nil without Redis.
	CloseQueue *delay.Queue
	// Now is the clock that tells which unpaid orders are due (time.Now);
	// tests set it to move time instead of waiting.
	Now func() time.Time
}

func NewServiceContext(c config.Config) *ServiceContext {
	db, err := model.Open(c.DB.Driver, c.DB.DataSource)
	logx.Must(err)
	s := &ServiceContext{Config: c, DB: db, OrderModel: model.OrderModel{DB: db}, Now: time.Now}
	if c.Redis.Addr != "" {
		client := redis.NewClient(&redis.Options{Addr: c.Redis.Addr})
		s.Dedup = consume.RedisDedup{Client: client, Prefix: c.Name + ":event:"}
		s.CloseQueue = &delay.Queue{Client: client, Key: model.CloseUnpaidQueue}
	} else {
		logx.Infof("no Redis configured: idempotency keys are kept in the SQL table processed_events, and unpaid orders are found by sweeping the orders table")
		logx.Must(model.ExecSchema(db, consume.SQLDedupSchema))
		s.Dedup = consume.SQLDedup{DB: db}
	}
	return s
}
