package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/internal/testport"
)

const (
	paymentTopic = "payment-update-paystatus-topic"
	deadLetters  = paymentTopic + ".dlq"
)

// TestOrdersPaidAcrossBrokerKills runs the services against three kqbroker
// processes (one quorum; the payment topic, its dead-letter topic and
// __consumer_offsets with three replicas) while orders are created and paid
// continuously. The broker leading a partition of the payment topic is
// killed with SIGKILL and restarted 5 s later; once every ISR is whole
// again, the broker coordinating order-mq's group is killed and restarted
// the same way. Every order whose callback succeeded is paid, each by one
// applied event (order-mq's log and its Redis dedup keys say so), nothing
// is dead-lettered, and order-mq's kq group (kafka-go, 30 s session
// timeout) goes on consuming well before a session could time out, with
// the same member. The brokers are its own processes, whatever
// KQ_TEST_BROKERS says.
func TestOrdersPaidAcrossBrokerKills(t *testing.T) {
	brokertest.SingleBroker(t, "it starts its own three kqbroker processes whatever KQ_TEST_BROKERS says, so a second run would repeat the first")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster := startKqCluster(t)
	adm := kadm.NewClient(cluster.client)
	for _, topic := range []struct {
		name       string
		partitions int32
	}{{paymentTopic, 3}, {deadLetters, 1}} {
		if _, err := adm.CreateTopic(ctx, topic.partitions, 3, nil, topic.name); err != nil {
			t.Fatalf("creating %s: %v", topic.name, err)
		}
	}
	cluster.waitWhole(t, ctx)

	s := newStackOn(t, sqliteDatabase, cluster.addrs, "order-mq")
	t.Cleanup(func() {
		if t.Failed() {
			for _, b := range cluster.brokers {
				t.Logf("broker %d's output (%s), the end:\n%s", b.id, b.logPath, tail(b.logPath, 40))
			}
			t.Logf("order-mq's log (%s), the end:\n%s", s.logPath("order-mq"), tail(s.logPath("order-mq"), 60))
		}
	})
	stateBefore, membersBefore := groupMembers(ctx, adm)

	load := &orderLoad{s: s, failures: map[string]int{}}
	loading, stopLoading := context.WithCancel(ctx)
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		load.run(loading)
	}()
	time.Sleep(3 * time.Second) // orders flow before the first kill

	// (1) a leader of the payment topic: another broker than the group's
	// coordinator and the active controller when there is one.
	meta, err := adm.Metadata(ctx, paymentTopic)
	if err != nil {
		t.Fatal(err)
	}
	coordinator := groupCoordinator(t, ctx, adm)
	ledBy := map[int32][]int32{}
	for _, p := range meta.Topics[paymentTopic].Partitions {
		ledBy[p.Leader] = append(ledBy[p.Leader], p.Partition)
	}
	var victim int32 = -1
	for _, prefer := range []func(int32) bool{
		func(b int32) bool { return b != coordinator && b != meta.Controller },
		func(b int32) bool { return b != coordinator },
		func(int32) bool { return true },
	} {
		for leader := range ledBy {
			if leader >= 0 && prefer(leader) && (victim < 0 || leader < victim) {
				victim = leader
			}
		}
		if victim >= 0 {
			break
		}
	}
	if victim < 0 {
		t.Fatalf("the payment topic has no leaders: %v", ledBy)
	}
	slices.Sort(ledBy[victim])
	t.Logf("kill 1: broker %d, leader of %s partitions %v (controller %d, group coordinator %d)", victim, paymentTopic, ledBy[victim], meta.Controller, coordinator)
	kill1 := cluster.killAndRestart(t, ctx, victim)

	// (2) the group's coordinator.
	coordinator = groupCoordinator(t, ctx, adm)
	t.Logf("kill 2: broker %d, coordinator of %s", coordinator, paymentGroup)
	kill2 := cluster.killAndRestart(t, ctx, coordinator)

	time.Sleep(3 * time.Second) // orders flow after the last kill
	stopLoading()
	<-loaded
	orders := load.all()
	if load.err != nil {
		t.Fatalf("after %d orders: %v", len(orders), load.err)
	}

	// Every order whose callback returned 200 is paid, within 60 s of the
	// last kill.
	paidAt := map[string]time.Time{}
	deadline := kill2.Add(60 * time.Second)
	for _, o := range orders {
		for {
			state, updated, err := s.tryOrder(o.orderNo)
			if err == nil && state == "paid" {
				paidAt[o.orderNo] = time.UnixMilli(updated)
				break
			}
			if err == nil && state != "wait-pay" {
				t.Fatalf("order %s is %s, not paid", o.orderNo, state)
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s (callback at %v after kill 1) is %s %v, %v after the last kill", o.orderNo, o.called.Sub(kill1).Round(time.Millisecond), state, err, time.Since(kill2).Round(time.Second))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Each order changed once: one callback said changed, and one event
	// was applied to it.
	applied, skipped := appliedPayments(t, s.logPath("order-mq"))
	for _, o := range orders {
		if o.changes > 1 || (o.changes == 0 && o.callbackFailures == 0) {
			t.Errorf("order %s: %d callbacks of %d said changed", o.orderNo, o.changes, o.callbacks)
		}
		if n := applied[o.orderNo]; n != 1 {
			t.Errorf("order %s: its payment was applied %d times (order-mq's log)", o.orderNo, n)
		}
	}
	done := dedupDone(t, ctx, s)
	if done != len(orders) {
		t.Errorf("%d events recorded done in Redis for %d orders", done, len(orders))
	}
	pushed := endOffsets(t, ctx, adm, paymentTopic)
	dead := endOffsets(t, ctx, adm, deadLetters)
	if dead != 0 {
		t.Errorf("%d records in %s", dead, deadLetters)
	}
	partitionOf, pushedAt := eventPartitions(t, ctx, cluster, pushed)

	// The group went on: the longest pause between orders becoming paid,
	// from each kill to the first order called after it being paid (after
	// kill 1, on the partitions the killed broker led), and the longest
	// wait of an order.
	var times []time.Time
	var longestWait time.Duration
	var longest *paidOrder
	var longestRelay, longestConsume time.Duration // callback to push, push to paid
	for _, o := range orders {
		times = append(times, paidAt[o.orderNo])
		if wait := paidAt[o.orderNo].Sub(o.called); wait > longestWait {
			longestWait, longest = wait, o
		}
		longestRelay = max(longestRelay, pushedAt[o.orderNo].Sub(o.called))
		longestConsume = max(longestConsume, paidAt[o.orderNo].Sub(pushedAt[o.orderNo]))
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	var gapEnd time.Time
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d > gap {
			gap, gapEnd = d, times[i]
		}
	}
	firstPaidAfter := func(kill time.Time, partitions []int32) time.Duration {
		first := time.Time{}
		for _, o := range orders {
			on := partitions == nil || slices.Contains(partitions, partitionOf[o.orderNo])
			if on && o.called.After(kill) && (first.IsZero() || paidAt[o.orderNo].Before(first)) {
				first = paidAt[o.orderNo]
			}
		}
		if first.IsZero() {
			t.Errorf("no order called after the kill at %v", kill)
		}
		return first.Sub(kill)
	}
	resumed1, resumed1Led, resumed2 := firstPaidAfter(kill1, nil), firstPaidAfter(kill1, ledBy[victim]), firstPaidAfter(kill2, nil)
	stateAfter, membersAfter := groupMembers(ctx, adm)
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	t.Logf("%d orders, all paid, each by one applied event (%d redeliveries skipped by dedup; %d records in the payment topic: %d pushed more than once); %d records dead-lettered",
		len(orders), skipped, pushed, pushed-int64(len(orders)), dead)
	t.Logf("kill 1 (leader of partitions %v): the first order called after it paid %v after it, the first on those partitions %v; kill 2 (coordinator): %v",
		ledBy[victim], ms(resumed1), ms(resumed1Led), ms(resumed2))
	t.Logf("longest pause between paid orders %v (ending %v after kill 1, %v after kill 2); longest wait of an order %v (%s, partition %d, called %v after kill 1 and %v after kill 2: %v to its push, %v from the push to paid)",
		ms(gap), ms(gapEnd.Sub(kill1)), ms(gapEnd.Sub(kill2)), ms(longestWait), longest.orderNo, partitionOf[longest.orderNo], ms(longest.called.Sub(kill1)), ms(longest.called.Sub(kill2)),
		ms(pushedAt[longest.orderNo].Sub(longest.called)), ms(paidAt[longest.orderNo].Sub(pushedAt[longest.orderNo])))
	t.Logf("longest from a callback to its event's push (the outbox relay) %v, from a push to paid (order-mq) %v", ms(longestRelay), ms(longestConsume))
	t.Logf("requests that failed and were retried: %v; group %s with members %v before, %s with %v after", load.failures, stateBefore, membersBefore, stateAfter, membersAfter)
	for what, took := range map[string]time.Duration{
		"the longest pause between paid orders": gap, "kill 1 to the first order paid after it on the killed leader's partitions": resumed1Led,
		"kill 2 to the first order paid after it": resumed2, "the longest wait of an order": longestWait,
	} {
		if took > 20*time.Second {
			t.Errorf("%s is %v: near kafka-go's 30 s session timeout", what, ms(took))
		}
	}
	if !slices.Equal(membersBefore, membersAfter) || stateAfter != "Stable" {
		t.Errorf("order-mq's group member was %v, is %s %v after the kills: it joined again as a new member", membersBefore, stateAfter, membersAfter)
	}
}

// eventPartitions reads the payment topic's n records and returns the
// partition each order's event went to, and when it was pushed (the
// record's timestamp, set by the relay's writer).
func eventPartitions(t *testing.T, ctx context.Context, c *kqCluster, n int64) (map[string]int32, map[string]time.Time) {
	t.Helper()
	consumer, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumeTopics(paymentTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	partitionOf, pushedAt := map[string]int32{}, map[string]time.Time{}
	for read := int64(0); read < n; {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of the payment topic's %d records: %v", read, n, ctx.Err())
		}
		fetches.EachRecord(func(r *kgo.Record) {
			read++
			partitionOf[string(r.Key)] = r.Partition
			if first, ok := pushedAt[string(r.Key)]; !ok || r.Timestamp.Before(first) {
				pushedAt[string(r.Key)] = r.Timestamp
			}
		})
	}
	return partitionOf, pushedAt
}

// paidOrder is an order of the load and what its requests answered.
type paidOrder struct {
	orderNo, paymentNo string
	called             time.Time // the first callback "paid"
	callbacks          int       // callbacks sent until one returned 200
	callbackFailures   int
	changes            int // callbacks that said changed
}

// orderLoad creates an order, its payment and the "paid" callback every
// 75 ms; a request that fails is retried (as a client and the payment
// provider would), and counted.
type orderLoad struct {
	s        *stack
	mu       sync.Mutex
	orders   []*paidOrder
	failures map[string]int
	err      error // a request that never succeeded
}

func (l *orderLoad) run(ctx context.Context) {
	for ctx.Err() == nil {
		o := &paidOrder{}
		var order struct {
			OrderNo string `json:"order_no"`
		}
		var payment struct {
			PaymentNo string `json:"payment_no"`
		}
		err := l.retry("create order", func() error {
			return l.s.try("POST", l.s.orderURL+"/orders", map[string]any{"user_id": 8, "amount": 1999}, &order)
		})
		if err == nil {
			err = l.retry("create payment", func() error {
				return l.s.try("POST", l.s.payURL+"/payments", map[string]any{"order_no": order.OrderNo, "amount": 1999}, &payment)
			})
		}
		if err == nil {
			o.orderNo, o.paymentNo, o.called = order.OrderNo, payment.PaymentNo, time.Now()
			err = l.retry("callback", func() error {
				var r struct {
					Changed bool `json:"changed"`
				}
				o.callbacks++
				err := l.s.try("POST", l.s.payURL+"/callback", map[string]any{"payment_no": payment.PaymentNo, "status": "paid"}, &r)
				if err != nil {
					o.callbackFailures++
				} else if r.Changed {
					o.changes++
				}
				return err
			})
		}
		l.mu.Lock()
		if err != nil {
			l.err = err
			l.mu.Unlock()
			return
		}
		l.orders = append(l.orders, o)
		l.mu.Unlock()
		time.Sleep(75 * time.Millisecond)
	}
}

// retry tries f every 100 ms for up to 30 s.
func (l *orderLoad) retry(what string, f func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := f()
		if err == nil {
			return nil
		}
		l.mu.Lock()
		l.failures[what]++
		l.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *orderLoad) all() []*paidOrder {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*paidOrder(nil), l.orders...)
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// try is call that returns its failure instead of failing the test.
func (s *stack) try(method, url string, body, out any) error {
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(data))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, msg)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// tryOrder returns an order's state and when it last changed (Unix ms).
func (s *stack) tryOrder(orderNo string) (string, int64, error) {
	var o struct {
		State     string `json:"state"`
		UpdatedAt int64  `json:"updated_at"`
	}
	err := s.try("GET", s.orderURL+"/orders/"+orderNo, nil, &o)
	return o.State, o.UpdatedAt, err
}

// appliedPayments counts, from order-mq's log, the payments applied to
// each order and the events skipped as already applied.
func appliedPayments(t *testing.T, path string) (map[string]int, int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	applied := map[string]int{}
	for _, m := range regexp.MustCompile(`order (ORD[0-9A-F]+) is paid \(payment`).FindAllStringSubmatch(string(data), -1) {
		applied[m[1]]++
	}
	return applied, strings.Count(string(data), "was already applied; skipped")
}

// dedupDone counts the events order-mq recorded as applied in Redis.
func dedupDone(t *testing.T, ctx context.Context, s *stack) int {
	t.Helper()
	done := 0
	keys := s.redis.Scan(ctx, 0, "order-mq:event:*", 1000).Iterator()
	for keys.Next(ctx) {
		if v, err := s.redis.Get(ctx, keys.Val()).Result(); err == nil && v == "done" {
			done++
		}
	}
	if err := keys.Err(); err != nil {
		t.Fatal(err)
	}
	return done
}

// endOffsets sums a topic's end offsets: its records (nothing is deleted).
func endOffsets(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) int64 {
	t.Helper()
	listed, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	var n int64
	listed.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

func groupCoordinator(t *testing.T, ctx context.Context, adm *kadm.Client) int32 {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		groups, err := adm.DescribeGroups(ctx, paymentGroup)
		if err == nil {
			err = groups[paymentGroup].Err
		}
		if err == nil {
			return groups[paymentGroup].Coordinator.NodeID
		}
		if time.Now().After(deadline) {
			t.Fatalf("describing %s: %v", paymentGroup, err)
		}
	}
}

// groupMembers is the group's state and its members' ids.
func groupMembers(ctx context.Context, adm *kadm.Client) (string, []string) {
	groups, err := adm.DescribeGroups(ctx, paymentGroup)
	if err != nil {
		return err.Error(), nil
	}
	g := groups[paymentGroup]
	var ids []string
	for _, m := range g.Members {
		ids = append(ids, m.MemberID)
	}
	return g.State, ids
}

func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// kqCluster is three kqbroker processes, one metadata quorum.
type kqCluster struct {
	brokers []*kqbrokerProcess
	addrs   []string
	client  *kgo.Client
}

// kqbrokerProcess is a kqbroker binary on its config file; its output
// goes to logPath, across restarts.
type kqbrokerProcess struct {
	id                   int32
	bin, config, logPath string
	cmd                  *exec.Cmd
	exited               chan struct{}
}

// startKqCluster builds kqbroker and runs three, with heartbeats every
// 200 ms and fenced after 1.5 s of silence, and waits until Metadata lists
// the three and __consumer_offsets has three in-sync replicas everywhere.
func startKqCluster(t *testing.T) *kqCluster {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kqbroker")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/kqstack/kqstack/broker/cmd/kqbroker").CombinedOutput(); err != nil {
		t.Fatalf("building kqbroker: %v\n%s", err, out)
	}
	const n = 3
	all := testport.Addrs(t, 2*n) // client and controller ports
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, all[n+i]))
	}
	c := &kqCluster{addrs: all[:n]}
	for i := range n {
		b := &kqbrokerProcess{id: int32(i + 1), bin: bin,
			config:  filepath.Join(dir, fmt.Sprintf("kqbroker-%d.yaml", i+1)),
			logPath: filepath.Join(dir, fmt.Sprintf("kqbroker-%d.log", i+1))}
		text := fmt.Sprintf("node_id: %d\nlisten: %s\ncontroller_listen: %s\ncontroller_quorum_voters: %s\ndata_dir: %s\nadmin_listen: \"\"\n"+
			"broker_heartbeat_interval_ms: 200\nbroker_session_timeout_ms: 1500\nreplica_lag_time_max_ms: 2000\ngroup_initial_rebalance_delay_ms: 0\n",
			i+1, all[i], all[n+i], strings.Join(voters, ","), filepath.Join(dir, fmt.Sprintf("data-%d", i+1)))
		if err := os.WriteFile(b.config, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c.brokers = append(c.brokers, b)
		t.Cleanup(b.kill)
	}
	// All at once: each waits for a majority of the quorum.
	errs := make(chan error, n)
	for _, b := range c.brokers {
		go func() { errs <- b.start() }()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	c.client = client
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c.waitWhole(t, ctx)
	return c
}

// waitWhole waits until Metadata lists the three brokers and every
// partition of __consumer_offsets (50) and of the topics created has three
// in-sync replicas and a leader.
func (c *kqCluster) waitWhole(t *testing.T, ctx context.Context) {
	t.Helper()
	adm := kadm.NewClient(c.client)
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if last = c.whole(ctx, adm); last == "" {
			return
		}
	}
	t.Fatalf("the cluster is not whole after 60 s: %s", last)
}

// killAndRestart kills broker id with SIGKILL, restarts it 5 s later on
// its data directory and waits until the cluster is whole again. It
// returns when the broker was killed.
func (c *kqCluster) killAndRestart(t *testing.T, ctx context.Context, id int32) time.Time {
	t.Helper()
	b := c.brokers[id-1]
	killed := time.Now()
	b.kill()
	time.Sleep(5 * time.Second)
	if err := b.start(); err != nil {
		t.Fatal(err)
	}
	c.waitWhole(t, ctx)
	t.Logf("broker %d killed, restarted after 5 s, every ISR whole %v after the kill", id, time.Since(killed).Round(time.Millisecond))
	return killed
}

func (c *kqCluster) whole(ctx context.Context, adm *kadm.Client) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	meta, err := adm.Metadata(ctx)
	if err != nil {
		return err.Error()
	}
	if len(meta.Brokers) != len(c.brokers) {
		return fmt.Sprintf("%d brokers", len(meta.Brokers))
	}
	offsets := meta.Topics["__consumer_offsets"]
	if len(offsets.Partitions) != 50 {
		return fmt.Sprintf("__consumer_offsets has %d partitions", len(offsets.Partitions))
	}
	for _, topic := range meta.Topics {
		for _, p := range topic.Partitions {
			if p.Leader < 0 || len(p.ISR) != len(c.brokers) {
				return fmt.Sprintf("%s/%d: leader %d, ISR %v", p.Topic, p.Partition, p.Leader, p.ISR)
			}
		}
	}
	return ""
}

// start runs the broker and waits for its "kqbroker ready" line.
func (b *kqbrokerProcess) start() error {
	out, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.bin, "-config", b.config)
	cmd.Stdout = out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		out.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	exited, ready := make(chan struct{}), make(chan struct{})
	b.cmd, b.exited = cmd, exited
	go func() {
		defer close(exited)
		defer out.Close()
		signal := ready
		lines := bufio.NewReader(stderr)
		for {
			line, err := lines.ReadString('\n')
			_, _ = out.WriteString(line)
			if strings.Contains(line, "kqbroker ready") && signal != nil {
				close(signal)
				signal = nil
			}
			if err != nil {
				break
			}
		}
		_ = cmd.Wait()
	}()
	select {
	case <-ready:
		return nil
	case <-exited:
		return fmt.Errorf("kqbroker %d exited before it was ready; its output: %s", b.id, b.logPath)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("kqbroker %d not ready in 30 s; its output: %s", b.id, b.logPath)
	}
}

// kill is kill -9, and waits for the exit; it does nothing to a broker
// that is not running.
func (b *kqbrokerProcess) kill() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.exited
}
