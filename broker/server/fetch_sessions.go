package server

// Incremental fetch sessions (KIP-227). A fetcher that sends session epoch
// 0 asks for a session: the answer names it, and from then on each request
// names only the partitions it adds or whose position changed (and those
// it drops, as forgotten topics), and each answer only the partitions with
// news: records, a new high watermark or log start, an error, a diverging
// epoch. A follower that follows many partitions of a leader then sends
// and reads a few bytes per fetch instead of every partition each time.
//
//	epoch -1, id 0   a full fetch, no session (kafka-go, sarama, librdkafka)
//	epoch -1, id N   closes session N; a full fetch, no session
//	epoch  0, id *   closes session id (if any); a full fetch that opens one
//	epoch  E, id N   an incremental fetch on session N, whose next epoch is E:
//	                 FETCH_SESSION_ID_NOT_FOUND or INVALID_FETCH_SESSION_EPOCH
//	                 otherwise, and the fetcher starts over with a full fetch
//
// The cache holds maxFetchSessions sessions (Kafka's
// max.incremental.fetch.session.cache.slots); when it is full, one idle for
// fetchSessionEviction makes room (for a follower's, any client's), and
// without one the new session is declined (id 0 in the answer: the
// fetcher goes on with full fetches).

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	maxFetchSessions = 1000
	// maxCachedPartitions bounds the partitions all sessions hold (about
	// 200 bytes each), whatever clients put in theirs.
	maxCachedPartitions = 200_000
	// fetchSessionEviction is min.incremental.fetch.session.eviction.ms.
	fetchSessionEviction = 2 * time.Minute
)

// fetchSessions is the broker's session cache; it owns every session.
type fetchSessions struct {
	mu         sync.Mutex
	nextID     int32
	byID       map[int32]*fetchSession
	partitions int // held by all of them
}

// fetchSession is what a fetcher's session holds: the partitions, in the
// order they are read (those that returned records go last, so a full
// answer does not always favour the same ones), each with its last
// requested position and what the fetcher was last told.
type fetchSession struct {
	epoch      int32 // the epoch the next incremental request carries
	follower   bool  // a broker's replica fetcher's
	lastUsed   time.Time
	order      []sessionKey
	partitions map[sessionKey]*sessionPartition
}

type sessionKey struct {
	topicID   [16]byte
	topic     string // v7–v12 name topics; v13 by id only
	partition int32
}

func newSessionKey(version int16, topicID [16]byte, topic string, partition int32) sessionKey {
	if version >= 13 {
		topic = ""
	}
	return sessionKey{topicID: topicID, topic: topic, partition: partition}
}

type sessionPartition struct {
	request kmsg.FetchRequestTopicPartition
	// highWatermark and logStart were last answered; -1: not yet, or
	// after an error, so the partition is in the next answer.
	highWatermark, logStart int64
}

func newFetchSessions() *fetchSessions {
	return &fetchSessions{byID: map[int32]*fetchSession{}}
}

// fetchContext is one request's view of its session: the full request to
// read (the session's partitions for an incremental one) and how to turn
// the full answer into the one to send.
type fetchContext struct {
	sessions *fetchSessions
	id       int32         // the session the answer names; 0: none
	session  *fetchSession // nil: a full answer
	errCode  int16         // a session error: answered alone
	full     *kmsg.FetchRequest
}

// begin resolves r against the cache at now.
func (s *fetchSessions) begin(r *kmsg.FetchRequest, now time.Time) *fetchContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := &fetchContext{sessions: s, full: r}
	if r.Version < 7 {
		return ctx
	}
	switch r.SessionEpoch {
	case -1:
		s.removeLocked(r.SessionID)
		return ctx
	case 0:
		s.removeLocked(r.SessionID)
		session := &fetchSession{epoch: 1, follower: r.ReplicaID >= 0, lastUsed: now, partitions: map[sessionKey]*sessionPartition{}}
		session.update(r)
		if s.partitions+len(session.partitions) > maxCachedPartitions {
			return ctx // declined: too many partitions cached
		}
		if id := s.addLocked(session, now); id != 0 {
			ctx.id = id
			s.partitions += len(session.partitions)
		}
		return ctx
	}
	session := s.byID[r.SessionID]
	switch {
	case session == nil:
		ctx.errCode = kerr.FetchSessionIDNotFound.Code
		return ctx
	case session.epoch != r.SessionEpoch:
		ctx.errCode = kerr.InvalidFetchSessionEpoch.Code
		return ctx
	}
	session.epoch = nextSessionEpoch(session.epoch)
	session.lastUsed = now
	before := len(session.partitions)
	session.update(r)
	if s.partitions += len(session.partitions) - before; s.partitions > maxCachedPartitions {
		s.removeLocked(r.SessionID) // the fetcher starts again, in full
		ctx.errCode = kerr.FetchSessionIDNotFound.Code
		return ctx
	}
	ctx.id, ctx.session = r.SessionID, session
	ctx.full = session.request(r)
	return ctx
}

// addLocked caches a new session and returns its id, or 0 when the cache
// is full of sessions in use. When it is full, the least recently used
// session idle for fetchSessionEviction gives way; a follower's new
// session may also take the place of any client's (as Kafka's privileged
// sessions), so clients opening sessions cannot crowd out replication.
func (s *fetchSessions) addLocked(session *fetchSession, now time.Time) int32 {
	if len(s.byID) >= maxFetchSessions {
		var oldest int32
		for id, cached := range s.byID {
			evictable := now.Sub(cached.lastUsed) >= fetchSessionEviction || (session.follower && !cached.follower)
			if evictable && (oldest == 0 || cached.lastUsed.Before(s.byID[oldest].lastUsed)) {
				oldest = id
			}
		}
		if oldest == 0 {
			return 0
		}
		s.removeLocked(oldest)
	}
	for {
		s.nextID++
		if s.nextID <= 0 {
			s.nextID = 1
		}
		if s.byID[s.nextID] == nil {
			s.byID[s.nextID] = session
			return s.nextID
		}
	}
}

// FetchSessions reports the incremental fetch sessions cached and the
// partitions they hold (Kafka's NumIncrementalFetchSessions and
// NumIncrementalFetchPartitionsCached).
func (s *Server) FetchSessions() (sessions, partitions int) {
	s.fetchSessions.mu.Lock()
	defer s.fetchSessions.mu.Unlock()
	return len(s.fetchSessions.byID), s.fetchSessions.partitions
}

func (s *fetchSessions) removeLocked(id int32) {
	if session := s.byID[id]; session != nil {
		s.partitions -= len(session.partitions)
		delete(s.byID, id)
	}
}

// nextSessionEpoch follows epoch, wrapping past the largest to 1 (0 and
// -1 mean full fetches).
func nextSessionEpoch(epoch int32) int32 {
	if epoch == math.MaxInt32 {
		return 1
	}
	return epoch + 1
}

// update applies a request's partitions (added or moved) and forgotten
// topics to the session.
func (session *fetchSession) update(r *kmsg.FetchRequest) {
	for _, ft := range r.ForgottenTopics {
		for _, partition := range ft.Partitions {
			key := newSessionKey(r.Version, ft.TopicID, ft.Topic, partition)
			if _, ok := session.partitions[key]; ok {
				delete(session.partitions, key)
				session.order = slices.DeleteFunc(session.order, func(k sessionKey) bool { return k == key })
			}
		}
	}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			key := newSessionKey(r.Version, rt.TopicID, rt.Topic, rp.Partition)
			if p, ok := session.partitions[key]; ok {
				p.request = rp
				continue
			}
			session.partitions[key] = &sessionPartition{request: rp, highWatermark: -1, logStart: -1}
			session.order = append(session.order, key)
		}
	}
}

// request is the full fetch of every partition in the session, with r's
// other fields.
func (session *fetchSession) request(r *kmsg.FetchRequest) *kmsg.FetchRequest {
	full := *r
	full.Topics, full.ForgottenTopics = nil, nil
	for _, key := range session.order {
		n := len(full.Topics)
		if n == 0 || full.Topics[n-1].TopicID != key.topicID || full.Topics[n-1].Topic != key.topic {
			topic := kmsg.NewFetchRequestTopic()
			topic.TopicID, topic.Topic = key.topicID, key.topic
			full.Topics = append(full.Topics, topic)
			n++
		}
		full.Topics[n-1].Partitions = append(full.Topics[n-1].Partitions, session.partitions[key].request)
	}
	return &full
}

// finish returns the answer to send for the full answer resp: with the
// session's id, and for an incremental fetch only the partitions with
// news, which the session then counts as told.
func (ctx *fetchContext) finish(resp *kmsg.FetchResponse) *kmsg.FetchResponse {
	if ctx.errCode != 0 {
		resp.Topics, resp.ErrorCode = nil, ctx.errCode
		return resp
	}
	resp.SessionID = ctx.id
	s := ctx.sessions
	s.mu.Lock()
	defer s.mu.Unlock()
	session := s.byID[ctx.id]
	if session == nil || (ctx.session != nil && session != ctx.session) {
		return resp // none, or closed meanwhile: the fetcher finds out at its next request
	}
	var readLast []sessionKey
	topics := resp.Topics[:0]
	for _, rt := range resp.Topics {
		partitions := rt.Partitions[:0]
		for _, rp := range rt.Partitions {
			key := newSessionKey(ctx.full.Version, rt.TopicID, rt.Topic, rp.Partition)
			p := session.partitions[key]
			if p == nil {
				continue
			}
			news := len(rp.RecordBatches) > 0 || rp.ErrorCode != 0 || rp.DivergingEpoch.Epoch >= 0 || rp.DivergingEpoch.EndOffset >= 0 ||
				rp.HighWatermark != p.highWatermark || rp.LogStartOffset != p.logStart
			p.highWatermark, p.logStart = rp.HighWatermark, rp.LogStartOffset
			if rp.ErrorCode != 0 {
				p.highWatermark = -1 // told again once the error is gone
			}
			if len(rp.RecordBatches) > 0 {
				readLast = append(readLast, key)
			}
			if news || ctx.session == nil {
				partitions = append(partitions, rp)
			}
		}
		if len(partitions) > 0 || ctx.session == nil {
			rt.Partitions = partitions
			topics = append(topics, rt)
		}
	}
	resp.Topics = topics
	if len(readLast) > 0 {
		session.order = slices.DeleteFunc(session.order, func(k sessionKey) bool { return slices.Contains(readLast, k) })
		session.order = append(session.order, readLast...)
	}
	return resp
}
