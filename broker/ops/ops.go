// Package ops is the operator's view of a Kafka-protocol cluster (kqbroker
// or Apache Kafka), over the protocol with franz-go's kadm and kgo: topics
// with offsets and sizes, consumer groups with lag, offset resets, a
// message browser. kqctl prints it; the web console serves it as JSON.
package ops

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Client talks to one cluster.
type Client struct {
	Bootstrap []string
	kgo       *kgo.Client
	admin     *kadm.Client
}

// Dial makes a client for the comma-separated bootstrap addresses. It
// does not connect until the first call.
func Dial(bootstrap string) (*Client, error) {
	seeds := strings.Split(bootstrap, ",")
	// kadm answers from the client's metadata cache when it is younger
	// than MetadataMinAge (5s by default): a console would then miss a
	// topic created a moment ago, so the cache is kept short.
	cl, err := kgo.NewClient(kgo.SeedBrokers(reachable(seeds)...), kgo.DialTimeout(5*time.Second), kgo.RequestRetries(2),
		kgo.MetadataMinAge(250*time.Millisecond))
	if err != nil {
		return nil, err
	}
	return &Client{Bootstrap: seeds, kgo: cl, admin: kadm.NewClient(cl)}, nil
}

// reachable are the seeds that accept a connection, tried side by side
// for up to a second; all of them when none does (the error then names
// them). franz-go sends its first requests, FindCoordinator among them, to
// any seed and does not try another when that one is down: an operator
// listing every broker of a cluster that lost one would see a verb fail
// one time in three.
func reachable(seeds []string) []string {
	if len(seeds) < 2 {
		return seeds
	}
	up := make([]bool, len(seeds))
	var wg sync.WaitGroup
	for i, seed := range seeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if conn, err := net.DialTimeout("tcp", seed, time.Second); err == nil {
				_ = conn.Close()
				up[i] = true
			}
		}()
	}
	wg.Wait()
	var live []string
	for i, seed := range seeds {
		if up[i] {
			live = append(live, seed)
		}
	}
	if len(live) == 0 {
		return seeds
	}
	return live
}

// Close closes the connections.
func (c *Client) Close() { c.kgo.Close() }

// Kgo is the underlying client, for producing and consuming.
func (c *Client) Kgo() *kgo.Client { return c.kgo }

// explain turns transport and protocol errors into what the operator can do.
func (c *Client) explain(err error) error {
	if err == nil {
		return nil
	}
	var netErr interface{ Timeout() bool }
	if strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host") ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout() {
		return fmt.Errorf("cannot reach the broker at %s (%v); is it running? set --bootstrap-server or KQ_BROKERS", strings.Join(c.Bootstrap, ","), err)
	}
	return err
}

// explainPartitions names the partitions whose offsets could not be
// listed and why (a partition without a leader: its broker is down).
func (c *Client) explainPartitions(topic string, listed kadm.ListedOffsets, err error) error {
	var failed []string
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			failed = append(failed, fmt.Sprintf("partition %d: %v", o.Partition, o.Err))
		}
	})
	if len(failed) == 0 && errors.Is(err, kerr.LeaderNotAvailable) {
		failed = append(failed, "a partition has no leader")
	}
	if len(failed) == 0 {
		return c.explain(err)
	}
	return fmt.Errorf("topic %s: %s; a partition without a leader is served again once its broker is back (kqctl topic describe %s shows the leaders)", topic, strings.Join(failed, "; "), topic)
}

// UnknownTopicError says how to create the missing topic.
type UnknownTopicError struct {
	Topic string
	// AutoCreateOff: the broker was asked to create it on first use and
	// refused.
	AutoCreateOff bool
}

func (e *UnknownTopicError) Error() string {
	if e.AutoCreateOff {
		return fmt.Sprintf("topic %q does not exist and the broker does not create topics on first use (auto_create_topics is off); create it with: kqctl topic create %s -p 3", e.Topic, e.Topic)
	}
	return fmt.Sprintf("topic %q does not exist; create it with: kqctl topic create %s -p 3", e.Topic, e.Topic)
}

func (e *UnknownTopicError) Unwrap() error { return kerr.UnknownTopicOrPartition }

// ClusterInfo is what cluster describe shows.
type ClusterInfo struct {
	ClusterID    string   `json:"cluster_id"`
	ControllerID int32    `json:"controller_id"`
	Brokers      []Broker `json:"brokers"`
	Topics       int      `json:"topics"`
	Partitions   int      `json:"partitions"`
	// UnderReplicated counts partitions whose ISR is smaller than their
	// replicas; Offline those without a leader.
	UnderReplicated int `json:"under_replicated_partitions"`
	Offline         int `json:"offline_partitions"`
}

// Broker is one broker of the cluster.
type Broker struct {
	NodeID int32   `json:"node_id"`
	Host   string  `json:"host"`
	Port   int32   `json:"port"`
	Rack   *string `json:"rack,omitempty"`
	// Fenced: registered but out of service (stopped, or silent past its
	// session timeout); listed only by brokers that say so (DescribeCluster v2).
	Fenced bool `json:"fenced,omitempty"`
}

// Cluster describes the cluster: its brokers in service and fenced, the
// controller, and how many partitions are under-replicated or offline.
func (c *Client) Cluster(ctx context.Context) (ClusterInfo, error) {
	meta, err := c.admin.Metadata(ctx)
	if err != nil {
		return ClusterInfo{}, c.explain(err)
	}
	info := ClusterInfo{ClusterID: meta.Cluster, ControllerID: meta.Controller}
	for _, b := range meta.Brokers {
		info.Brokers = append(info.Brokers, Broker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack})
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers = true
	if resp, err := req.RequestWith(ctx, c.kgo); err == nil && resp.ErrorCode == 0 {
		for _, b := range resp.Brokers {
			if b.IsFenced {
				info.Brokers = append(info.Brokers, Broker{NodeID: b.NodeID, Host: b.Host, Port: b.Port, Rack: b.Rack, Fenced: true})
			}
		}
		slices.SortFunc(info.Brokers, func(a, b Broker) int { return int(a.NodeID - b.NodeID) })
	}
	for _, t := range meta.Topics {
		if t.IsInternal {
			continue
		}
		info.Topics++
		info.Partitions += len(t.Partitions)
		for _, p := range t.Partitions {
			if p.Leader < 0 {
				info.Offline++
			}
			if len(p.ISR) < len(p.Replicas) {
				info.UnderReplicated++
			}
		}
	}
	return info, nil
}
