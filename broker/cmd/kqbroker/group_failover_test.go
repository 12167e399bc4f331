package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The group failover tests: a consumer group of one client library
// consumes a topic of three partitions (three replicas) from three
// kqbroker processes while its coordinator, the leader of the group's
// partition of __consumer_offsets, is killed with SIGKILL and restarted a
// few seconds later. The clients are told nothing: they find the new
// coordinator (which loaded the group's offsets from the replicated log)
// and go on from the committed offsets. Every value is processed at least
// once, re-reads start at the committed offsets (never below an offset
// the coordinator had reported committed before the kill, never from the
// start), and in the end the committed offsets are the end offsets.

const (
	// groupValues are produced once the group is stable; more are
	// produced while the coordinator is down and restarted.
	groupValues = 3000
	// groupProcessDelay is each record's "processing": the group takes
	// seconds to get through the values, so the kill comes while most of
	// them are still to be processed.
	groupProcessDelay = 2 * time.Millisecond
	// saramaCommitInterval is sarama's autocommit cadence here.
	saramaCommitInterval = time.Second
	// kcatCommitInterval is librdkafka's auto.commit.interval.ms default:
	// kcat's -X sets the topic-level property of that name (deprecated,
	// not the consumer's), so kcat commits at the default.
	kcatCommitInterval = 5 * time.Second
	// franzPollRecords: franz-go members commit, synchronously, after
	// each poll of at most this many records.
	franzPollRecords = 100
)

// groupRun is one client's run: its processing, the committed offsets
// seen, and the clients' logs (shown when the test fails).
type groupRun struct {
	t            *testing.T
	ctx          context.Context
	addrs        []string
	topic, group string
	logs         *lockedBuffer

	mu     sync.Mutex
	counts map[string]int
	events []processed
}

type processed struct {
	value string
	at    time.Time
}

// process is a member's handling of one record's value: it takes
// groupProcessDelay and records the value.
func (r *groupRun) process(value string) {
	time.Sleep(groupProcessDelay)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counts[value]++
	r.events = append(r.events, processed{value, time.Now()})
}

func (r *groupRun) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.counts)
}

func (r *groupRun) logf(format string, args ...any) {
	r.logs.WriteString(time.Now().Format("15:04:05.000000 ") + fmt.Sprintf(format, args...) + "\n")
}

// logWriter writes a client library's log into a lockedBuffer.
type logWriter struct{ b *lockedBuffer }

func (w logWriter) Write(p []byte) (int, error) { w.b.WriteString(string(p)); return len(p), nil }

// groupClient starts a client's members in r and returns how to stop
// them (each leaves the group, committing what it processed).
type groupClient struct {
	name    string
	members int
	start   func(r *groupRun) (stop func())
	// uncommitted bounds, from the client's commit cadence, the records
	// it can have processed and not committed when the coordinator is
	// killed: the duplicates a failover may cost. A coordinator that
	// takes the group over as Kafka's does (members, generation and
	// offsets loaded from the log) costs fewer: the members' commits go
	// on being accepted by the new coordinator.
	uncommitted int
}

// commitSlack is the time a timed commit takes to be sent and answered,
// and its timer to fire late.
const commitSlack = 250 * time.Millisecond

// perInterval is the most one goroutine processes between two commits
// every interval.
func perInterval(interval time.Duration) int {
	return int((interval + commitSlack) / groupProcessDelay)
}

// TestFranzGoGroupFailsOver: two franz-go members, cooperative-sticky,
// committing synchronously after processing each poll.
func TestFranzGoGroupFailsOver(t *testing.T) {
	// Each member processes one poll (at most franzPollRecords) and
	// commits it synchronously before it polls again.
	runGroupFailover(t, groupClient{name: "franz-go", members: 2, start: startFranzMembers, uncommitted: 2 * franzPollRecords})
}

// TestSaramaGroupFailsOver: two sarama ConsumerGroup members, marking
// each message after processing it, autocommit every second.
func TestSaramaGroupFailsOver(t *testing.T) {
	// A goroutine per claimed partition (3), each processing at most
	// perInterval records between two commits.
	runGroupFailover(t, groupClient{name: "sarama", members: 2, start: startSaramaMembers, uncommitted: 3 * perInterval(saramaCommitInterval)})
}

// TestKcatGroupFailsOver: `kcat -G` (librdkafka's balanced consumer, one
// member, autocommit every kcatCommitInterval), its output read line
// by line.
func TestKcatGroupFailsOver(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat is not installed (apt-get install kcat; .ci/run installs it)")
	}
	// One thread, which consumes no faster than its lines are processed
	// once its output pipe is full: perInterval records between two
	// commits. (librdkafka commits what it handed to kcat, so the lines
	// still in the pipe are committed and not yet processed: they are not
	// read twice.)
	runGroupFailover(t, groupClient{name: "kcat", members: 1, start: startKcatMember, uncommitted: perInterval(kcatCommitInterval)})
}

func runGroupFailover(t *testing.T, client groupClient) {
	began := time.Now()
	bin := buildBroker(t)
	brokers, addrs, configs := startClusterProcesses(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := kadm.NewClient(mustClient(t, addrs...))
	waitWholeISRs(t, ctx, admin, "__consumer_offsets", 3)
	r := &groupRun{t: t, ctx: ctx, addrs: addrs, topic: "orders", group: client.name + "-group", logs: &lockedBuffer{}, counts: map[string]int{}}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("KQ_GROUP_LOGS") != "" {
			t.Logf("the clients' log (last 3000 lines; KQ_GROUP_LOGS=1 shows it when the test passes too):\n%s", lastLines(r.logs.String(), 3000))
			for i, b := range brokers {
				t.Logf("broker %d's log (last 60 lines):\n%s", i+1, lastLines(b.output.String(), 60))
			}
		}
	})
	if _, err := admin.CreateTopic(ctx, 3, 3, nil, r.topic); err != nil {
		t.Fatal(err)
	}
	waitWholeISRs(t, ctx, admin, r.topic, 3)

	// The group is stable, every partition assigned, before anything is
	// produced: no re-read of the first rebalances counts as the failover's.
	stop := client.start(r)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	waitGroupStable(t, ctx, admin, r.group, r.topic, client.members)

	producer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.MetadataMinAge(50*time.Millisecond), kgo.WithLogger(kgo.BasicLogger(logWriter{r.logs}, kgo.LogLevelWarn, func() string { return "producer " })))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	var (
		ackMu   sync.Mutex
		acked   = map[string]bool{}
		failed  int
		next    int // the index of the next value produced
		ackedFn = func(rec *kgo.Record, err error) {
			ackMu.Lock()
			defer ackMu.Unlock()
			if err != nil {
				failed++
				return
			}
			acked[string(rec.Value)] = true
		}
	)
	for ; next < groupValues; next++ {
		producer.Produce(ctx, &kgo.Record{Topic: r.topic, Value: []byte(groupValue(next))}, ackedFn)
	}
	if err := producer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.logf("test: %d values produced", groupValues)

	// The committed offsets, as the coordinator answers them, every 100 ms.
	watch := watchCommits(t, ctx, addrs, r.group, r.topic)

	// A third of the values processed and a commit seen: kill the
	// coordinator.
	for r.distinct() < groupValues/3 || len(watch.last()) == 0 {
		if ctx.Err() != nil {
			t.Fatalf("the group processed %d values, committed %v", r.distinct(), watch.last())
		}
		time.Sleep(10 * time.Millisecond)
	}
	found := admin.FindGroupCoordinators(ctx, r.group)[r.group]
	if found.Err != nil {
		t.Fatalf("FindCoordinator: %v", found.Err)
	}
	victim := found.NodeID
	processedAtKill := r.distinct()
	committedAtKill := watch.last()
	killed := time.Now()
	r.logf("test: killing broker %d, the coordinator; %d processed, committed %v", victim, processedAtKill, committedAtKill)
	brokers[victim-1].kill()
	// Values go on being produced while the coordinator is down, and after
	// its restart: those from index next on.
	producing, stopProducing := context.WithCancel(ctx)
	producerDone := make(chan struct{})
	go func(i int) {
		defer close(producerDone)
		for ; producing.Err() == nil; i++ {
			producer.Produce(ctx, &kgo.Record{Topic: r.topic, Value: []byte(groupValue(i))}, ackedFn)
			time.Sleep(4 * time.Millisecond)
		}
	}(next)
	t.Logf("%s: killed broker %d, the group's coordinator, %v after the start; %d of %d values processed, committed %v",
		client.name, victim, killed.Sub(began).Round(time.Millisecond), processedAtKill, groupValues, committedAtKill)
	time.Sleep(4 * time.Second)
	brokers[victim-1] = startProcess(t, bin, "-config", configs[victim-1])
	r.logf("test: restarted broker %d", victim)
	time.Sleep(2 * time.Second)
	stopProducing()
	<-producerDone
	if err := producer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ackMu.Lock()
	producedAfterKill := map[string]bool{}
	for v := range acked {
		if groupValueIndex(v) >= next {
			producedAfterKill[v] = true
		}
	}
	t.Logf("%s: acknowledged %d values (%d of them after the kill), %d failed",
		client.name, len(acked), len(producedAfterKill), failed)
	ackMu.Unlock()

	// The topic, read from the start: every value with its offset.
	ends, err := admin.ListEndOffsets(ctx, r.topic)
	if err != nil {
		t.Fatal(err)
	}
	where := readTopic(t, ctx, addrs, r.topic, ends)
	for v := range acked {
		if _, ok := where[v]; !ok {
			t.Errorf("the acknowledged value %s is not in the topic", v)
		}
	}

	// Every value in the topic is processed, within 60 s of the kill.
	for {
		missing := 0
		r.mu.Lock()
		for v := range where {
			if r.counts[v] == 0 {
				missing++
			}
		}
		r.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Since(killed) > 60*time.Second || ctx.Err() != nil {
			t.Fatalf("%s: 60 s after the kill the group has not processed %d of the topic's %d values; committed %v, end offsets %v",
				client.name, missing, len(where), watch.last(), endsOf(ends))
		}
		time.Sleep(50 * time.Millisecond)
	}
	allProcessed := time.Now()
	// The committed offsets reach the end offsets, as the members commit.
	for !equalOffsets(watch.last(), endsOf(ends)) {
		if time.Since(allProcessed) > 15*time.Second {
			t.Fatalf("%s: every value processed, but 15 s later committed %v, end offsets %v", client.name, watch.last(), endsOf(ends))
		}
		time.Sleep(50 * time.Millisecond)
	}
	watch.stop()
	stop()
	stopped = true
	fetched, err := admin.FetchOffsets(ctx, r.group)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range endsOf(ends) {
		if o, ok := fetched.Lookup(r.topic, p); !ok || o.Err != nil || o.At != end {
			t.Errorf("%s: after the members left, partition %d's committed offset is %+v, its end offset %d", client.name, p, o, end)
		}
	}

	// Duplicates: each is a re-read from the committed offsets. None is
	// below the offset the coordinator reported committed before the kill
	// (that would be an acknowledged commit lost, or a re-read from the
	// start); and there are no more than the client's commit cadence lets
	// it have processed and not committed at the kill
	// (groupClient.uncommitted).
	r.mu.Lock()
	events := append([]processed(nil), r.events...)
	counts := r.counts
	r.mu.Unlock()
	duplicates, belowCommitted := 0, 0
	var belowExamples []string
	for v, n := range counts {
		if n < 2 {
			continue
		}
		duplicates += n - 1
		at := where[v]
		if at.offset < committedAtKill[at.partition] {
			belowCommitted += n - 1
			if len(belowExamples) < 5 {
				belowExamples = append(belowExamples, fmt.Sprintf("%s (partition %d offset %d, committed %d) %d times", v, at.partition, at.offset, committedAtKill[at.partition], n))
			}
		}
	}
	// When the group resumed: the first record processed after the kill
	// (it may have been fetched before), the first of the values produced
	// after the kill, and the first re-read (the group going on from the
	// committed offsets); when the new coordinator first answered
	// OffsetFetch, and first with a commit it accepted.
	var firstAfter, firstNew, firstReread time.Duration = -1, -1, -1
	seen, firstSeen := map[string]bool{}, map[string]time.Time{}
	for _, e := range events {
		if !seen[e.value] {
			firstSeen[e.value] = e.at
		}
		if e.at.After(killed) {
			if firstAfter < 0 {
				firstAfter = e.at.Sub(killed)
			}
			if firstNew < 0 && producedAfterKill[e.value] {
				firstNew = e.at.Sub(killed)
			}
			if firstReread < 0 && seen[e.value] {
				firstReread = e.at.Sub(killed)
			}
		}
		seen[e.value] = true
	}
	answered, accepted, regressions := watch.after(killed)
	// What the group had processed and not committed when the
	// coordinator was killed (as far as the committed offsets seen last
	// tell).
	uncommittedAtKill := 0
	for v := range seen {
		if at := where[v]; at.offset >= committedAtKill[at.partition] && firstSeen[v].Before(killed) {
			uncommittedAtKill++
		}
	}
	t.Logf("%s: after the kill: first record processed %s, first value produced after the kill processed %s, first re-read %s; the new coordinator answered OffsetFetch %s, accepted a commit %s",
		client.name, ms(firstAfter), ms(firstNew), ms(firstReread), ms(answered), ms(accepted))
	t.Logf("%s: %d values processed %d times: %d duplicates (%d processed and not committed at the kill; bound %d), %d below the offsets committed before the kill; all processed %v after the kill; run %v",
		client.name, len(counts), len(events), duplicates, uncommittedAtKill, client.uncommitted, belowCommitted, allProcessed.Sub(killed).Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	if len(regressions) > 0 {
		t.Errorf("%s: the committed offsets went backwards: %v", client.name, regressions)
	}
	if belowCommitted > 0 {
		t.Errorf("%s: %d re-reads below the offsets the coordinator had reported committed before the kill (%v), e.g. %v",
			client.name, belowCommitted, committedAtKill, belowExamples)
	}
	if duplicates > client.uncommitted {
		t.Errorf("%s: %d duplicates, more than the %d records its commit cadence lets it have processed and not committed at the kill (%d were): the group re-read records it processed after the kill, whose commits the new coordinator refused",
			client.name, duplicates, client.uncommitted, uncommittedAtKill)
	}
}

func groupValue(i int) string { return fmt.Sprintf("v%07d-%s", i, strings.Repeat("x", 54)) }

func groupValueIndex(v string) int {
	i, err := strconv.Atoi(v[1:8])
	if err != nil {
		return -1
	}
	return i
}

// waitGroupStable waits until group is Stable with members members and
// every partition of topic assigned.
func waitGroupStable(t *testing.T, ctx context.Context, admin *kadm.Client, group, topic string, members int) {
	t.Helper()
	var last string
	for ctx.Err() == nil {
		described, err := admin.DescribeGroups(ctx, group)
		if err == nil {
			d := described[group]
			assigned := d.AssignedPartitions()[topic]
			if d.Err == nil && d.State == "Stable" && len(d.Members) == members && len(assigned) == 3 {
				return
			}
			last = fmt.Sprintf("%s, %d members, assigned %v, %v", d.State, len(d.Members), assigned, d.Err)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("group %s not stable with %d members: %s", group, members, last)
}

type valueAt struct {
	partition int32
	offset    int64
}

// readTopic reads topic from the start to ends: where each value is.
func readTopic(t *testing.T, ctx context.Context, addrs []string, topic string, ends kadm.ListedOffsets) map[string]valueAt {
	t.Helper()
	total := 0
	ends.Each(func(o kadm.ListedOffset) { total += int(o.Offset) })
	consumer := mustClient(t, addrs...)
	starts := map[int32]kgo.Offset{}
	for p := range endsOf(ends) {
		starts[p] = kgo.NewOffset().AtStart()
	}
	consumer.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: starts})
	where := map[string]valueAt{}
	for read := 0; read < total && ctx.Err() == nil; {
		consumer.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			where[string(r.Value)] = valueAt{r.Partition, r.Offset}
			read++
		})
	}
	if len(where) != total {
		t.Fatalf("read %d distinct values of the %d records in %s", len(where), total, topic)
	}
	return where
}

func endsOf(ends kadm.ListedOffsets) map[int32]int64 {
	m := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { m[o.Partition] = o.Offset })
	return m
}

func equalOffsets(a, b map[int32]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range b {
		if a[p] != o {
			return false
		}
	}
	return true
}

// commitWatch polls the group's committed offsets.
type commitWatch struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu           sync.Mutex
	observations []observation
}

type observation struct {
	at      time.Time
	offsets map[int32]int64
}

func watchCommits(t *testing.T, ctx context.Context, addrs []string, group, topic string) *commitWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &commitWatch{cancel: cancel, done: make(chan struct{})}
	admin := kadm.NewClient(mustClient(t, addrs...))
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			call, cancelCall := context.WithTimeout(ctx, time.Second)
			fetched, err := admin.FetchOffsetsForTopics(call, group, topic)
			cancelCall()
			if err == nil {
				offsets := map[int32]int64{}
				fetched.Each(func(o kadm.OffsetResponse) {
					if o.Err == nil && o.Topic == topic && o.At >= 0 {
						offsets[o.Partition] = o.At
					}
				})
				w.mu.Lock()
				w.observations = append(w.observations, observation{time.Now(), offsets})
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *commitWatch) stop() {
	w.cancel()
	<-w.done
}

// last is the latest committed offsets seen.
func (w *commitWatch) last() map[int32]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[int32]int64{}
	if n := len(w.observations); n > 0 {
		for p, o := range w.observations[n-1].offsets {
			m[p] = o
		}
	}
	return m
}

// after is how long after killed the new coordinator first answered
// with the committed offsets (those it loaded) and first with a commit
// it accepted (-1: never), and every time an offset went backwards.
func (w *commitWatch) after(killed time.Time) (answered, accepted time.Duration, regressions []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	answered, accepted = -1, -1
	var loaded map[int32]int64
	high := map[int32]int64{}
	for _, o := range w.observations {
		partitions := make([]int32, 0, len(high))
		for p := range high {
			partitions = append(partitions, p)
		}
		sort.Slice(partitions, func(i, j int) bool { return partitions[i] < partitions[j] })
		for _, p := range partitions {
			if now, ok := o.offsets[p]; !ok || now < high[p] {
				regressions = append(regressions, fmt.Sprintf("partition %d from %d to %v (-1: none) %v after the kill", p, high[p], orNone(now, ok), o.at.Sub(killed).Round(time.Millisecond)))
			}
		}
		for p, off := range o.offsets {
			high[p] = max(high[p], off)
		}
		if !o.at.After(killed) {
			continue
		}
		if loaded == nil {
			loaded, answered = o.offsets, o.at.Sub(killed)
			continue
		}
		for p, off := range o.offsets {
			if accepted < 0 && off > loaded[p] {
				accepted = o.at.Sub(killed)
			}
		}
	}
	return answered, accepted, regressions
}

// ms is d in milliseconds, "never" when negative.
func ms(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

func orNone(o int64, ok bool) int64 {
	if !ok {
		return -1
	}
	return o
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startFranzMembers: two kgo clients in the group, cooperative-sticky,
// autocommit off. Each polls at most franzPollRecords, processes them,
// commits them (CommitRecords, synchronous) and only then lets a
// rebalance in (BlockRebalanceOnPoll, as franz-go advises for manual
// commits); what it processed is committed when it gives partitions up.
func startFranzMembers(r *groupRun) func() {
	var members []*kgo.Client
	var loops sync.WaitGroup
	for i := range 2 {
		name := fmt.Sprintf("franz-%d ", i+1)
		member, err := kgo.NewClient(kgo.SeedBrokers(r.addrs...), kgo.ClientID(strings.TrimSpace(name)),
			kgo.ConsumerGroup(r.group), kgo.ConsumeTopics(r.topic), kgo.Balancers(kgo.CooperativeStickyBalancer()),
			kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
				if err := cl.CommitUncommittedOffsets(ctx); err != nil {
					r.logf("%scommit on revoking %v: %v", name, revoked, err)
				}
			}),
			kgo.MetadataMinAge(250*time.Millisecond),
			kgo.WithLogger(kgo.BasicLogger(logWriter{r.logs}, kgo.LogLevelInfo, func() string { return time.Now().Format("15:04:05.000000 ") + name })))
		if err != nil {
			r.t.Fatal(err)
		}
		members = append(members, member)
		loops.Add(1)
		go func() {
			defer loops.Done()
			for {
				fetches := member.PollRecords(r.ctx, franzPollRecords)
				if fetches.IsClientClosed() || r.ctx.Err() != nil {
					member.AllowRebalance()
					return
				}
				fetches.EachError(func(topic string, p int32, err error) { r.logf("%sfetch %s-%d: %v", name, topic, p, err) })
				records := fetches.Records()
				for _, rec := range records {
					r.process(string(rec.Value))
				}
				if len(records) > 0 {
					if err := member.CommitRecords(r.ctx, records...); err != nil {
						r.logf("%scommit of %d records: %v", name, len(records), err)
					}
				}
				member.AllowRebalance()
			}
		}()
	}
	return func() {
		for _, m := range members {
			m.Close() // leaves the group, committing in OnPartitionsRevoked
		}
		loops.Wait()
	}
}

// saramaHandler processes a claim's messages, marking each once processed.
type saramaHandler struct{ r *groupRun }

func (saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h saramaHandler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.r.process(string(msg.Value))
			session.MarkMessage(msg, "")
		case <-session.Context().Done():
			return nil
		}
	}
}

// startSaramaMembers: two sarama ConsumerGroups (the newest protocol
// version this sarama knows), offsets marked after processing and
// committed every saramaCommitInterval.
func startSaramaMembers(r *groupRun) func() {
	previous := sarama.Logger
	sarama.Logger = log.New(logWriter{r.logs}, "sarama ", log.Ltime|log.Lmicroseconds)
	ctx, cancel := context.WithCancel(r.ctx)
	var members []sarama.ConsumerGroup
	var loops sync.WaitGroup
	for i := range 2 {
		cfg := sarama.NewConfig()
		cfg.Version = sarama.MaxVersion
		cfg.ClientID = fmt.Sprintf("sarama-%d", i+1)
		cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
		cfg.Consumer.Offsets.AutoCommit.Enable = true
		cfg.Consumer.Offsets.AutoCommit.Interval = saramaCommitInterval
		cfg.Consumer.Return.Errors = true
		cfg.Metadata.Retry.Backoff = 250 * time.Millisecond
		member, err := sarama.NewConsumerGroup(r.addrs, r.group, cfg)
		if err != nil {
			r.t.Fatal(err)
		}
		members = append(members, member)
		loops.Add(2)
		go func() {
			defer loops.Done()
			for err := range member.Errors() {
				r.logf("sarama-%d error: %v", i+1, err)
			}
		}()
		go func() {
			defer loops.Done()
			for ctx.Err() == nil {
				if err := member.Consume(ctx, []string{r.topic}, saramaHandler{r}); err != nil {
					r.logf("sarama-%d Consume: %v", i+1, err)
					if errors.Is(err, sarama.ErrClosedConsumerGroup) {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return func() {
		cancel()
		for i, m := range members {
			if err := m.Close(); err != nil { // commits what was marked
				r.logf("sarama-%d Close: %v", i+1, err)
			}
		}
		loops.Wait()
		sarama.Logger = previous
	}
}

// startKcatMember: `kcat -G` from the earliest offsets, one value per
// line, committing every kcatCommitInterval; its lines are processed
// as they come (-u: unbuffered, so none waits in kcat's buffer).
func startKcatMember(r *groupRun) func() {
	cmd := exec.Command("kcat", "-b", strings.Join(r.addrs, ","), "-G", r.group, r.topic, "-u",
		"-X", "auto.offset.reset=earliest",
		"-X", "debug=cgrp", "-f", "%s\n")
	cmd.Stderr = logWriter{r.logs}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			r.process(lines.Text())
		}
	}()
	exited := make(chan error, 1)
	go func() {
		<-read
		exited <- cmd.Wait()
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM) // kcat closes the consumer: commits, leaves the group
			select {
			case err := <-exited:
				if err != nil {
					r.logf("kcat exited: %v", err)
				}
			case <-time.After(15 * time.Second):
				r.logf("kcat did not exit within 15 s of SIGTERM")
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	r.t.Cleanup(stop)
	return stop
}
