package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/internal/testport"
)

// TestPrometheusAnswersEveryDashboardQuery: a real Prometheus (Debian's
// prometheus package) scrapes three kqbroker processes every second while
// a producer writes to a topic with three replicas and a consumer group
// reads it; then every query of every panel of the Grafana dashboard, and
// the query behind its broker selector, must return data from it.
func TestPrometheusAnswersEveryDashboardQuery(t *testing.T) {
	prometheus, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (apt-get install prometheus; .ci/run installs it), so the dashboard is not checked against a real Prometheus")
	}
	queries, selector := dashboardQueries(t)
	began := time.Now()
	configs, addrs, adminAddrs := measuredClusterConfigs(t, 3)
	// Prometheus first: it takes a few seconds to scrape new targets,
	// while the brokers are built and started.
	api := startPrometheus(t, prometheus, adminAddrs)
	brokers := startConfigured(t, buildBroker(t), configs)
	for i, b := range brokers {
		if b.AdminAddr != adminAddrs[i] {
			t.Fatalf("broker %d serves its admin port at %q, want %s", i+1, b.AdminAddr, adminAddrs[i])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for !hasValue(api.query(t, `count(up{job="kqbroker"} == 1) == 3`)) {
		if ctx.Err() != nil {
			t.Fatalf("Prometheus never scraped the three brokers: %s", api.raw(t, `up`))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("three brokers and Prometheus up, scraped, %v after the start", time.Since(began).Round(time.Millisecond))

	// Traffic after the first scrapes, so that the counters and
	// histograms rise between two of them: rate() has something to say.
	traffic := startTraffic(t, ctx, addrs)
	defer traffic.stop()

	// A few scrapes after the traffic began every query has its data;
	// one still without any after 30 s has none to come.
	deadline := time.Now().Add(30 * time.Second)
	missing := queries
	for len(missing) > 0 {
		var still []dashboardQuery
		for _, q := range missing {
			if !hasValue(api.query(t, q.expr)) {
				still = append(still, q)
			}
		}
		missing = still
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, q := range missing {
		t.Errorf("panel %q: Prometheus has no data for %s\n%s", q.panel, q.expr, api.raw(t, q.expr))
	}
	// The broker selector lists every broker.
	instances := map[string]bool{}
	for _, r := range api.query(t, selector.metric) {
		instances[r.Metric[selector.label]] = true
	}
	if len(instances) != len(brokers) {
		t.Errorf("the dashboard's selector %s lists %d brokers (%v), want %d", selector.query, len(instances), instances, len(brokers))
	}
	t.Logf("%d queries of the dashboard answered with data, %v after the start", len(queries)-len(missing), time.Since(began).Round(time.Millisecond))
}

// dashboardQuery is one target of a panel, with the broker selector set
// to every broker.
type dashboardQuery struct{ panel, expr string }

// templateQuery is the dashboard's label_values(metric, label) variable.
type templateQuery struct{ query, metric, label string }

func dashboardQueries(t *testing.T) ([]dashboardQuery, templateQuery) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "grafana", "dashboards", "kqbroker.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dashboard); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	var selector templateQuery
	labelValues := regexp.MustCompile(`^label_values\(\s*([a-z_]+)\s*,\s*([a-z_]+)\s*\)$`)
	for _, v := range dashboard.Templating.List {
		m := labelValues.FindStringSubmatch(v.Query)
		if v.Name != "instance" || m == nil {
			t.Fatalf("the dashboard's variable %s is %q; this test knows label_values(metric, label) for instance only", v.Name, v.Query)
		}
		selector = templateQuery{query: v.Query, metric: m[1], label: m[2]}
	}
	var queries []dashboardQuery
	for _, p := range dashboard.Panels {
		for _, target := range p.Targets {
			expr := strings.ReplaceAll(target.Expr, `"$instance"`, `".+"`) // the selector's All
			if strings.Contains(expr, "$") {
				t.Fatalf("panel %q: %s has a variable this test does not know", p.Title, target.Expr)
			}
			queries = append(queries, dashboardQuery{panel: p.Title, expr: expr})
		}
	}
	if len(queries) < 30 || selector.metric == "" {
		t.Fatalf("%d queries and selector %+v in the dashboard", len(queries), selector)
	}
	return queries, selector
}

// measuredClusterConfigs writes the config files of n kqbroker processes
// that are one metadata quorum, each with its admin server (/metrics) on
// a port of its own, and returns them with the client and admin
// addresses.
func measuredClusterConfigs(t *testing.T, n int) (configs, addrs, adminAddrs []string) {
	t.Helper()
	all := testport.Addrs(t, 3*n) // client, controller and admin ports
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, all[n+i]))
	}
	configs = make([]string, n)
	for i := range n {
		configs[i] = filepath.Join(t.TempDir(), "kqbroker.yaml")
		text := fmt.Sprintf("node_id: %d\nlisten: %s\ncontroller_listen: %s\ncontroller_quorum_voters: %s\ndata_dir: %s\nadmin_listen: %s\n"+
			"broker_heartbeat_interval_ms: 200\nbroker_session_timeout_ms: 1500\nreplica_lag_time_max_ms: 2000\ngroup_initial_rebalance_delay_ms: 0\n",
			i+1, all[i], all[n+i], strings.Join(voters, ","), t.TempDir(), all[2*n+i])
		if err := os.WriteFile(configs[i], []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return configs, all[:n], all[2*n:]
}

// prometheusAPI is a Prometheus server's HTTP API.
type prometheusAPI struct{ base string }

// startPrometheus runs Prometheus on a free port with a temporary
// database, scraping targets every second, until the test ends.
func startPrometheus(t *testing.T, bin string, targets []string) prometheusAPI {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: kqbroker\n    static_configs:\n      - targets: [%s]\n",
		strings.Join(targets, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testport.Addrs(t, 1)[0]
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1") // light on a small machine
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	output := func() string { text, _ := os.ReadFile(logPath); return string(text) }
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	api := prometheusAPI{base: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(api.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return api
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited (%v):\n%s", err, output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready in 20 s:\n%s", output())
		}
	}
}

// sample is one series of an instant query's answer.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// query asks for expr now; an error or a result that is not a vector
// fails the test.
func (p prometheusAPI) query(t *testing.T, expr string) []sample {
	t.Helper()
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string   `json:"resultType"`
			Result     []sample `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(p.raw(t, expr)), &answer); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if answer.Status != "success" || answer.Data.ResultType != "vector" {
		t.Fatalf("%s: Prometheus answered %s %s (%s)", expr, answer.Status, answer.Data.ResultType, answer.Error)
	}
	return answer.Data.Result
}

func (p prometheusAPI) raw(t *testing.T, expr string) string {
	t.Helper()
	resp, err := http.Get(p.base + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// hasValue: at least one series with a number (a rate of counters that
// never moved is 0, which is data; a quantile of nothing is NaN, which
// is not).
func hasValue(samples []sample) bool {
	for _, s := range samples {
		text, _ := s.Value[1].(string)
		if v, err := strconv.ParseFloat(text, 64); err == nil && !math.IsNaN(v) {
			return true
		}
	}
	return false
}

// traffic is a producer writing to a topic with three replicas and a
// consumer group reading it and committing, until stop.
type traffic struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func startTraffic(t *testing.T, ctx context.Context, addrs []string) *traffic {
	t.Helper()
	admin := kadm.NewClient(mustClient(t, addrs...))
	if _, err := admin.CreateTopic(ctx, 3, 3, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	producer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.AutoCommitInterval(500*time.Millisecond),
		// The topic is new: a broker that has not applied it yet may answer
		// the first metadata request, so look again soon.
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	if err != nil {
		producer.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	tr := &traffic{cancel: cancel}
	tr.done.Add(2)
	go func() {
		defer tr.done.Done()
		defer producer.Close()
		for i := 0; ctx.Err() == nil; i++ {
			batch := make([]*kgo.Record, 10)
			for j := range batch {
				batch[j] = &kgo.Record{Value: []byte(fmt.Sprintf(`{"order_id":"o-%d-%d"}`, i, j))}
			}
			_ = producer.ProduceSync(ctx, batch...) // errors while a leader moves are retried by the next batch
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	go func() {
		defer tr.done.Done()
		defer consumer.Close()
		for ctx.Err() == nil {
			consumer.PollFetches(ctx)
		}
	}()
	return tr
}

func (tr *traffic) stop() {
	tr.cancel()
	tr.done.Wait()
}
