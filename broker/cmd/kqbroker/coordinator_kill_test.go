package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/internal/groupwait"
)

// handlings records when each value was handled by a kq group, every
// time it was.
type handlings struct {
	mu    sync.Mutex
	times map[string][]time.Time
	all   []time.Time
}

func (h *handlings) Consume(_ context.Context, _, value string) error {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.times[value] = append(h.times[value], now)
	h.all = append(h.all, now)
	return nil
}

// resumedAfter is when the group consumed again after the longest pause
// in handling that began after from, and that pause.
func (h *handlings) resumedAfter(from time.Time) (time.Time, time.Duration) {
	h.mu.Lock()
	all := append([]time.Time(nil), h.all...)
	h.mu.Unlock()
	resumed, pause, _ := groupwait.LongestPause(all, from)
	return resumed, pause
}

// TestKqGroupSurvivesItsCoordinatorKilled: three go-queue kq members (kafka-go
// underneath, its default 30 s session timeout) consume a topic of RF 3
// while records keep coming; one member leaves mid-stream, then the
// broker coordinating the group is killed with SIGKILL and restarted.
// Every acknowledged record is handled; the group goes on well before a
// session could time out (the new coordinator loads the group with its
// members and generation); and a record is handled twice only if it was
// handled in the moments around a disruption, before its offset could be
// committed.
func TestKqGroupSurvivesItsCoordinatorKilled(t *testing.T) {
	bin, brokers, addrs, configs, ctx, admin := startCoordinatedCluster(t)
	client := mustClient(t, addrs...) // the producer
	const topic = "kq-coordinated"
	// The hardest case: the coordinator is the controller too, so the
	// quorum elects a new leader and the new controller gives the old one
	// a grace before fencing it, all before the group's partition moves.
	groupID := groupOfTheController(t, ctx, admin)
	if _, err := admin.CreateTopic(ctx, 6, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	waitWholeISRs(t, ctx, admin, topic, 3)

	var ackMu sync.Mutex
	acked := map[string]bool{}
	var ackTimes []time.Time
	producing, stopProducing := context.WithCancel(ctx)
	var produced sync.WaitGroup
	produced.Add(1)
	go func() {
		defer produced.Done()
		for i := 0; producing.Err() == nil; i++ {
			value := fmt.Sprintf("v-%d", i)
			client.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(value), Value: []byte(value)}, func(_ *kgo.Record, err error) {
				if err == nil {
					ackMu.Lock()
					acked[value] = true
					ackTimes = append(ackTimes, time.Now())
					ackMu.Unlock()
				}
			})
			time.Sleep(5 * time.Millisecond) // about 200 records a second
		}
	}()

	handled := &handlings{times: map[string][]time.Time{}}
	const commitInterval = 200 * time.Millisecond
	member := func() service.Service {
		q := kq.MustNewQueue(kq.KqConf{
			ServiceConf: service.ServiceConf{Name: "kq-coordinated", Log: logx.LogConf{Mode: "console", Level: "severe"}},
			Brokers:     addrs, Group: groupID, Topic: topic, Offset: "first",
			Conns: 1, Consumers: 1, Processors: 1, MinBytes: 1, MaxBytes: 10 << 20,
		}, handled, kq.WithMaxWait(200*time.Millisecond), kq.WithCommitInterval(commitInterval))
		go q.Start()
		return q
	}
	members := []service.Service{member(), member(), member()}
	defer func() {
		for _, m := range members {
			m.Stop()
		}
	}()
	described := waitGroupMembers(t, ctx, admin, groupID, 3)
	time.Sleep(2 * time.Second)

	left := time.Now()
	members[2].Stop() // leaves the group
	members = members[:2]
	waitGroupMembers(t, ctx, admin, groupID, 2)
	settled := time.Now() // the two members own the partitions again
	time.Sleep(2 * time.Second)

	described = waitGroupMembers(t, ctx, admin, groupID, 2)
	coordinator := described.Coordinator.NodeID
	killed := time.Now()
	brokers[coordinator-1].kill()
	t.Logf("killed broker %d, the group's coordinator and the controller", coordinator)
	timeline := watchGroup(ctx, addrs, groupID)
	time.Sleep(5 * time.Second)
	brokers[coordinator-1] = startProcess(t, bin, "-config", configs[coordinator-1])
	time.Sleep(5 * time.Second)
	stopProducing()
	produced.Wait()
	if err := client.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	ackMu.Lock()
	defer ackMu.Unlock()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		handled.mu.Lock()
		missing := 0
		for value := range acked {
			if len(handled.times[value]) == 0 {
				missing++
			}
		}
		handled.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged records were never handled", missing, len(acked))
		}
	}
	resumed, pause := handled.resumedAfter(killed)
	took := resumed.Sub(killed)
	// Disruptions and how long a record handled around each may go
	// uncommitted: the commit interval and its round trip before it, and
	// after it until the group has settled (the remaining members learn of
	// a rebalance at their next heartbeat, 3 s apart) and a commit more.
	windows := [][2]time.Time{{left.Add(-time.Second), settled.Add(time.Second)}, {killed.Add(-time.Second), resumed.Add(5 * time.Second)}}
	handled.mu.Lock()
	defer handled.mu.Unlock()
	duplicates, outside := 0, 0
	for value, times := range handled.times {
		if len(times) < 2 {
			continue
		}
		duplicates++
		first := times[0]
		inside := false
		for _, w := range windows {
			inside = inside || (!first.Before(w[0]) && !first.After(w[1]))
		}
		if !inside {
			outside++
			t.Errorf("%s handled %d times, first at %v after the kill: not around a disruption", value, len(times), first.Sub(killed))
		}
	}
	t.Logf("%d records acknowledged, all handled; %d handled more than once; the group consumed again %v after its coordinator's kill -9 (longest pause %v)",
		len(acked), duplicates, took.Round(time.Millisecond), pause.Round(time.Millisecond))
	if took > 20*time.Second {
		_, producePause, _ := groupwait.LongestPause(ackTimes, killed)
		t.Fatalf("the group resumed %v after its coordinator was killed: it waited for sessions to time out (the longest pause in acknowledged produces since the kill: %v); what the cluster answered meanwhile:\n%s",
			took, producePause.Round(time.Millisecond), strings.Join(timeline(), "\n"))
	}
}

// watchGroup asks the cluster every 250 ms, from a client of its own, for
// the group's coordinator and state, until ctx ends; the returned function
// lists each change with the time since the watch began.
func watchGroup(ctx context.Context, addrs []string, groupID string) func() []string {
	var mu sync.Mutex
	var changes []string
	start := time.Now()
	go func() {
		client, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RequestTimeoutOverhead(2*time.Second))
		if err != nil {
			return
		}
		defer client.Close()
		admin := kadm.NewClient(client)
		last := ""
		for ctx.Err() == nil {
			asked, cancel := context.WithTimeout(ctx, 2*time.Second)
			now := fmt.Sprintf("coordinator %v", admin.FindGroupCoordinators(asked, groupID)[groupID])
			if groups, err := admin.DescribeGroups(asked, groupID); err != nil {
				now += fmt.Sprintf(", describe: %v", err)
			} else {
				g := groups[groupID]
				now += fmt.Sprintf(", %s with %d members (%v)", g.State, len(g.Members), g.Err)
			}
			cancel()
			if now != last {
				mu.Lock()
				changes = append(changes, fmt.Sprintf("%8v %s", time.Since(start).Round(10*time.Millisecond), now))
				mu.Unlock()
				last = now
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(changes)
	}
}

// groupOfTheController returns a group id the controller coordinates.
func groupOfTheController(t *testing.T, ctx context.Context, admin *kadm.Client) string {
	t.Helper()
	cluster, err := admin.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		id := fmt.Sprintf("kq-coordinated-group-%d", i)
		found := admin.FindGroupCoordinators(ctx, id)
		if c, ok := found[id]; ok && c.Err == nil && c.NodeID == cluster.Controller {
			return id
		}
	}
	t.Fatalf("no group of 500 is coordinated by the controller, broker %d", cluster.Controller)
	return ""
}

// startCoordinatedCluster starts three kqbroker processes and waits until
// __consumer_offsets is created and fully replicated; ctx ends with the
// test.
func startCoordinatedCluster(t *testing.T) (string, []*brokerProcess, []string, []string, context.Context, *kadm.Client) {
	t.Helper()
	bin := buildBroker(t)
	brokers, addrs, configs := startClusterProcesses(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	admin := kadm.NewClient(mustClient(t, addrs...))
	waitWholeISRs(t, ctx, admin, "__consumer_offsets", 3)
	return bin, brokers, addrs, configs, ctx, admin
}

// waitGroupMembers waits until the group is stable with n members, each
// with partitions assigned, and returns it described.
func waitGroupMembers(t *testing.T, ctx context.Context, admin *kadm.Client, groupID string, n int) kadm.DescribedGroup {
	t.Helper()
	g, err := groupwait.Stable(ctx, admin, groupID, n, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestCommitsSurviveTheirCoordinatorKilled is a checker for offset commits:
// twenty groups coordinated by one broker commit ever higher offsets, each
// as fast as it is answered, while that broker is killed with SIGKILL and
// restarted. Afterwards every group's committed offset of each partition
// is at least the last one acknowledged (nothing acknowledged is lost)
// and at most the last one sent (nothing is made up).
func TestCommitsSurviveTheirCoordinatorKilled(t *testing.T) {
	bin, brokers, addrs, configs, ctx, admin := startCoordinatedCluster(t)
	const topic, partitions = "committed", 4
	if _, err := admin.CreateTopic(ctx, partitions, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	groups, coordinator := groupsOfOneCoordinator(t, ctx, admin, 20)

	type progress struct{ acked, sent int64 }
	var mu sync.Mutex
	state := map[string]*progress{}
	committing, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ackedBeforeKill, ackedAfterKill, failed int
	var killed bool
	for _, g := range groups {
		state[g] = &progress{acked: -1, sent: -1}
	}
	for _, g := range groups {
		mine := state[g]
		committer := kadm.NewClient(mustClient(t, addrs...))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for offset := int64(1); committing.Err() == nil; offset++ {
				offsets := kadm.Offsets{}
				for p := range int32(partitions) {
					offsets.Add(kadm.Offset{Topic: topic, Partition: p, At: offset, LeaderEpoch: -1})
				}
				mu.Lock()
				mine.sent = offset
				mu.Unlock()
				attempt, cancelAttempt := context.WithTimeout(committing, 5*time.Second)
				resps, err := committer.CommitOffsets(attempt, g, offsets)
				cancelAttempt()
				if err == nil {
					err = resps.Error()
				}
				mu.Lock()
				switch {
				case err != nil:
					failed++
				case killed:
					ackedAfterKill++
					mine.acked = offset
				default:
					ackedBeforeKill++
					mine.acked = offset
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(3 * time.Second)
	mu.Lock()
	killed = true
	mu.Unlock()
	brokers[coordinator-1].kill()
	time.Sleep(4 * time.Second)
	brokers[coordinator-1] = startProcess(t, bin, "-config", configs[coordinator-1])
	time.Sleep(3 * time.Second)
	stop()
	wg.Wait()

	lost, madeUp := 0, 0
	reader := kadm.NewClient(mustClient(t, addrs...)) // no connection to the killed broker
	for _, g := range groups {
		var fetched kadm.OffsetResponses
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if fetched, err = reader.FetchOffsets(ctx, g); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatalf("fetching %s's offsets: %v", g, err)
		}
		for p := range int32(partitions) {
			o, ok := fetched.Lookup(topic, p)
			got := int64(-1)
			if ok && o.Err == nil {
				got = o.At
			}
			switch s := state[g]; {
			case got < s.acked:
				lost++
				t.Errorf("%s partition %d: committed %d, but %d was acknowledged", g, p, got, s.acked)
			case got > s.sent:
				madeUp++
				t.Errorf("%s partition %d: committed %d, but only up to %d was sent", g, p, got, s.sent)
			}
		}
	}
	t.Logf("broker %d coordinated %d groups; commits acknowledged: %d before its kill -9, %d after; %d failed to the client; lost %d, made up %d",
		coordinator, len(groups), ackedBeforeKill, ackedAfterKill, failed, lost, madeUp)
	if ackedBeforeKill < 100 || ackedAfterKill < 100 {
		t.Fatalf("too few commits acknowledged to show anything: %d before the kill, %d after", ackedBeforeKill, ackedAfterKill)
	}
}

// groupsOfOneCoordinator returns n group ids that one broker coordinates,
// and that broker's id.
func groupsOfOneCoordinator(t *testing.T, ctx context.Context, admin *kadm.Client, n int) ([]string, int32) {
	t.Helper()
	coordinator := int32(-1)
	var groups []string
	for i := 0; len(groups) < n; i++ {
		if i > 50*n {
			t.Fatalf("found only %d groups coordinated by broker %d", len(groups), coordinator)
		}
		id := fmt.Sprintf("committer-%d", i)
		found := admin.FindGroupCoordinators(ctx, id)
		c, ok := found[id]
		if !ok || c.Err != nil {
			t.Fatalf("finding %s's coordinator: %+v", id, found)
		}
		if coordinator == -1 {
			coordinator = c.NodeID
		}
		if c.NodeID == coordinator {
			groups = append(groups, id)
		}
	}
	return groups, coordinator
}
