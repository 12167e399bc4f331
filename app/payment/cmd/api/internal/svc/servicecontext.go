// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package svc

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/zeromicro/go-zero/core/logx"
	_ "modernc.org/sqlite"

	"github.com/kqstack/kqstack/app/payment/cmd/api/internal/config"
	"github.com/kqstack/kqstack/app/payment/model"
	"github.com/kqstack/kqstack/common/outbox"
	"github.com/kqstack/kqstack/common/push"
)

type ServiceContext struct {
	Config       config.Config
	DB           *sql.DB
	PaymentModel model.PaymentModel
	Relay        *outbox.Relay
	pusher       *push.Pusher
}

func NewServiceContext(c config.Config) *ServiceContext {
	db, err := openDB(c)
	logx.Must(err)
	pusher, err := push.NewPusher(c.PaymentEvents)
	logx.Must(err)
	return &ServiceContext{
		Config:       c,
		DB:           db,
		PaymentModel: model.PaymentModel{DB: db},
		Relay: &outbox.Relay{DB: db, Pushers: map[string]outbox.Pusher{c.PaymentEvents.Topic: pusher},
			Interval: time.Duration(c.Outbox.IntervalMs) * time.Millisecond},
		pusher: pusher,
	}
}

// openDB opens the database; the embedded SQLite file gets its tables
// created, MySQL uses deploy/sql/payment.sql.
func openDB(c config.Config) (*sql.DB, error) {
	db, err := sql.Open(c.DB.Driver, c.DB.DataSource)
	if err != nil {
		return nil, fmt.Errorf("DB: %w", err)
	}
	if c.DB.Driver == "sqlite" {
		db.SetMaxOpenConns(1) // one writer at a time, no SQLITE_BUSY
		for _, schema := range []string{model.SQLiteSchema, outbox.Schema(outbox.SQLite)} {
			if _, err := db.Exec(schema); err != nil {
				return nil, fmt.Errorf("DB: creating tables: %w", err)
			}
		}
	}
	return db, db.Ping()
}

// RelayService runs the outbox relay as a go-zero service.
func (s *ServiceContext) RelayService() *RelayService {
	ctx, cancel := context.WithCancel(context.Background())
	return &RelayService{svc: s, ctx: ctx, cancel: cancel}
}

// RelayService drains the outbox until stopped.
type RelayService struct {
	svc    *ServiceContext
	ctx    context.Context
	cancel context.CancelFunc
}

func (r *RelayService) Start() { r.svc.Relay.Run(r.ctx) }

func (r *RelayService) Stop() {
	r.cancel()
	_ = r.svc.pusher.Close()
	_ = r.svc.DB.Close()
}
