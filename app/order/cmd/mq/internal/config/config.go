package config

import (
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/common/consume"
)

type Config struct {
	service.ServiceConf
	DB struct {
		// Driver is sqlite (the embedded default: a file) or mysql.
		Driver     string `json:",default=sqlite,options=sqlite|mysql"`
		DataSource string
	}
	// PaymentUpdateStatusConf consumes payment status events (group
	// payment-update-paystatus-group, Offset first): kq's block, with the
	// retries (Attempts, Backoff) and the dead-letter topic (<topic>.dlq).
	PaymentUpdateStatusConf consume.KqConf
	// Redis keeps idempotency keys; without Addr the service falls back to
	// an SQL table and says so.
	Redis struct {
		Addr string `json:",optional"`
	}
	CloseUnpaid struct {
		CheckIntervalMs int `json:",default=1000"`
	}
}
