package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/zeromicro/go-queue/kq"
	"github.com/zeromicro/go-zero/core/logx"
	"github.com/zeromicro/go-zero/core/service"

	"github.com/kqstack/kqstack/internal/groupwait"
)

// seeds are the addresses of a target and of its peers.
func (t *target) seeds() []string {
	addrs := []string{t.addr}
	for _, p := range t.peers {
		addrs = append(addrs, p.addr)
	}
	return addrs
}

// commitsWorkload measures offset commits from one franz-go client:
// inflight goroutines share it, one commit at a time each, one partition
// per commit, spread over groups groups (0: one each; inflight 1: the
// latency-bound rate of one synchronous committer; inflight 64, groups 1:
// the single-broker Go benchmark's workload, one coordinator pipelining).
// It reports commits per second and their latency.
func commitsWorkload(duration time.Duration, inflight, groupCount int) workload {
	const partitions = 4
	const warmUp = time.Second
	spread := "one group each"
	if groupCount == 0 || groupCount >= inflight {
		groupCount = inflight
	} else {
		spread = fmt.Sprintf("%d group(s)", groupCount)
	}
	return workload{
		name: fmt.Sprintf("offset commits, one client, %d in flight (%s), 1 partition each", inflight, spread),
		run: func(ctx context.Context, t *target) (measurement, error) {
			topic := uniqueTopic("commits")
			if err := t.createTopic(ctx, topic, partitions); err != nil {
				return nil, err
			}
			defer t.deleteTopic(context.Background(), topic)
			client, err := kgo.NewClient(kgo.SeedBrokers(t.seeds()...))
			if err != nil {
				return nil, err
			}
			defer client.Close()
			admin := kadm.NewClient(client)
			var groups []string
			for g := range groupCount {
				groups = append(groups, fmt.Sprintf("%s-%d", topic, g))
			}
			defer func() { _, _ = admin.DeleteGroups(context.Background(), groups...) }()
			// OffsetCommit v10 names topics by id (kfake serves it; kqbroker
			// serves up to v9, by name): send both.
			meta, err := admin.Metadata(ctx, topic)
			if err != nil {
				return nil, err
			}
			topicID := meta.Topics[topic].ID

			commit := func(group string, i int64) error {
				req := kmsg.NewPtrOffsetCommitRequest()
				req.Group = group
				req.Generation = -1
				rt := kmsg.NewOffsetCommitRequestTopic()
				rt.Topic, rt.TopicID = topic, topicID
				rp := kmsg.NewOffsetCommitRequestTopicPartition()
				rp.Partition = int32(i % partitions)
				rp.Offset = i
				rp.LeaderEpoch = -1
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				resp, err := req.RequestWith(ctx, client)
				if err != nil {
					return err
				}
				for _, answered := range resp.Topics {
					for _, p := range answered.Partitions {
						if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
							return fmt.Errorf("commit of %s/%d: %w", topic, p.Partition, err)
						}
					}
				}
				return nil
			}
			// Each committer warms up, then commits for duration from the
			// same moment.
			begin := time.Now().Add(warmUp)
			end := begin.Add(duration)
			results := make([][]time.Duration, inflight)
			errs := make(chan error, inflight)
			for g := range inflight {
				group := groups[g%len(groups)]
				go func() {
					var i int64
					for ; time.Now().Before(begin); i++ {
						if err := commit(group, i); err != nil {
							errs <- fmt.Errorf("warm-up: %w", err)
							return
						}
					}
					latencies := make([]time.Duration, 0, 1<<16)
					for ; time.Now().Before(end); i++ {
						sent := time.Now()
						if err := commit(group, i); err != nil {
							errs <- err
							return
						}
						latencies = append(latencies, time.Since(sent))
					}
					results[g] = latencies
					errs <- nil
				}()
			}
			var failed error
			for range inflight {
				failed = errors.Join(failed, <-errs)
			}
			if failed != nil {
				return nil, failed
			}
			var latencies []time.Duration
			for _, r := range results {
				latencies = append(latencies, r...)
			}
			slices.Sort(latencies)
			return measurement{
				"commits/s": float64(len(latencies)) / duration.Seconds(),
				"p50 ms":    percentile(latencies, 0.50),
				"p99 ms":    percentile(latencies, 0.99),
				"max ms":    percentile(latencies, 1),
			}, nil
		},
	}
}

// handled records when a kq group handled each record, and when the
// producer had each acknowledged.
type handled struct {
	mu    sync.Mutex
	times []time.Time
	acked map[string]time.Time
	// waited is the longest a record acknowledged after since waited to
	// be handled for the first time.
	since  time.Time
	waited time.Duration
}

func (h *handled) ack(value string, at time.Time) {
	h.mu.Lock()
	h.acked[value] = at
	h.mu.Unlock()
}

func (h *handled) Consume(_ context.Context, _, value string) error {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.times = append(h.times, now)
	if acked, ok := h.acked[value]; ok {
		if !h.since.IsZero() && acked.After(h.since) {
			h.waited = max(h.waited, now.Sub(acked))
		}
		delete(h.acked, value) // handled: a redelivery is not counted
	}
	return nil
}

// resumedAfter is when the group handled records again after the longest
// pause in handling that began after from, and that pause; and when it
// last handled one.
func (h *handled) resumedAfter(from time.Time) (resumed time.Time, longest time.Duration, last time.Time) {
	h.mu.Lock()
	all := slices.Clone(h.times)
	h.mu.Unlock()
	return groupwait.LongestPause(all, from)
}

// coordinatorFailoverWorkload measures how long a go-queue kq consumer
// group (kafka-go underneath, with its defaults: 30 s session, 3 s
// heartbeats, 5 s join-group backoff; kq's 1 s commit interval) stops
// handling records when the broker coordinating it is killed with SIGKILL.
// Two members consume a topic of 6 partitions, RF 3, while a franz-go
// producer writes about 200 records/s. The group's coordinator (from
// DescribeGroups) is killed; the victim stays down while the handling is
// watched, at least 20 s and until the group has handled records without a
// pause for 5 s after its longest one. "resume ms" is from the kill to the
// first record handled after that longest pause ("pause ms"). Beside them:
// the producer's longest gap between acknowledgements after the kill
// (while nothing is acknowledged there is nothing to handle either), the
// longest a record acknowledged after the kill waited to be handled
// ("handling lag ms": the group's own share), and whether the victim was
// also the controller. Then the broker is started again and every
// partition of the topic and of __consumer_offsets is back to three
// in-sync replicas before the run ends.
func coordinatorFailoverWorkload() workload {
	const watchAtLeast, steadyFor = 20 * time.Second, 5 * time.Second
	return workload{
		name: "kq group: resumed after kill -9 of its coordinator",
		setup: func(ctx context.Context, t *target) error {
			if t.name != "kqbroker-cluster" {
				return errors.New("coordinator-failover is measured on kqbroker-cluster only")
			}
			return nil
		},
		run: func(ctx context.Context, t *target) (measurement, error) {
			client, err := kgo.NewClient(kgo.SeedBrokers(t.seeds()...),
				kgo.MetadataMinAge(50*time.Millisecond), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
			if err != nil {
				return nil, err
			}
			defer client.Close()
			admin := kadm.NewClient(client)
			if err := waitWhole(ctx, admin, int(max(t.replicas, 1)), "__consumer_offsets"); err != nil {
				return nil, err
			}
			topic := uniqueTopic("coordinator")
			if err := t.createTopic(ctx, topic, 6); err != nil {
				return nil, err
			}
			if err := waitWhole(ctx, admin, int(max(t.replicas, 1)), topic); err != nil {
				return nil, err
			}

			// The producer: about 200 records a second; ackGap is the longest
			// gap between its acknowledgements after the kill.
			h := &handled{acked: map[string]time.Time{}}
			var killedAt atomic.Int64 // unix nanoseconds; 0 before the kill
			var ackMu sync.Mutex
			var lastAck time.Time
			var ackGap time.Duration
			var failedProduces atomic.Int64
			producing, stopProducing := context.WithCancel(ctx)
			var produced sync.WaitGroup
			produced.Add(1)
			go func() {
				defer produced.Done()
				for i := 0; producing.Err() == nil; i++ {
					value := []byte(fmt.Sprintf("v-%d", i))
					client.Produce(producing, &kgo.Record{Topic: topic, Key: value, Value: value}, func(_ *kgo.Record, err error) {
						if err != nil {
							failedProduces.Add(1)
							return
						}
						now := time.Now()
						h.ack(string(value), now)
						ackMu.Lock()
						defer ackMu.Unlock()
						if k := killedAt.Load(); k != 0 {
							from := time.Unix(0, k)
							if lastAck.After(from) {
								from = lastAck
							}
							ackGap = max(ackGap, now.Sub(from))
						}
						lastAck = now
					})
					time.Sleep(5 * time.Millisecond)
				}
			}()
			defer func() {
				stopProducing()
				produced.Wait()
			}()

			groupID := topic
			var members []service.Service
			for range 2 {
				q := kq.MustNewQueue(kq.KqConf{
					ServiceConf: service.ServiceConf{Name: "kqbench", Log: logx.LogConf{Mode: "console", Level: "severe"}},
					Brokers:     t.seeds(), Group: groupID, Topic: topic, Offset: "first",
					Conns: 1, Consumers: 1, Processors: 1, MinBytes: 1, MaxBytes: 10 << 20,
				}, h)
				go q.Start()
				members = append(members, q)
			}
			stopMembers := func() {
				for _, m := range members {
					m.Stop()
				}
				members = nil
			}
			defer stopMembers()
			described, err := groupwait.Stable(ctx, admin, groupID, 2, time.Minute)
			if err != nil {
				return nil, err
			}
			time.Sleep(2 * time.Second) // consuming steadily
			if described, err = groupwait.Stable(ctx, admin, groupID, 2, time.Minute); err != nil {
				return nil, err
			}
			coordinator := described.Coordinator.NodeID
			var victim *target
			for _, b := range append([]*target{t}, t.peers...) {
				if b.nodeID == coordinator {
					victim = b
				}
			}
			if victim == nil {
				return nil, fmt.Errorf("the group's coordinator %d is not one of the brokers started", coordinator)
			}

			// Whether the victim is also the controller (the metadata
			// quorum's leader) and how many partitions of
			// __consumer_offsets it leads: a controller's kill -9 delays
			// every election behind the quorum's own.
			controller, ledOffsets := int32(-1), 0
			if meta, err := admin.Metadata(ctx, "__consumer_offsets"); err == nil {
				controller = meta.Controller
				for _, p := range meta.Topics["__consumer_offsets"].Partitions {
					if p.Leader == coordinator {
						ledOffsets++
					}
				}
			}
			killed := time.Now()
			killedAt.Store(killed.UnixNano())
			h.mu.Lock()
			h.since = killed
			h.mu.Unlock()
			victim.kill()
			for {
				time.Sleep(100 * time.Millisecond)
				resumed, _, last := h.resumedAfter(killed)
				now := time.Now()
				if now.Sub(killed) >= watchAtLeast && !resumed.IsZero() && now.Sub(resumed) >= steadyFor && now.Sub(last) < time.Second {
					break
				}
				if ctx.Err() != nil || now.Sub(killed) > 80*time.Second {
					_ = victim.restart()
					return nil, fmt.Errorf("the group had not resumed steadily %v after broker %d was killed (last handled %v after the kill)",
						now.Sub(killed).Round(time.Millisecond), coordinator, last.Sub(killed).Round(time.Millisecond))
				}
			}
			resumed, pause, _ := h.resumedAfter(killed)
			h.mu.Lock()
			waited := h.waited
			h.mu.Unlock()
			ackMu.Lock()
			produceStall := ackGap
			ackMu.Unlock()
			failed := failedProduces.Load()
			stopProducing()
			produced.Wait()
			stopMembers()

			restarted := time.Now()
			if err := victim.restart(); err != nil {
				return nil, err
			}
			if err := waitWhole(ctx, admin, int(max(t.replicas, 1)), "__consumer_offsets", topic); err != nil {
				return nil, err
			}
			whole := time.Since(restarted)
			_, _ = admin.DeleteTopics(ctx, topic)
			_, _ = admin.DeleteGroups(ctx, groupID)
			return measurement{
				"resume ms":              float64(resumed.Sub(killed).Microseconds()) / 1000,
				"pause ms":               float64(pause.Microseconds()) / 1000,
				"produce stall ms":       float64(produceStall.Microseconds()) / 1000,
				"handling lag ms":        float64(waited.Microseconds()) / 1000,
				"failed produces":        float64(failed),
				"coordinator":            float64(coordinator),
				"also controller":        map[bool]float64{true: 1, false: 0}[controller == coordinator],
				"offsets partitions led": float64(ledOffsets),
				"restart to ISR s":       whole.Seconds(),
			}, nil
		},
	}
}

// waitWhole waits until every partition of the topics has a leader and
// all its replicas in sync.
func waitWhole(ctx context.Context, admin *kadm.Client, replicas int, topics ...string) error {
	var last string
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		meta, err := admin.Metadata(ctx, topics...)
		if err != nil {
			last = err.Error()
			continue
		}
		whole := true
		for _, topic := range topics {
			td := meta.Topics[topic]
			if td.Err != nil || len(td.Partitions) == 0 {
				whole, last = false, fmt.Sprintf("%s: %v", topic, td.Err)
				break
			}
			for _, p := range td.Partitions {
				if p.Leader < 0 || len(p.ISR) != replicas {
					whole, last = false, fmt.Sprintf("%s/%d: leader %d, ISR %v", topic, p.Partition, p.Leader, p.ISR)
					break
				}
			}
		}
		if whole {
			return nil
		}
	}
	return fmt.Errorf("the cluster did not become whole (every ISR of %v complete): %s", topics, last)
}
