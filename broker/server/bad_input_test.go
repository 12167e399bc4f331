package server_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/config"
)

// frame encodes a request with a v1 header (v2 when the request is flexible).
func frame(req kmsg.Request, correlationID int32) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(correlationID))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readFrame reads one response: its correlation id and body.
func readFrame(t *testing.T, c net.Conn) (int32, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	return int32(binary.BigEndian.Uint32(body)), body[4:]
}

// expectClosed checks the broker closed the connection.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("connection still open: read %d bytes", n)
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection still open after 5s")
	}
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	b := startBroker(t, func(c *config.Config) { c.MaxRequestBytes = 1 << 20 })
	healthy, err := kgo.NewClient(kgo.SeedBrokers(b.Addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer healthy.Close()
	ctx := testContext(t)
	mustServe := func(t *testing.T) {
		t.Helper()
		if err := healthy.ProduceSync(ctx, &kgo.Record{Topic: "healthy", Value: []byte("still here")}).FirstErr(); err != nil {
			t.Fatalf("broker stopped serving others: %v", err)
		}
	}
	metadataV1 := kmsg.NewPtrMetadataRequest()
	metadataV1.Version = 1
	produceV99 := frame(kmsg.NewPtrProduceRequest(), 1)
	binary.BigEndian.PutUint16(produceV99[6:], 99)
	unknownKey := frame(kmsg.NewPtrMetadataRequest(), 1)
	binary.BigEndian.PutUint16(unknownKey[4:], 999)
	truncated := frame(metadataV1, 1)                           // ends with the topic count: -1 (all topics)
	binary.BigEndian.PutUint32(truncated[len(truncated)-4:], 5) // five topics, none of them there
	oversized := binary.BigEndian.AppendUint32(nil, 1<<20+1)

	cases := []struct {
		name  string
		bytes []byte
		close bool // close the socket right after writing
	}{
		{"oversized frame", oversized, false},
		{"garbage (an HTTP request)", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false},
		{"negative size", []byte{0xff, 0xff, 0xff, 0xf0}, false},
		{"unknown api key", unknownKey, false},
		{"unsupported version", produceV99, false},
		{"malformed body", truncated, false},
		{"closed mid-request", append(binary.BigEndian.AppendUint32(nil, 100), 0, 3, 0, 1), true},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, b.Addr)
			if _, err := c.Write(tt.bytes); err != nil {
				t.Fatal(err)
			}
			if tt.close {
				c.Close()
			} else {
				expectClosed(t, c)
			}
			mustServe(t)
		})
	}
}

func TestAPIVersionsFallbackAndAcksZero(t *testing.T) {
	b := startBroker(t, nil)
	t.Run("a newer ApiVersions gets the v0 answer with the ranges", func(t *testing.T) {
		c := dial(t, b.Addr)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		probe := frame(req, 7)
		binary.BigEndian.PutUint16(probe[6:], 9) // v9: newer than any broker speaks
		if _, err := c.Write(probe); err != nil {
			t.Fatal(err)
		}
		correlationID, body := readFrame(t, c)
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		if err := resp.ReadFrom(body); err != nil {
			t.Fatal(err)
		}
		if correlationID != 7 || resp.ErrorCode != kerr.UnsupportedVersion.Code || len(resp.ApiKeys) < 5 {
			t.Fatalf("correlation %d, error %d, %d keys", correlationID, resp.ErrorCode, len(resp.ApiKeys))
		}
	})
	t.Run("acks=0 produce gets no response", func(t *testing.T) {
		c := dial(t, b.Addr)
		produce := kmsg.NewPtrProduceRequest()
		produce.Version = 7
		produce.Acks = 0
		topic := kmsg.NewProduceRequestTopic()
		topic.Topic = "acks0"
		partition := kmsg.NewProduceRequestTopicPartition()
		partition.Records = validBatch()
		topic.Partitions = append(topic.Partitions, partition)
		produce.Topics = append(produce.Topics, topic)
		versions := kmsg.NewPtrApiVersionsRequest()
		versions.Version = 0
		if _, err := c.Write(append(frame(produce, 1), frame(versions, 2)...)); err != nil {
			t.Fatal(err)
		}
		if correlationID, _ := readFrame(t, c); correlationID != 2 {
			t.Fatalf("first response has correlation id %d; the acks=0 produce (1) must get none", correlationID)
		}
	})
}

// validBatch is one record batch, encoded by franz-go's kmsg.
func validBatch() []byte {
	record := kmsg.Record{Value: []byte("hello")}
	body := record.AppendTo(nil)
	record.Length = int32(len(body) - 1)
	batch := kmsg.RecordBatch{Magic: 2, ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1, NumRecords: 1,
		FirstTimestamp: time.Now().UnixMilli(), MaxTimestamp: time.Now().UnixMilli(), Records: record.AppendTo(nil)}
	out := batch.AppendTo(nil)
	binary.BigEndian.PutUint32(out[8:], uint32(len(out)-12))
	binary.BigEndian.PutUint32(out[17:], crc32c(out[21:]))
	return out
}
