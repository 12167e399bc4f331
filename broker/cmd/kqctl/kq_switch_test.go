package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kqstack/kqstack/broker/brokertest"
)

// kqService is a go-zero service as teams write one on go-queue kq today:
// a kq Pusher and a kq consumer group from the YAML blocks looklook uses.
// It pushes the events named on its command line and logs each one it
// handles.
const kqService = `package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/conf"
	"github.com/zeromicro/go-zero/core/service"
)

type Config struct {
	service.ServiceConf
	KqPusherConf struct {
		Brokers []string
		Topic   string
	}
	KqConsumerConf kq.KqConf
}

type Order struct {
	OrderNo string ` + "`json:\"order_no\"`" + `
}

func consume(ctx context.Context, key, value string) error {
	var o Order
	if err := json.Unmarshal([]byte(value), &o); err != nil {
		return err
	}
	fmt.Println("handled", o.OrderNo)
	return nil
}

func main() {
	configFile := flag.String("f", "etc/orders.yaml", "the config file")
	flag.Parse()
	var c Config
	conf.MustLoad(*configFile, &c)
	pusher := kq.NewPusher(c.KqPusherConf.Brokers, c.KqPusherConf.Topic)
	for _, orderNo := range flag.Args() {
		value, _ := json.Marshal(Order{OrderNo: orderNo})
		if err := pusher.Push(context.Background(), string(value)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	q := kq.MustNewQueue(c.KqConsumerConf, kq.WithHandle(consume))
	defer q.Stop()
	q.Start()
}
`

// TestAKqServiceSwitchesByItsImport: a copy of a service on kq builds as
// it is; then the switch doc/adopting.md describes is made (the imports,
// the two constructors, the config field's type, the handler's signature,
// and events sent as envelopes) and the same YAML runs it on common/: each
// pushed event is handled once, an event pushed twice is handled once,
// and the group commits to the end of the topic.
func TestAKqServiceSwitchesByItsImport(t *testing.T) {
	b := brokertest.Start(t, nil)
	dir := t.TempDir()
	main := filepath.Join(dir, "main.go")
	writeFile(t, main, kqService)
	writeFile(t, filepath.Join(dir, "go.mod"), "module orders\n\ngo 1.22\n")
	useThisTree(t, dir)
	goOutput(t, dir, "build", "-o", filepath.Join(t.TempDir(), "orders-on-kq"), ".") // the service as it was

	// The switch.
	edit(t, main, `	"github.com/zeromicro/go-queue/kq"
`, `	"time"

	"github.com/kqstack/kqstack/common/consume"
	"github.com/kqstack/kqstack/common/event"
	"github.com/kqstack/kqstack/common/push"
	"github.com/zeromicro/go-zero/core/logx"
	_ "modernc.org/sqlite"
	"database/sql"
`)
	edit(t, main, "KqConsumerConf kq.KqConf", "KqConsumerConf consume.KqConf")
	edit(t, main, "kq.NewPusher(c.KqPusherConf.Brokers, c.KqPusherConf.Topic)", "push.MustNewPusher(c.KqPusherConf.Brokers, c.KqPusherConf.Topic)")
	edit(t, main, `func consume(ctx context.Context, key, value string) error {
	var o Order
	if err := json.Unmarshal([]byte(value), &o); err != nil {
		return err
	}`, `func handle(ctx context.Context, e event.Event) error {
	var o Order
	if err := e.DecodePayload(&o); err != nil {
		return consume.Permanent(err)
	}`)
	edit(t, main, `		value, _ := json.Marshal(Order{OrderNo: orderNo})`, `		e, _ := event.New("order.created", 1, time.Now(), Order{OrderNo: orderNo})
		if orderNo == "ORD-TWICE" {
			e.ID = "ORD-TWICE" // pushed again below: one event, delivered twice
		}
		value, _ := json.Marshal(e)
		if orderNo == "ORD-TWICE" {
			_ = pusher.Push(context.Background(), string(value))
		}`)
	edit(t, main, "	q := kq.MustNewQueue(c.KqConsumerConf, kq.WithHandle(consume))", `	db, err := sql.Open("sqlite", "dedup.db")
	logx.Must(err)
	_, err = db.Exec(consume.SQLDedupSchema)
	logx.Must(err)
	q := consume.MustNewQueue(c.KqConsumerConf, consume.SQLDedup{DB: db}, handle)`)
	goOutput(t, dir, "mod", "tidy")
	goOutput(t, dir, "vet", "./...")
	bin := filepath.Join(t.TempDir(), "orders")
	goOutput(t, dir, "build", "-o", bin, ".")

	// The YAML the kq service had, unchanged.
	admin := kadm.NewClient(newKgo(t, b.Addr))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := admin.CreateTopic(ctx, 1, -1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	b.Sync(t)
	yaml := fmt.Sprintf(`Name: orders
Log:
  Mode: console
  Level: info
KqPusherConf:
  Brokers: [%[1]s]
  Topic: orders
KqConsumerConf:
  Name: orders-consumer
  Brokers: [%[1]s]
  Group: orders-group
  Topic: orders
  Offset: first
  Consumers: 8
  Processors: 8
`, b.Addr)
	writeFile(t, filepath.Join(dir, "orders.yaml"), yaml)
	logFile := startProcess(t, dir, bin, "-f", "orders.yaml", "ORD-1", "ORD-TWICE", "ORD-2")
	eventually(t, 30*time.Second, "every event handled and committed", func() (bool, string) {
		out, _ := os.ReadFile(logFile)
		fetched, err := admin.FetchOffsets(ctx, "orders-group")
		committed, _ := fetched.Lookup("orders", 0)
		return err == nil && committed.At == 4 && strings.Contains(string(out), "handled ORD-2"), fmt.Sprintf("committed %d; log:\n%s", committed.At, out)
	})
	out, _ := os.ReadFile(logFile)
	for _, orderNo := range []string{"ORD-1", "ORD-TWICE", "ORD-2"} {
		if n := strings.Count(string(out), "handled "+orderNo+"\n"); n != 1 {
			t.Errorf("%s handled %d times:\n%s", orderNo, n, out)
		}
	}
}
