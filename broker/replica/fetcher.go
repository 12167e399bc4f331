package replica

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/storage"
)

const (
	// fetchMaxWait is how long the leader may hold a follower's fetch
	// (replica.fetch.wait.max.ms).
	fetchMaxWait = 500 * time.Millisecond
	// fetchMaxBytes and fetchPartitionMaxBytes bound an answer
	// (replica.fetch.response.max.bytes, and replica.fetch.max.bytes: 4 MiB
	// here; with Kafka's 1 MiB a follower caught up at 180 MB/s, not 205).
	fetchMaxBytes          = 10 << 20
	fetchPartitionMaxBytes = 4 << 20
	// backoff is the pause after a failed fetch (replica.fetch.backoff.ms)
	// and for a partition the leader refused while the metadata catches up.
	backoff = time.Second
	// metadataBackoff is the pause for a partition whose leader answered
	// that it does not lead it (yet, or any more).
	metadataBackoff = 100 * time.Millisecond
)

// Fetchers keeps one fetcher per leader this broker follows partitions of;
// each fetches all of them in one request at a time.
type Fetchers struct {
	self   int32
	clock  clock.Clock
	logger *slog.Logger
	// address is a broker's inter-broker host:port, from the metadata.
	address func(brokerID int32) (string, bool)
	// throttle bounds the bytes per second all fetchers copy for replicas
	// being added by a reassignment (nil: no bound), so moving partitions
	// does not starve the followers in sync.
	throttle *byteRate

	mu       sync.Mutex
	byLeader map[int32]*fetcher
	closed   bool
	// unreachable holds the leaders whose last fetch failed on its
	// connection (the dial, or the connection dropped), until a fetch
	// from them succeeds again.
	unreachable map[int32]bool
}

// NewFetchers returns the fetchers of broker self; reassignmentRate bounds
// the bytes per second copied for replicas being added (0: no bound).
func NewFetchers(self int32, clk clock.Clock, logger *slog.Logger, address func(int32) (string, bool), reassignmentRate int64) *Fetchers {
	m := &Fetchers{self: self, clock: clk, logger: logger, address: address, byLeader: map[int32]*fetcher{}, unreachable: map[int32]bool{}}
	if reassignmentRate > 0 {
		m.throttle = newByteRate(clk, reassignmentRate)
	}
	return m
}

// Set puts r with the fetcher of its leader, or with none when this
// broker does not follow it (any more). Called after each Update.
func (m *Fetchers) Set(r *Replica) {
	pos, following := r.Position()
	m.mu.Lock()
	defer m.mu.Unlock()
	for leader, f := range m.byLeader {
		if !following || leader != pos.Leader {
			f.remove(r)
		}
	}
	if !following || m.closed {
		return
	}
	f := m.byLeader[pos.Leader]
	if f == nil {
		f = &fetcher{m: m, leader: pos.Leader, replicas: map[*Replica]time.Time{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
		m.byLeader[pos.Leader] = f
		go f.run()
	}
	f.add(r)
}

// Unreachable reports whether this broker's last fetch from leader failed
// on its connection: a broker killed a moment ago, before the controller
// fenced it. False for a leader this broker does not fetch from.
func (m *Fetchers) Unreachable(leader int32) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.unreachable[leader]
}

func (m *Fetchers) setReachable(leader int32, reachable bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if reachable {
		delete(m.unreachable, leader)
	} else {
		m.unreachable[leader] = true
	}
}

// Remove stops fetching for r (its partition is gone from this broker).
func (m *Fetchers) Remove(r *Replica) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.byLeader {
		f.remove(r)
	}
}

// Close stops every fetcher and waits for them.
func (m *Fetchers) Close() {
	m.mu.Lock()
	m.closed = true
	fetchers := m.byLeader
	m.byLeader = map[int32]*fetcher{}
	m.mu.Unlock()
	for _, f := range fetchers {
		close(f.stop)
		f.connMu.Lock()
		f.closed = true
		if f.conn != nil {
			f.conn.close()
		}
		f.connMu.Unlock()
	}
	for _, f := range fetchers {
		<-f.done
	}
}

// fetcher fetches every partition this broker follows from one leader.
type fetcher struct {
	m      *Fetchers
	leader int32

	mu sync.Mutex
	// replicas maps each partition to the time before which it is not
	// fetched (after an error).
	replicas map[*Replica]time.Time
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}

	// conn is the fetcher goroutine's; Close closes it under connMu to
	// interrupt a fetch to a leader that hangs.
	connMu sync.Mutex
	conn   *brokerConn
	closed bool

	// session is the fetcher goroutine's incremental fetch session with
	// the leader (KIP-227).
	session fetchSession
}

// fetchSession is a fetcher's side of its session: the id (0: none), the
// epoch of the next request (0: a full fetch, which opens a new session),
// and what the session holds of each partition, as last sent.
type fetchSession struct {
	id    int32
	epoch int32
	sent  map[*Replica]kmsg.FetchRequestTopicPartition
}

// reset makes the next fetch a full one, which closes the session.
func (s *fetchSession) reset() { s.epoch, s.sent = 0, nil }

// unchanged reports whether the session holds p for r as it is: an
// incremental fetch leaves it out.
func (s *fetchSession) unchanged(r *Replica, p kmsg.FetchRequestTopicPartition) bool {
	last, ok := s.sent[r]
	return ok && s.epoch != 0 && last.FetchOffset == p.FetchOffset && last.CurrentLeaderEpoch == p.CurrentLeaderEpoch &&
		last.LastFetchedEpoch == p.LastFetchedEpoch && last.LogStartOffset == p.LogStartOffset && last.PartitionMaxBytes == p.PartitionMaxBytes
}

// answered moves the session on after the leader's answer to a fetch
// that left the session holding sent.
func (s *fetchSession) answered(resp *kmsg.FetchResponse, sent map[*Replica]kmsg.FetchRequestTopicPartition) {
	s.id = resp.SessionID
	if s.id == 0 {
		s.reset() // declined: full fetches, asking again each time
		return
	}
	s.epoch = s.epoch%math.MaxInt32 + 1 // 0 and -1 are for full fetches
	s.sent = sent
}

func (f *fetcher) add(r *Replica) {
	f.mu.Lock()
	if _, ok := f.replicas[r]; !ok {
		f.replicas[r] = time.Time{}
	}
	f.mu.Unlock()
	f.poke()
}

func (f *fetcher) remove(r *Replica) {
	f.mu.Lock()
	delete(f.replicas, r)
	f.mu.Unlock()
}

func (f *fetcher) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) delay(r *Replica, d time.Duration) {
	f.mu.Lock()
	if _, ok := f.replicas[r]; ok {
		f.replicas[r] = f.m.clock.Now().Add(d)
	}
	f.mu.Unlock()
}

// sleep waits d, or until poked or stopped (false).
func (f *fetcher) sleep(d time.Duration) bool {
	timer := f.m.clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-f.stop:
		return false
	case <-f.wake:
	case <-timer.C():
	}
	return true
}

func (f *fetcher) run() {
	defer close(f.done)
	defer f.dropConn()
	for {
		select {
		case <-f.stop:
			return
		default:
		}
		positions, next := f.positions()
		f.durablePositions(positions)
		if len(positions) == 0 {
			if !f.sleep(min(next, backoff)) {
				return
			}
			continue
		}
		err := f.fetchOnce(positions)
		f.m.setReachable(f.leader, err == nil)
		if err != nil {
			f.dropConn()
			f.m.logger.Debug("fetching from the leader", "leader", f.leader, "err", err)
			if !f.sleep(backoff) {
				return
			}
		}
	}
}

// positions returns the fetch of each partition due now, and how long
// until the next delayed one is due.
func (f *fetcher) positions() (map[*Replica]FetchPosition, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.m.clock.Now()
	next := backoff
	positions := map[*Replica]FetchPosition{}
	for r, notBefore := range f.replicas {
		if now.Before(notBefore) {
			next = min(next, notBefore.Sub(now))
			continue
		}
		pos, ok := r.Position()
		if !ok || pos.Leader != f.leader {
			continue
		}
		if pos.Adding && f.m.throttle != nil {
			if wait := f.m.throttle.wait(); wait > 0 {
				next = min(next, wait)
				continue // over the reassignment throttle: later
			}
		}
		positions[r] = pos
	}
	return positions, next
}

// durablePositions keeps the positions whose log end is on disk, in
// durable mode fsyncing it first (an append whose answer failed later
// was not waited for): the leader counts a follower's fetch offset as
// replicated, so it must never be ahead of what the follower fsynced.
func (f *fetcher) durablePositions(positions map[*Replica]FetchPosition) {
	var failed []*Replica
	var mu sync.Mutex
	var synced sync.WaitGroup
	for r, pos := range positions {
		if r.log.Config().Flush.Mode != storage.FlushOnDurable || r.log.DurableOffset() >= pos.FetchOffset {
			continue
		}
		synced.Add(1)
		go func() {
			defer synced.Done()
			if err := r.log.WaitDurable(pos.FetchOffset); err != nil {
				f.m.logger.Error("fsync of fetched records: the replica stops fetching", "log", r.log.Dir(), "err", err)
				mu.Lock()
				failed = append(failed, r)
				mu.Unlock()
			}
		}()
	}
	synced.Wait()
	for _, r := range failed {
		delete(positions, r)
	}
}

// fetchOnce sends one fetch for positions and applies the answer; an
// error is the connection's.
func (f *fetcher) fetchOnce(positions map[*Replica]FetchPosition) error {
	if f.conn == nil {
		address, ok := f.m.address(f.leader)
		if !ok {
			return errors.New("the leader is not registered")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		conn, err := dialBroker(ctx, address, f.m.self)
		cancel()
		if err != nil {
			return err
		}
		f.connMu.Lock()
		closed := f.closed
		if !closed {
			f.conn = conn
		}
		f.connMu.Unlock()
		if closed {
			conn.close()
			return errors.New("stopped")
		}
	}
	req := kmsg.NewPtrFetchRequest()
	req.Version = 13
	req.ReplicaID = f.m.self
	req.MaxWaitMillis = int32(fetchMaxWait.Milliseconds())
	req.MinBytes = 1
	req.MaxBytes = fetchMaxBytes
	req.SessionID, req.SessionEpoch = f.session.id, f.session.epoch
	byTopic := map[metadata.TopicID]int{}
	sent := make(map[*Replica]kmsg.FetchRequestTopicPartition, len(positions))
	for r, pos := range positions {
		p := kmsg.NewFetchRequestTopicPartition()
		p.Partition = r.opts.Index
		p.CurrentLeaderEpoch = pos.LeaderEpoch
		p.FetchOffset = pos.FetchOffset
		p.LastFetchedEpoch = pos.LastFetchedEpoch
		p.LogStartOffset = pos.LogStartOffset
		p.PartitionMaxBytes = fetchPartitionMaxBytes
		if pos.Adding && f.m.throttle != nil {
			// No more than the throttle has left (a first batch larger
			// than that still comes whole).
			p.PartitionMaxBytes = int32(min(max(f.m.throttle.available(), 1024), fetchPartitionMaxBytes))
		}
		sent[r] = p
		if f.session.unchanged(r, p) {
			continue // the session has it
		}
		i, ok := byTopic[r.opts.TopicID]
		if !ok {
			i = len(req.Topics)
			byTopic[r.opts.TopicID] = i
			topic := kmsg.NewFetchRequestTopic()
			topic.TopicID = r.opts.TopicID
			topic.Topic = r.opts.Topic
			req.Topics = append(req.Topics, topic)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, p)
	}
	if f.session.epoch != 0 {
		req.ForgottenTopics = forgotten(f.session.sent, positions)
	}
	resp, err := f.conn.request(req, fetchMaxWait+30*time.Second)
	if err != nil {
		return err // run drops the connection, and the session with it
	}
	fetched := resp.(*kmsg.FetchResponse)
	switch err := kerr.ErrorForCode(fetched.ErrorCode); {
	case errors.Is(err, kerr.FetchSessionIDNotFound), errors.Is(err, kerr.InvalidFetchSessionEpoch):
		f.m.logger.Debug("the leader ended the fetch session: fetching in full", "leader", f.leader, "session", f.session.id, "err", err)
		f.session.reset()
		return nil
	case err != nil:
		return err
	}
	f.session.answered(fetched, sent)
	replicas := map[metadata.TopicID]map[int32]*Replica{}
	for r := range positions {
		if replicas[r.opts.TopicID] == nil {
			replicas[r.opts.TopicID] = map[int32]*Replica{}
		}
		replicas[r.opts.TopicID][r.opts.Index] = r
	}
	type durableWait struct {
		log *storage.Log
		at  int64
	}
	var waits []durableWait
	for ti := range fetched.Topics {
		t := &fetched.Topics[ti]
		for pi := range t.Partitions {
			p := &t.Partitions[pi]
			r := replicas[t.TopicID][p.Partition]
			if r == nil {
				continue
			}
			pos := positions[r]
			durable := r.log.Config().Flush.Mode == storage.FlushOnDurable
			if pos.Adding && f.m.throttle != nil {
				f.m.throttle.spend(int64(len(p.RecordBatches)))
			}
			durableAt, err := r.Fetched(pos, p, durable)
			if errors.Is(err, kerr.OffsetOutOfRange) {
				err = f.reset(r, pos)
			}
			if err != nil {
				f.partitionFailed(r, err)
				continue
			}
			if durableAt > 0 {
				waits = append(waits, durableWait{r.log, durableAt})
			}
		}
	}
	// Durable mode: what this broker reports as its log end in the next
	// fetch is on its disk. The logs fsync side by side: a round costs the
	// slowest fsync, not their sum.
	syncOne := func(w durableWait) {
		if err := w.log.WaitDurable(w.at); err != nil {
			f.m.logger.Error("fsync of fetched records: the replica stops fetching", "log", w.log.Dir(), "err", err)
		}
	}
	if len(waits) == 1 {
		syncOne(waits[0]) // the usual case: no goroutine to wake in between
		return nil
	}
	var synced sync.WaitGroup
	for _, w := range waits {
		synced.Add(1)
		go func() {
			defer synced.Done()
			syncOne(w)
		}()
	}
	synced.Wait()
	return nil
}

// forgotten names the partitions the session holds that this fetch
// leaves out (delayed, or no longer followed from this leader).
func forgotten(sent map[*Replica]kmsg.FetchRequestTopicPartition, positions map[*Replica]FetchPosition) []kmsg.FetchRequestForgottenTopic {
	var topics []kmsg.FetchRequestForgottenTopic
	byTopic := map[metadata.TopicID]int{}
	for r := range sent {
		if _, ok := positions[r]; ok {
			continue
		}
		i, ok := byTopic[r.opts.TopicID]
		if !ok {
			i = len(topics)
			byTopic[r.opts.TopicID] = i
			topic := kmsg.NewFetchRequestForgottenTopic()
			topic.TopicID, topic.Topic = r.opts.TopicID, r.opts.Topic
			topics = append(topics, topic)
		}
		topics[i].Partitions = append(topics[i].Partitions, r.opts.Index)
	}
	return topics
}

// dropConn closes the connection (after an error, or at the end), and
// with it the session: the next fetch is a full one.
func (f *fetcher) dropConn() {
	f.session.reset()
	f.connMu.Lock()
	defer f.connMu.Unlock()
	if f.conn != nil {
		f.conn.close()
		f.conn = nil
	}
}

// partitionFailed pauses one partition after an error in its answer.
func (f *fetcher) partitionFailed(r *Replica, err error) {
	switch {
	case errors.Is(err, ErrMovedOn):
	case errors.Is(err, kerr.NotLeaderForPartition), errors.Is(err, kerr.FencedLeaderEpoch), errors.Is(err, kerr.UnknownLeaderEpoch),
		errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
		f.delay(r, metadataBackoff) // the metadata is moving; the next update says where to go
	default:
		f.m.logger.Warn("replicating a partition", "topic", r.opts.Topic, "partition", r.opts.Index, "leader", f.leader, "err", err)
		f.delay(r, backoff)
	}
}

// reset asks the leader for its log start and end after
// OFFSET_OUT_OF_RANGE and moves this replica's log to fit.
func (f *fetcher) reset(r *Replica, pos FetchPosition) error {
	offsets := [2]int64{}
	for i, timestamp := range []int64{-2, -1} { // earliest, latest
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 4
		req.ReplicaID = f.m.self
		topic := kmsg.NewListOffsetsRequestTopic()
		topic.Topic = r.opts.Topic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Partition, p.CurrentLeaderEpoch, p.Timestamp = r.opts.Index, pos.LeaderEpoch, timestamp
		topic.Partitions = append(topic.Partitions, p)
		req.Topics = append(req.Topics, topic)
		resp, err := f.conn.request(req, 10*time.Second)
		if err != nil {
			return err
		}
		answer := resp.(*kmsg.ListOffsetsResponse)
		if len(answer.Topics) != 1 || len(answer.Topics[0].Partitions) != 1 {
			return errors.New("the leader's ListOffsets answer names other partitions")
		}
		if code := answer.Topics[0].Partitions[0].ErrorCode; code != 0 {
			return kerr.ErrorForCode(code)
		}
		offsets[i] = answer.Topics[0].Partitions[0].Offset
	}
	return r.ResetTo(pos, offsets[0], offsets[1])
}
