package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"
	"github.com/zeromicro/go-zero/rest"

	"github.com/kqstack/kqstack/app/order/cmd/api/internal/config"
	"github.com/kqstack/kqstack/internal/testport"
)

// TestOrderAPIAnswersErrorsWithTheirStatus: an unknown order is 404, bad
// input 400, each with a JSON {code, message}; a created order is found.
func TestOrderAPIAnswersErrorsWithTheirStatus(t *testing.T) {
	port := testport.Port(t)
	c := config.Config{RestConf: rest.RestConf{Host: "127.0.0.1", Port: port, Timeout: 10000,
		ServiceConf: service.ServiceConf{Name: "order-api-test", Log: logx.LogConf{Mode: "console", Level: "severe"}}}}
	c.DB.Driver = "sqlite"
	c.DB.DataSource = filepath.Join(t.TempDir(), "order.db") + "?_pragma=busy_timeout(5000)"
	c.CloseUnpaidAfter = "30m"
	server := newServer(c)
	go server.Start()
	defer server.Stop()
	base := fmt.Sprintf("http://127.0.0.1:%d/order/v1", port)
	call := func(method, path string, body any) (int, string) {
		t.Helper()
		var data []byte
		switch b := body.(type) {
		case nil:
		case string:
			data = []byte(b)
		default:
			data, _ = json.Marshal(b)
		}
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(text))
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/orders/none"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("order-api did not start")
		}
	}

	if code, text := call("GET", "/orders/nope", nil); code != 404 || text != `{"code":404,"message":"order not found: nope"}` {
		t.Fatalf("an unknown order: %d %s", code, text)
	}
	if code, text := call("POST", "/orders", map[string]any{"user_id": 7, "amount": -1}); code != 400 || text != `{"code":400,"message":"user_id and amount must be positive"}` {
		t.Fatalf("a negative amount: %d %s", code, text)
	}
	if code, text := call("POST", "/orders", "{not json"); code != 400 || !strings.HasPrefix(text, `{"code":400,"message":`) {
		t.Fatalf("a body that does not parse: %d %s", code, text)
	}
	code, text := call("POST", "/orders", map[string]any{"user_id": 7, "amount": 2500})
	var created struct {
		OrderNo string `json:"order_no"`
	}
	if code != 200 || json.Unmarshal([]byte(text), &created) != nil || created.OrderNo == "" {
		t.Fatalf("create: %d %s", code, text)
	}
	if code, text := call("GET", "/orders/"+created.OrderNo, nil); code != 200 || !strings.Contains(text, `"state":"wait-pay"`) {
		t.Fatalf("the order created: %d %s", code, text)
	}
}
