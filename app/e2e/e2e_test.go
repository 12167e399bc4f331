// Package e2e runs the order and payment services as the real binaries,
// against a real broker and a real Redis, and drives them over HTTP.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/common/mysqltest"
	"github.com/kqstack/kqstack/common/redistest"
	"github.com/kqstack/kqstack/internal/groupwait"
	"github.com/kqstack/kqstack/internal/testport"
)

type stack struct {
	t testing.TB // where failures go: the test or subtest running now
	// owner is the test the stack belongs to: its cleanups stop the
	// processes
	owner   testing.TB
	brokers []string
	redis   *redis.Client
	// infoLogs are the services that log at info level, to
	// <dir>/<name>.log only (logPath); the others log errors to the
	// test's output.
	infoLogs map[string]bool
	dir      string
	bins     map[string]string
	configs  map[string]string
	procs    map[string]*exec.Cmd
	orderURL string
	payURL   string
}

// database is where the services keep their tables.
type database struct {
	driver               string
	orderDSN, paymentDSN string
}

// sqliteOptions are the embedded default's: WAL, and commits that survive
// a process crash (not a power loss) without an fsync each, as in
// deploy's configs.
const sqliteOptions = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"

func sqliteDatabase(dir string) database {
	return database{driver: "sqlite",
		orderDSN:   filepath.Join(dir, "order.db") + sqliteOptions,
		paymentDSN: filepath.Join(dir, "payment.db") + sqliteOptions}
}

// mariaDBDatabase is one MariaDB database with deploy/sql's schemas, as in
// docker compose.
func mariaDBDatabase(t testing.TB) database {
	dsn := mysqltest.Start(t, "kqstack", "../../deploy/sql/payment.sql", "../../deploy/sql/order.sql")
	return database{driver: "mysql", orderDSN: dsn, paymentDSN: dsn}
}

func newStack(t testing.TB, db func(dir string) database) *stack {
	b := brokertest.Start(t, nil)
	return newStackOn(t, db, []string{b.Addr})
}

// newStackOn runs the services against the brokers at addrs; the services
// named in infoLogs log at info level to their logPath.
func newStackOn(t testing.TB, db func(dir string) database, brokers []string, infoLogs ...string) *stack {
	rdb := redistest.Start(t)
	s := &stack{t: t, owner: t, brokers: brokers, redis: rdb, infoLogs: map[string]bool{}, dir: t.TempDir(), bins: map[string]string{}, configs: map[string]string{}, procs: map[string]*exec.Cmd{}}
	for _, name := range infoLogs {
		s.infoLogs[name] = true
	}
	for name, pkg := range map[string]string{"order-api": "app/order/cmd/api", "order-mq": "app/order/cmd/mq", "payment-api": "app/payment/cmd/api"} {
		bin := filepath.Join(s.dir, name)
		out, err := exec.Command("go", "build", "-o", bin, "github.com/kqstack/kqstack/"+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("building %s: %v\n%s", name, err, out)
		}
		s.bins[name] = bin
	}
	d := db(s.dir)
	orderPort, payPort := testport.Port(t), testport.Port(t)
	s.orderURL = fmt.Sprintf("http://127.0.0.1:%d/order/v1", orderPort)
	s.payURL = fmt.Sprintf("http://127.0.0.1:%d/payment/v1", payPort)
	logConf := func(name string) string {
		if s.infoLogs[name] {
			return "Log:\n  Mode: console\n  Level: info\n"
		}
		return "Log:\n  Mode: console\n  Level: error\n"
	}
	addrs := strings.Join(brokers, ", ")
	s.configs["order-api"] = fmt.Sprintf("Name: order-api\nHost: 127.0.0.1\nPort: %d\n%sDB:\n  Driver: %s\n  DataSource: %q\nCloseUnpaidAfter: 1h\nRedis:\n  Addr: %s\n", orderPort, logConf("order-api"), d.driver, d.orderDSN, rdb.Options().Addr)
	s.configs["payment-api"] = fmt.Sprintf("Name: payment-api\nHost: 127.0.0.1\nPort: %d\n%sDB:\n  Driver: %s\n  DataSource: %q\nPaymentEvents:\n  Brokers: [%s]\n  Topic: payment-update-paystatus-topic\n  AllowAutoTopicCreation: true\nOutbox:\n  IntervalMs: 5\n",
		payPort, logConf("payment-api"), d.driver, d.paymentDSN, addrs)
	s.configs["order-mq"] = fmt.Sprintf(`Name: order-mq
%sDB:
  Driver: %s
  DataSource: %q
PaymentUpdateStatusConf:
  Name: payment-update-paystatus
  Brokers: [%s]
  Group: payment-update-paystatus-group
  Topic: payment-update-paystatus-topic
  Offset: first
  Consumers: 1
  Processors: 1
  MinBytes: 1
  ForceCommit: true
Redis:
  Addr: %s
CloseUnpaid:
  CheckIntervalMs: 100
`, logConf("order-mq"), d.driver, d.orderDSN, addrs, rdb.Options().Addr)
	for name := range s.bins {
		s.start(name)
	}
	s.waitHTTP(s.orderURL + "/orders/none")
	s.waitHTTP(s.payURL + "/payments/none")
	s.waitConsuming(paymentGroup)
	return s
}

// paymentGroup is order-mq's consumer group of payment events.
const paymentGroup = "payment-update-paystatus-group"

// on is the stack with failures reported to t (a subtest).
func (s *stack) on(t testing.TB) *stack {
	c := *s
	c.t = t
	return &c
}

// waitConsuming waits until the group is stable with its one member
// assigned partitions: order-mq is up and consuming, as a deployment's
// readiness check would see it.
func (s *stack) waitConsuming(groupID string) {
	s.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers...))
	if err != nil {
		s.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if _, err := groupwait.Stable(ctx, kadm.NewClient(cl), groupID, 1, 30*time.Second); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stack) start(name string) {
	config := filepath.Join(s.dir, name+".yaml")
	if err := os.WriteFile(config, []byte(s.configs[name]), 0o644); err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bins[name], "-f", config)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if s.infoLogs[name] {
		f, err := os.OpenFile(s.logPath(name), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			s.t.Fatal(err)
		}
		defer f.Close() // the process has its own descriptor
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.procs[name] = cmd
	s.owner.Cleanup(func() { s.stop(name, syscall.SIGTERM) })
}

// logPath is where a service of infoLogs logs, across restarts.
func (s *stack) logPath(name string) string { return filepath.Join(s.dir, name+".log") }

func (s *stack) stop(name string, sig syscall.Signal) {
	cmd := s.procs[name]
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	_ = cmd.Wait()
	delete(s.procs, name)
}

func (s *stack) waitHTTP(url string) {
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not come up", url)
		}
	}
}

func (s *stack) call(method, url string, body, out any) {
	s.t.Helper()
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, url, bytes.NewReader(data))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		s.t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, msg.String())
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			s.t.Fatal(err)
		}
	}
}

// buy creates an order and a payment for it and reports the payment paid
// (callbacks times); it returns the order number.
func (s *stack) buy(callbacks int) (string, int) {
	var order struct {
		OrderNo string `json:"order_no"`
	}
	s.call("POST", s.orderURL+"/orders", map[string]any{"user_id": 7, "amount": 2500}, &order)
	var payment struct {
		PaymentNo string `json:"payment_no"`
	}
	s.call("POST", s.payURL+"/payments", map[string]any{"order_no": order.OrderNo, "amount": 2500}, &payment)
	changes := 0
	for i := 0; i < callbacks; i++ {
		var r struct {
			Changed bool `json:"changed"`
		}
		s.call("POST", s.payURL+"/callback", map[string]any{"payment_no": payment.PaymentNo, "status": "paid"}, &r)
		if r.Changed {
			changes++
		}
	}
	return order.OrderNo, changes
}

func (s *stack) orderState(orderNo string) string {
	var o struct {
		State string `json:"state"`
	}
	s.call("GET", s.orderURL+"/orders/"+orderNo, nil, &o)
	return o.State
}

func (s *stack) waitPaid(orderNo string, within time.Duration) time.Duration {
	s.t.Helper()
	start := time.Now()
	for s.orderState(orderNo) != "paid" {
		if time.Since(start) > within {
			s.t.Fatalf("order %s is %s after %v", orderNo, s.orderState(orderNo), within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestOrderPaymentEndToEnd(t *testing.T) {
	s := newStack(t, sqliteDatabase)
	paymentFlows(t, s)
	t.Run("order-mq killed and restarted: every payment applied", func(t *testing.T) {
		s := s.on(t)
		s.stop("order-mq", syscall.SIGKILL)
		var orders []string
		for i := 0; i < 10; i++ {
			orderNo, _ := s.buy(1)
			orders = append(orders, orderNo)
		}
		if state := s.orderState(orders[0]); state != "wait-pay" {
			t.Fatalf("an order was paid with order-mq down: %s", state)
		}
		s.start("order-mq")
		// The killed member never left the group: as in Kafka, its
		// partitions move only when its session times out (kafka-go's
		// default, 30s, which kq v1.2.2 does not let us change).
		for _, orderNo := range orders {
			s.waitPaid(orderNo, 60*time.Second)
		}
	})
}

// TestOrderPaymentEndToEndMariaDB runs the same flows with the services on
// MariaDB (the MySQL protocol), with deploy/sql's schemas.
func TestOrderPaymentEndToEndMariaDB(t *testing.T) {
	s := newStack(t, func(string) database { return mariaDBDatabase(t) })
	paymentFlows(t, s)
}

func paymentFlows(t *testing.T, s *stack) {
	t.Run("create order, pay, callback: the order is paid within 2s", func(t *testing.T) {
		s := s.on(t)
		orderNo, changes := s.buy(1)
		took := s.waitPaid(orderNo, 2*time.Second)
		if changes != 1 {
			t.Fatalf("%d changes", changes)
		}
		t.Logf("paid %v after the callback", took.Round(time.Millisecond))
	})
	t.Run("the same callback three times: one change", func(t *testing.T) {
		s := s.on(t)
		orderNo, changes := s.buy(3)
		s.waitPaid(orderNo, 2*time.Second)
		if changes != 1 {
			t.Fatalf("%d payment status changes for 3 callbacks", changes)
		}
		var list struct {
			Orders []struct {
				OrderNo string `json:"order_no"`
			} `json:"orders"`
		}
		s.call("GET", s.orderURL+"/users/7/orders", nil, &list)
		if len(list.Orders) != 2 || list.Orders[0].OrderNo != orderNo {
			t.Fatalf("user 7's orders: %+v", list.Orders)
		}
	})
}
