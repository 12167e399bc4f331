package console_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/console"
)

// screenshotDir is where the browser test saves its screenshots: a
// temporary directory, so tests leave the tree as they found it, unless
// `make screenshots` refreshes the documentation's (doc/console/).
var screenshotDir = flag.String("screenshots", "", "save the console screenshots in this directory (make screenshots: doc/console)")

func startConsole(t *testing.T) (brokerAddr, url string) {
	t.Helper()
	b := brokertest.Start(t, nil)
	c, err := console.New(b.Addr, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); c.Close() })
	return b.Addr, srv.URL
}

// browser starts Debian's headless Chromium.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it), so the console is not tested in a browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

func screenshot(t *testing.T, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var png []byte
		if err := chromedp.FullScreenshot(&png, 100).Do(ctx); err != nil {
			return err
		}
		if len(png) == 0 {
			return fmt.Errorf("screenshot %s is empty", name)
		}
		dir := *screenshotDir
		if dir == "" {
			dir = t.TempDir()
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), png, 0o644)
	})
}

// A condition on the page, with what it waits for in words.
type condition struct {
	desc  string
	holds func(ctx context.Context) bool
}

// shows: the element's text contains want.
func shows(sel, want string) condition {
	return condition{fmt.Sprintf("%s showing %q", sel, want), func(ctx context.Context) bool {
		var text string
		return chromedp.Text(sel, &text, chromedp.ByQuery).Do(ctx) == nil && strings.Contains(text, want)
	}}
}

// matches: the selector matches n elements.
func matches(sel string, n int) condition {
	return condition{fmt.Sprintf("%d elements matching %s", n, sel), func(ctx context.Context) bool {
		var count int
		return chromedp.Evaluate(fmt.Sprintf("document.querySelectorAll(%q).length", sel), &count).Do(ctx) == nil && count == n
	}}
}

// poll checks c until it holds, every interval, reloading the page between
// checks when reload is set (the console draws a page from the API once).
func poll(c condition, interval time.Duration, reload bool) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for !c.holds(ctx) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("never saw %s", c.desc)
			case <-time.After(interval):
			}
			if reload {
				if err := chromedp.Reload().Do(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func waitText(sel, want string) chromedp.Action {
	return poll(shows(sel, want), 100*time.Millisecond, false)
}

func waitCount(sel string, n int) chromedp.Action {
	return poll(matches(sel, n), 100*time.Millisecond, false)
}

// reloadUntil: a chart appears once the console has sampled twice.
func reloadUntil(sel string, n int) chromedp.Action {
	return poll(matches(sel, n), 300*time.Millisecond, true)
}

// reloadUntilText: the console's metadata may be a moment behind a topic
// just created.
func reloadUntilText(sel, want string) chromedp.Action {
	return poll(shows(sel, want), 300*time.Millisecond, true)
}

func TestConsoleInChromium(t *testing.T) {
	ctx := browser(t)
	brokerAddr, url := startConsole(t)

	// Create a topic through the form: a bad name is refused with a message.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(url+"/#/create-topic"),
		chromedp.WaitVisible(`#create input[name=name]`, chromedp.ByQuery),
		chromedp.SendKeys(`#create input[name=name]`, "bad name", chromedp.ByQuery),
		chromedp.Click(`#create button`, chromedp.ByQuery),
		waitText(`#name-error`, "letters, digits"),
		screenshot(t, "create-topic-validation.png"),
		chromedp.SetValue(`#create input[name=name]`, "orders", chromedp.ByQuery),
		chromedp.SetValue(`#create input[name=partitions]`, "3", chromedp.ByQuery),
		chromedp.Click(`#create button`, chromedp.ByQuery),
		waitText(`#create-result`, "Created orders with 3 partitions"),
		screenshot(t, "create-topic.png"),
	); err != nil {
		t.Fatal(err)
	}

	// JSON records with keys and headers, then a group that consumed 4.
	client, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for i := 0; i < 10; i++ {
		value := fmt.Sprintf(`{"order_id":"o-%d","amount":%d,"items":[{"sku":"A-1","qty":2}]}`, i, 100*i)
		r := &kgo.Record{Key: []byte(fmt.Sprintf("user-%d", i%3)), Value: []byte(value), Partition: int32(i % 3),
			Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}}
		if err := client.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	var consumed []*kgo.Record
	for len(consumed) < 4 {
		consumed = append(consumed, consumer.PollRecords(ctx, 4-len(consumed)).Records()...)
	}
	if err := consumer.CommitRecords(ctx, consumed...); err != nil {
		t.Fatal(err)
	}
	// Which 4 depends on the order the partitions' fetches came back in
	// (on three brokers they have different leaders): partition 1 holds 3
	// records, its lag is 3 less what was read of it.
	lagOfPartition1 := 3
	for _, r := range consumed {
		if r.Partition == 1 {
			lagOfPartition1 = min(lagOfPartition1, 3-int(r.Offset+1))
		}
	}
	consumer.Close() // the group is empty again, so its offsets can be reset

	// A steady stream into a second topic while the overview is open, so
	// its throughput chart has something to draw.
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 1, 1, nil, "clicks"); err != nil {
		t.Fatal(err)
	}
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for i := 0; i < 40 && ctx.Err() == nil; i++ {
			batch := make([]*kgo.Record, 10*(1+i%4))
			for j := range batch {
				batch[j] = &kgo.Record{Topic: "clicks", Value: []byte(`{"page":"/orders"}`)}
			}
			_ = client.ProduceSync(ctx, batch...).FirstErr()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	defer func() { <-streamDone }()
	if err := chromedp.Run(ctx,
		chromedp.Navigate(url+"/#/"),
		reloadUntilText(`#topic-count`, "2"),
		waitText(`#page`, "Cluster id"),
		// The throughput chart fills as the console samples.
		reloadUntil(`.chart polyline`, 1),
		waitText(`#page`, "records produced per second"),
		chromedp.Sleep(3*time.Second),
		chromedp.Reload(),
		waitText(`#page`, "records produced per second"),
		screenshot(t, "overview.png"),
	); err != nil {
		t.Fatal(err)
	}

	var rows int
	if err := chromedp.Run(ctx,
		chromedp.Navigate(url+"/#/topics/orders"),
		waitText(`#messages`, `"order_id": "o-0"`), // pretty-printed JSON of partition 0
		waitText(`#messages`, "traceparent=00-4bf92f"),
		waitText(`#messages`, "user-0"),
		chromedp.Evaluate(`document.querySelectorAll('#messages tbody tr').length`, &rows),
		waitText(`#page`, "retention.ms"),
		screenshot(t, "topic.png"),
	); err != nil {
		t.Fatal(err)
	}
	if rows != 4 { // offsets 0..3 of partition 0 hold records 0, 3, 6, 9
		t.Errorf("partition 0 shows %d messages, want 4", rows)
	}
	// From offset 2: the records at offsets 2 and 3 (o-6 and o-9).
	if err := chromedp.Run(ctx,
		chromedp.SetValue(`#browse input[name=offset]`, "2", chromedp.ByQuery),
		chromedp.Click(`#browse button`, chromedp.ByQuery),
		waitCount(`#messages tbody tr`, 2),
		waitText(`#messages`, `"order_id": "o-6"`),
		waitText(`#messages`, `"order_id": "o-9"`),
	); err != nil {
		t.Fatal(err)
	}

	// By time: an hour ago is the start of the partition; an hour ahead
	// is past its end.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(url+"/#/topics/orders?partition=0&time="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)),
		waitCount(`#messages tbody tr`, 4),
		chromedp.Navigate(url+"/#/topics/orders?partition=0&time="+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)),
		waitText(`#messages`, "No messages there."),
	); err != nil {
		t.Fatal(err)
	}

	// The group: lag per partition, then a reset with a confirmation step.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(url+"/#/groups"),
		waitText(`#page`, "billing"),
		chromedp.Navigate(url+"/#/groups/billing"),
		waitText(`#group-lag`, "6"),
		waitText(`#group-state`, "Empty"),
		// One line per partition once the console has two samples.
		reloadUntil(`.chart polyline[data-partition]`, 3),
		waitText(`.legend`, fmt.Sprintf("orders-1: %d", lagOfPartition1)),
		screenshot(t, "group.png"),
		chromedp.SetValue(`#reset input[name=to]`, "earliest", chromedp.ByQuery),
		chromedp.Click(`#reset button`, chromedp.ByQuery),
		waitText(`#reset-result`, "Confirm reset"),
		screenshot(t, "group-reset-confirm.png"),
	); err != nil {
		t.Fatal(err)
	}
	if lag := groupLag(t, url); lag != 6 {
		t.Fatalf("the preview changed the offsets: lag %d", lag)
	}
	if err := chromedp.Run(ctx,
		chromedp.Click(`#confirm-reset`, chromedp.ByQuery),
		waitText(`#group-lag`, "10"),
	); err != nil {
		t.Fatal(err)
	}
	if lag := groupLag(t, url); lag != 10 {
		t.Fatalf("after the reset to earliest: lag %d, want 10", lag)
	}
}

func groupLag(t *testing.T, url string) int64 {
	t.Helper()
	resp, err := http.Get(url + "/api/groups/billing")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Group struct {
			Lag int64 `json:"lag"`
		} `json:"group"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Group.Lag
}

func TestAPIErrorsSayWhatToDo(t *testing.T) {
	_, url := startConsole(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/api/topics/missing", "", http.StatusNotFound, "kqctl topic create missing"},
		{"POST", "/api/topics", `{"name":"x","partitions":0}`, http.StatusBadRequest, "partitions must be between 1 and 10000"},
		{"POST", "/api/topics", `not json`, http.StatusBadRequest, "the form could not be read"},
		{"GET", "/api/topics/missing/messages?time=yesterday", "", http.StatusBadRequest, "RFC 3339"},
		{"POST", "/api/groups/g/reset", `{"topic":"t","to":"sideways"}`, http.StatusBadRequest, "earliest, latest"},
		// What a page on another site can send without a CORS preflight.
		{"POST+text", "/api/topics", `{"name":"csrf","partitions":1}`, http.StatusUnsupportedMediaType, "Content-Type: application/json"},
	} {
		method, contentType := tc.method, "application/json"
		if m, ok := strings.CutSuffix(method, "+text"); ok {
			method, contentType = m, "text/plain"
		}
		req, _ := http.NewRequest(method, url+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(body["error"], tc.want) {
			t.Errorf("%s %s: %d %q, want %d with %q", tc.method, tc.path, resp.StatusCode, body["error"], tc.status, tc.want)
		}
	}
}

// TestClusterPageHighlightsUnderReplicatedPartitions: three brokers and a
// topic with three replicas; with broker 3 stopped, the page shows it
// fenced and every partition under-replicated, highlighted, with broker 3
// out of the ISR and offline; started again, the page clears.
func TestClusterPageHighlightsUnderReplicatedPartitions(t *testing.T) {
	ctx := browser(t)
	brokers := brokertest.StartCluster(t, 3, func(c *config.Config) {
		c.BrokerHeartbeatIntervalMs, c.BrokerSessionTimeoutMs = 200, 1500
	})
	c, err := console.New(brokers[0].Addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	t.Cleanup(func() { srv.Close(); c.Close() })
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers[0].Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := kadm.NewClient(client).CreateTopic(ctx, 2, 3, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Run(ctx,
		chromedp.Navigate(srv.URL+"/#/cluster"),
		reloadUntil(`#partition-list tbody tr`, 2),
		waitCount(`#broker-list tbody tr`, 3),
		waitCount(`#partition-list tr.under-replicated, #partition-list tr.offline`, 0),
		waitCount(`#partition-list .replica.in-sync`, 6),
		waitText(`#under-replicated-count`, "0"),
		waitCount(`#broker-list td`, 15),
		waitText(`#broker-list`, "controller"),
	); err != nil {
		t.Fatal(err)
	}

	brokers[2].Stop(t)
	if err := chromedp.Run(ctx,
		reloadUntil(`#partition-list tr.under-replicated`, 2),
		waitText(`#under-replicated-count`, "2"),
		waitText(`#fenced-count`, "1"),
		waitCount(`#broker-list tr.fenced[data-broker="3"]`, 1),
		waitText(`#broker-list tr[data-broker="3"]`, "fenced"),
		waitCount(`#partition-list .replica.offline`, 2), // broker 3, in each partition
		waitText(`#partition-list tr[data-partition="orders-0"]`, "under-replicated"),
		screenshot(t, "cluster.png"),
	); err != nil {
		t.Fatal(err)
	}
	var isr string
	if err := chromedp.Run(ctx, chromedp.Text(`#partition-list tr[data-partition="orders-1"] td.isr`, &isr, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(isr, "3") || !strings.Contains(isr, "1") || !strings.Contains(isr, "2") {
		t.Errorf("orders-1's ISR with broker 3 stopped shows %q", isr)
	}
	// The API says the same.
	resp, err := http.Get(srv.URL + "/api/cluster")
	if err != nil {
		t.Fatal(err)
	}
	var view struct {
		UnderReplicated int `json:"under_replicated_partitions"`
		Partitions      []struct {
			UnderReplicated bool    `json:"under_replicated"`
			OfflineReplicas []int32 `json:"offline_replicas"`
		} `json:"partitions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if err != nil || view.UnderReplicated != 2 || len(view.Partitions) != 2 || !view.Partitions[0].UnderReplicated ||
		len(view.Partitions[0].OfflineReplicas) != 1 || view.Partitions[0].OfflineReplicas[0] != 3 {
		t.Fatalf("/api/cluster with broker 3 stopped: %+v %v", view, err)
	}

	// Back in service, it catches up and rejoins the ISR: nothing is
	// highlighted any more.
	brokers[2].StartAgain(t)
	if err := chromedp.Run(ctx,
		reloadUntil(`#partition-list tr.under-replicated, #broker-list tr.fenced`, 0),
		waitText(`#under-replicated-count`, "0"),
		waitCount(`#partition-list .replica.in-sync`, 6),
	); err != nil {
		t.Fatal(err)
	}
}
