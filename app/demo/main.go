// Command demo walks through the local stack once: create an order, create
// a payment for it, report it paid, and watch the order become paid. make
// run starts the stack and then this.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	orderURL := flag.String("order", "http://127.0.0.1:8001/order/v1", "order-api")
	paymentURL := flag.String("payment", "http://127.0.0.1:8002/payment/v1", "payment-api")
	flag.Parse()
	if err := run(*orderURL, *paymentURL); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func call(method, url string, body, out any) error {
	var payload []byte
	if body != nil {
		payload, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var msg bytes.Buffer
		_, _ = msg.ReadFrom(resp.Body)
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, msg.String())
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func run(orderURL, paymentURL string) error {
	var order struct {
		OrderNo string `json:"order_no"`
	}
	if err := call("POST", orderURL+"/orders", map[string]any{"user_id": 1, "amount": 1999}, &order); err != nil {
		return err
	}
	fmt.Printf("1. order-api: created order %s (19.99, waiting for payment)\n", order.OrderNo)
	var payment struct {
		PaymentNo string `json:"payment_no"`
	}
	if err := call("POST", paymentURL+"/payments", map[string]any{"order_no": order.OrderNo, "amount": 1999}, &payment); err != nil {
		return err
	}
	fmt.Printf("2. payment-api: created payment %s for it\n", payment.PaymentNo)
	var callback struct {
		Status  string `json:"status"`
		Changed bool   `json:"changed"`
	}
	if err := call("POST", paymentURL+"/callback", map[string]any{"payment_no": payment.PaymentNo, "status": "paid"}, &callback); err != nil {
		return err
	}
	sent := time.Now()
	fmt.Printf("3. payment-api: the provider's callback says paid; payment status and outbox event written in one transaction\n")
	fmt.Printf("   relay -> kqbroker topic payment-update-paystatus-topic (acks=all) -> order-mq (kq group payment-update-paystatus-group)\n")
	for {
		var o struct {
			State string `json:"state"`
		}
		if err := call("GET", orderURL+"/orders/"+order.OrderNo, nil, &o); err != nil {
			return err
		}
		if o.State == "paid" {
			fmt.Printf("4. order-api: order %s is paid, %v after the callback\n", order.OrderNo, time.Since(sent).Round(time.Millisecond))
			return nil
		}
		if time.Since(sent) > 10*time.Second {
			return fmt.Errorf("order %s is still %s after 10s", order.OrderNo, o.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
