// Code scaffolded by goctl. Safe to edit.
// goctl 1.9.2

package config

import "github.com/zeromicro/go-zero/rest"

type Config struct {
	rest.RestConf
	DB struct {
		// Driver is sqlite (the embedded default: a file) or mysql.
		Driver     string `json:",default=sqlite,options=sqlite|mysql"`
		DataSource string
	}
	// CloseUnpaidAfter is how long an order waits for payment before
	// order-mq closes it.
	CloseUnpaidAfter string `json:",default=30m"`
	// Redis holds the close-unpaid delay queue; without Addr order-mq
	// finds due orders by sweeping the orders table.
	Redis struct {
		Addr string `json:",optional"`
	}
}
