package server_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

// dialFrom connects to addr from a loopback address of the test's choice,
// so one test can be several client IPs.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := dialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectServed checks the connection answers an ApiVersions request.
func expectServed(t *testing.T, c net.Conn) {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "limits-test", "1"
	if _, err := c.Write(frame(req, 7)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if id, _ := readFrame(t, c); id != 7 {
		t.Fatalf("correlation id %d, want 7", id)
	}
}

// expectOpen checks the broker has not closed c within wait.
func expectOpen(t *testing.T, c net.Conn, wait time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("connection closed or answered: %v", err)
	}
}

func TestConnectionLimits(t *testing.T) {
	brokertest.SingleBroker(t, "it counts the connections one broker accepts from loopback addresses, and the other brokers' follower fetches connect to it from 127.0.0.1 too, some time after the start")
	b := startBroker(t, func(c *config.Config) {
		c.MaxConnections = 5
		c.MaxConnectionsPerIP = 3
	})
	var first []net.Conn
	for range 3 {
		c := dialFrom(t, "127.0.0.1", b.Addr)
		expectServed(t, c)
		first = append(first, c)
	}
	expectClosed(t, dialFrom(t, "127.0.0.1", b.Addr)) // a fourth from one address

	for range 2 {
		expectServed(t, dialFrom(t, "127.0.0.2", b.Addr))
	}
	expectClosed(t, dialFrom(t, "127.0.0.3", b.Addr)) // a sixth in all

	// A closed connection frees its place.
	first[0].Close()
	for deadline := time.Now().Add(5 * time.Second); ; {
		c := dialFrom(t, "127.0.0.1", b.Addr)
		req := kmsg.NewPtrApiVersionsRequest()
		if _, err := c.Write(frame(req, 1)); err == nil {
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			var size [4]byte
			if _, err := c.Read(size[:]); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("a connection was not accepted after another from its address closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	b := startBroker(t, func(c *config.Config) { c.ConnectionsMaxIdleMs = 300 })
	silent := dial(t, b.Addr)
	halfway := dial(t, b.Addr)
	if _, err := halfway.Write(binary.BigEndian.AppendUint32(nil, 1000)); err != nil { // announces 1000 bytes, sends none
		t.Fatal(err)
	}
	busy := dial(t, b.Addr)
	began := time.Now()
	for time.Since(began) < time.Second {
		expectServed(t, busy) // a connection in use is never idle
		time.Sleep(100 * time.Millisecond)
	}
	expectClosed(t, silent)
	expectClosed(t, halfway)
	expectServed(t, busy)
}

func TestRequestsWaitForRequestMemory(t *testing.T) {
	const MiB = 1 << 20
	b := startBroker(t, func(c *config.Config) {
		c.MaxRequestBytes = 3 * MiB
		c.QueuedMaxRequestBytes = 4 * MiB // 3 MiB open to large requests, 1 MiB kept for small ones
	})
	// The first large request holds the 3 MiB, sending a third of its body.
	holder := dial(t, b.Addr)
	if _, err := holder.Write(append(produceFrameStart(3*MiB), make([]byte, MiB)...)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	// The second sends all of its (malformed) 2 MiB; there is no room for
	// it, so the broker does not read it, and cannot yet find it malformed.
	waiter := dial(t, b.Addr)
	frameStart := produceFrameStart(2 * MiB)
	junk := bytes.Repeat([]byte{0xff}, 2*MiB-len(frameStart)+4) // not a produce body
	go func() { _, _ = waiter.Write(append(frameStart, junk...)) }()
	expectOpen(t, waiter, 300*time.Millisecond)

	// Small requests are still served.
	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if err := client.ProduceSync(testContext(t), &kgo.Record{Topic: "small", Value: []byte("served")}).FirstErr(); err != nil {
		t.Fatalf("a small produce while large requests hold their room: %v", err)
	}

	// The holder goes away: the waiter's turn comes, its request is read
	// and found malformed, and it is closed.
	holder.Close()
	expectClosed(t, waiter)
}

// produceFrameStart is a Produce v9 frame's size and header, announcing a
// body of size bytes.
func produceFrameStart(size int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(size))
	b = binary.BigEndian.AppendUint16(b, 0) // produce
	b = binary.BigEndian.AppendUint16(b, 9)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	return append(b, 0)
}

// TestPipelinedRequestsAfterALargeProduce: a produce body is read into a
// pooled buffer that an earlier, larger request may have grown; reading it
// must stop at the request's own size, or the next pipelined request is
// swallowed (a bug the first version of incremental reads had).
func TestPipelinedRequestsAfterALargeProduce(t *testing.T) {
	b := startBroker(t, nil)
	client, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.AllowAutoTopicCreation(), kgo.ProducerBatchMaxBytes(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := testContext(t)
	c := dial(t, b.Addr)
	for i := range 10 {
		// a large produce leaves a large buffer in the pool...
		if err := client.ProduceSync(ctx, &kgo.Record{Topic: "large", Value: bytes.Repeat([]byte{'x'}, 2<<20)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		// ...then a small produce (acks=0: no answer) and an ApiVersions
		// arrive in one write.
		produce := kmsg.NewPtrProduceRequest()
		produce.SetVersion(7)
		produce.Acks = 0
		versions := kmsg.NewPtrApiVersionsRequest()
		versions.SetVersion(3)
		versions.ClientSoftwareName, versions.ClientSoftwareVersion = "pipelined", "1"
		if _, err := c.Write(append(frame(produce, int32(2*i)), frame(versions, int32(2*i+1))...)); err != nil {
			t.Fatal(err)
		}
		if id, _ := readFrame(t, c); id != int32(2*i+1) {
			t.Fatalf("round %d: answer to correlation id %d, want the ApiVersions' %d", i, id, 2*i+1)
		}
	}
}
