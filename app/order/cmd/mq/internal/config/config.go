package config

import (
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/common/push"
)

type Config struct {
	service.ServiceConf
	DB struct {
		// Driver is sqlite (the embedded default: a file) or mysql.
		Driver     string `json:",default=sqlite,options=sqlite|mysql"`
		DataSource string
	}
	// PaymentUpdateStatusConf consumes payment status events (group
	// payment-update-paystatus-group, Offset first, one processor).
	PaymentUpdateStatusConf kq.KqConf
	// DeadLetter is where events that keep failing go (<topic>.dlq).
	DeadLetter push.Config
	// Redis keeps idempotency keys; without Addr the service falls back to
	// an SQL table and says so.
	Redis struct {
		Addr string `json:",optional"`
	}
	Retry struct {
		Attempts  int `json:",default=5"`
		BackoffMs int `json:",default=100"`
	}
	CloseUnpaid struct {
		CheckIntervalMs int `json:",default=1000"`
	}
}
