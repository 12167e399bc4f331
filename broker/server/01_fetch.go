package server

// Fetch (key 1), v4–v13.
//   v4: isolation level, last stable offset, aborted transactions.
//   v5: log start offset.
//   v7: incremental fetch sessions (fetch_sessions.go).
//   v9: current leader epoch.
//   v11: rack, preferred read replica (-1).
//   v12: flexible.
//   v13: topics by id.
// A fetch with a replica id (a follower of this broker's partitions)
// reads up to the log end and tells the leader how far the follower got;
// a consumer's reads up to the high watermark. A last fetched epoch
// (v12+) the log does not end the same way is answered with the diverging
// epoch and no records (KIP-320, and the followers' truncation).
// The fetch waits up to max_wait_ms until min_bytes are there, woken by
// appends and high watermark moves, but a follower is answered at once
// when the high watermark moved since its last answer. max_bytes and partition_max_bytes bound the answer, except that
// the first batch of the first partition with data is always returned whole
// so a consumer can make progress past a large batch.

import (
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/replica"
	"github.com/kqstack/kqstack/broker/storage"
)

func init() { register(1, 4, 13, handleFetch) }

func handleFetch(c *conn, req kmsg.Request) (kmsg.Response, error) {
	now := time.Now()
	session := c.server.fetchSessions.begin(req.(*kmsg.FetchRequest), now)
	if session.errCode != 0 {
		return session.finish(req.ResponseKind().(*kmsg.FetchResponse)), nil
	}
	var buffers fetchBuffers
	c.deferRelease(buffers.release)
	resp := session.finish(longPoll(c, session.full, now, &buffers))
	countFetched(c.server, resp)
	return resp, nil
}

// longPoll answers a full fetch once min_bytes are there, a partition
// failed or has news for a follower, or max_wait_ms passed.
func longPoll(c *conn, r *kmsg.FetchRequest, now time.Time, buffers *fetchBuffers) *kmsg.FetchResponse {
	deadline := now.Add(time.Duration(max(r.MaxWaitMillis, 0)) * time.Millisecond)
	soonAfter := func(from time.Time) {
		if due := from.Add(replica.HighWatermarkNewsDelay); due.Before(deadline) {
			deadline = due // a follower's new high watermark goes out soon
		}
	}
	for {
		var watch watchedLogs
		buffers.release() // an earlier read that was not enough
		resp, bytes, failed, soon := fetchOnce(c.server.cluster, r, &watch, buffers)
		if soon {
			soonAfter(time.Now())
		}
		if bytes >= int(r.MinBytes) || failed || len(watch) == 0 || !time.Now().Before(deadline) {
			return resp
		}
		for {
			if !watch.wait(time.Until(deadline), c.server.stopping) {
				buffers.release()
				resp, _, _, _ = fetchOnce(c.server.cluster, r, nil, buffers)
				return resp
			}
			if r.ReplicaID < 0 {
				break // a consumer reads up to the high watermark: read again
			}
			// A follower reads up to the log end: unless records came or
			// a log start moved, only a high watermark rose. That is news
			// due soon, not worth reading every partition again for.
			watch.renew()
			if watch.moved() {
				break
			}
			soonAfter(time.Now())
		}
	}
}

// watchedLogs are the logs a long poll waits on, each with the channel
// its next append (or high watermark rise) closes and where the fetch
// stood in it.
type watchedLogs []watchedLog

type watchedLog struct {
	log         *storage.Log
	appended    <-chan struct{}
	fetchOffset int64
	logStart    int64
}

func (w *watchedLogs) add(log *storage.Log, fetchOffset int64) {
	*w = append(*w, watchedLog{log: log, appended: log.Appended(), fetchOffset: fetchOffset, logStart: log.LogStartOffset()})
}

// renew takes the channels of the next appends.
func (w watchedLogs) renew() {
	for i := range w {
		w[i].appended = w[i].log.Appended()
	}
}

// moved reports whether a log has records past the fetch offset or a
// new log start, which a follower must be told of.
func (w watchedLogs) moved() bool {
	for _, l := range w {
		if l.log.LogEndOffset() > l.fetchOffset || l.log.LogStartOffset() != l.logStart {
			return true
		}
	}
	return false
}

// countFetched adds a fetch response's records to the topics' metrics.
func countFetched(s *Server, resp *kmsg.FetchResponse) {
	if s.metrics == nil || resp == nil {
		return
	}
	for _, rt := range resp.Topics {
		name := rt.Topic
		if name == "" {
			if t, ok := s.cluster.TopicByID(rt.TopicID); ok {
				name = t.Name
			}
		}
		for _, rp := range rt.Partitions {
			records := 0
			_ = storage.WalkBatchHeaders(rp.RecordBatches, func(h storage.BatchHeader) error {
				records += int(h.LastOffsetDelta) + 1
				return nil
			})
			s.metrics.Fetched(name, len(rp.RecordBatches), records)
		}
	}
}

// fetchBuffers are the pooled buffers a fetch response's records are read
// into; the writer releases them once the response is encoded.
type fetchBuffers []*[]byte

func (b *fetchBuffers) get() *[]byte {
	buf := getBuffer(0)
	*b = append(*b, buf)
	return buf
}

func (b *fetchBuffers) release() {
	for _, buf := range *b {
		putBuffer(buf)
	}
	*b = (*b)[:0]
}

// wait waits until one of the logs gets an append or a high watermark
// rise (true), or timeout passes or the server stops (false).
func (w watchedLogs) wait(timeout time.Duration, stopping <-chan struct{}) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	if len(w) == 1 {
		select {
		case <-w[0].appended:
			return true
		case <-timer.C:
		case <-stopping:
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(w)+2)
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(stopping)})
	for _, l := range w {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(l.appended)})
	}
	chosen, _, _ := reflect.Select(cases)
	return chosen >= 2
}

// fetchOnce reads every requested partition. It returns the response, the
// bytes of records in it, whether a partition failed or has news a
// follower needs now (either answers at once), and whether one has news
// it needs soon (a new high watermark). With watch non-nil it collects,
// before reading, the logs with the channels that their next appends will
// close.
func fetchOnce(cl *cluster.Cluster, r *kmsg.FetchRequest, watch *watchedLogs, buffers *fetchBuffers) (resp *kmsg.FetchResponse, total int, failed, soon bool) {
	resp = r.ResponseKind().(*kmsg.FetchResponse)
	remaining := int(r.MaxBytes)
	if r.MaxBytes <= 0 {
		remaining = 1<<31 - 1
	}
	for _, rt := range r.Topics {
		topic := kmsg.NewFetchResponseTopic()
		topic.Topic, topic.TopicID = rt.Topic, rt.TopicID
		t, topicErr := fetchTopic(cl, r.Version, rt)
		for _, rp := range rt.Partitions {
			partition := kmsg.NewFetchResponseTopicPartition()
			partition.Partition = rp.Partition
			// Empty, not null: librdkafka refuses a null record set.
			partition.RecordBatches = []byte{}
			err := topicErr
			var p *cluster.Partition
			if err == nil {
				if rp.Partition < 0 || int(rp.Partition) >= len(t.Partitions) {
					err = fmt.Errorf("%w: partition %d", kerr.UnknownTopicOrPartition, rp.Partition)
				} else if err = cl.CheckLeader(t.Partitions[rp.Partition]); err == nil {
					p = t.Partitions[rp.Partition]
					if r.Version >= 9 {
						err = p.CheckLeaderEpoch(rp.CurrentLeaderEpoch)
					}
				}
			}
			if err == nil {
				log := p.Log
				if watch != nil {
					watch.add(log, rp.FetchOffset)
				}
				hw := log.HighWatermark()
				upTo := hw
				switch {
				case diverged(log, r.Version, rp, &partition):
					// The fetcher truncates first; a follower's offset in a
					// log that diverged says nothing of what it has.
					partition.HighWatermark, partition.LastStableOffset, partition.LogStartOffset = hw, hw, log.LogStartOffset()
					failed = true
				case r.ReplicaID >= 0 && rp.FetchOffset >= log.LogStartOffset() && rp.FetchOffset <= log.LogEndOffset():
					var news replica.News
					hw, news, err = p.Replica.FollowerFetched(r.ReplicaID, rp.FetchOffset, rp.LogStartOffset)
					failed = failed || news == replica.LogStartNews
					soon = soon || news == replica.HighWatermarkNews
					upTo = log.LogEndOffset()
					fallthrough
				default:
					if err == nil {
						var n int
						n, err = readPartition(log, rp, upTo, hw, &remaining, total == 0, &partition, buffers)
						total += n
					}
				}
			}
			if err != nil {
				partition.ErrorCode = errorCode(err)
				failed = true
			}
			topic.Partitions = append(topic.Partitions, partition)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	return resp, total, failed, soon
}

func fetchTopic(cl *cluster.Cluster, version int16, rt kmsg.FetchRequestTopic) (*cluster.Topic, error) {
	if version >= 13 {
		if t, ok := cl.TopicByID(rt.TopicID); ok {
			return t, nil
		}
		return nil, kerr.UnknownTopicID
	}
	if t, ok := cl.Topic(rt.Topic); ok {
		return t, nil
	}
	return nil, kerr.UnknownTopicOrPartition
}

// diverged fills in the diverging epoch when the fetcher's last fetched
// epoch does not end where this log has it end, or not before the fetch
// offset (Kafka's rule): the fetcher must truncate first.
func diverged(log *storage.Log, version int16, rp kmsg.FetchRequestTopicPartition, out *kmsg.FetchResponseTopicPartition) bool {
	if version < 12 || rp.LastFetchedEpoch < 0 {
		return false
	}
	epoch, end := log.EndOffsetForEpoch(rp.LastFetchedEpoch)
	if epoch == rp.LastFetchedEpoch && end >= rp.FetchOffset {
		return false
	}
	out.DivergingEpoch.Epoch, out.DivergingEpoch.EndOffset = epoch, end
	return true
}

// readPartition fills one partition of the answer, reading below upTo, and
// returns how many record bytes it added. first says no partition before
// it returned data.
func readPartition(log *storage.Log, rp kmsg.FetchRequestTopicPartition, upTo, hw int64, remaining *int, first bool, out *kmsg.FetchResponseTopicPartition, buffers *fetchBuffers) (int, error) {
	out.HighWatermark = hw
	out.LastStableOffset = out.HighWatermark
	out.LogStartOffset = log.LogStartOffset()
	limit := min(int(rp.PartitionMaxBytes), *remaining)
	if limit <= 0 && !first {
		return 0, nil
	}
	buf := buffers.get()
	data, err := log.AppendReadUpTo(*buf, rp.FetchOffset, max(limit, 1), upTo)
	*buf = data
	if errors.Is(err, storage.ErrOffsetOutOfRange) {
		return 0, kerr.OffsetOutOfRange
	}
	if err != nil {
		return 0, err
	}
	if len(data) > limit && !first {
		return 0, nil // only the first partition with data may go over
	}
	if len(data) > 0 {
		out.RecordBatches = data
	}
	*remaining -= len(data)
	return len(data), nil
}
