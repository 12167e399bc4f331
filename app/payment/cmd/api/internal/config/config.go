// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package config

import (
	"github.com/zeromicro/go-zero/rest"

	"github.com/kqstack/kqstack/common/push"
)

type Config struct {
	rest.RestConf
	DB struct {
		// Driver is sqlite (the embedded default: a file) or mysql.
		Driver     string `json:",default=sqlite,options=sqlite|mysql"`
		DataSource string
	}
	// PaymentEvents is where payment status changes are published.
	PaymentEvents push.Config
	Outbox        struct {
		IntervalMs int `json:",default=100"`
	}
}
