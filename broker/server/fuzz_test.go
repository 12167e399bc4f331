package server

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/config"
)

// FuzzRequest feeds arbitrary request bodies (after the size prefix) to the
// request path: header parsing, kmsg decoding and the handlers. Nothing may
// panic; errors close the connection.
func FuzzRequest(f *testing.F) {
	for _, req := range []kmsg.Request{
		kmsg.NewPtrApiVersionsRequest(), kmsg.NewPtrMetadataRequest(), kmsg.NewPtrProduceRequest(),
		kmsg.NewPtrFetchRequest(), kmsg.NewPtrListOffsetsRequest(), kmsg.NewPtrCreateTopicsRequest(),
		kmsg.NewPtrDescribeConfigsRequest(), kmsg.NewPtrInitProducerIDRequest(), kmsg.NewPtrDeleteRecordsRequest(),
	} {
		h := handlers[req.Key()]
		for _, v := range []int16{h.minVersion, h.maxVersion} {
			req.SetVersion(v)
			body := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
			body = binary.BigEndian.AppendUint16(body, uint16(v))
			body = append(body, 0, 0, 0, 1, 0, 4, 'f', 'u', 'z', 'z')
			if req.IsFlexible() {
				body = append(body, 0)
			}
			f.Add(req.AppendTo(body))
		}
	}
	cfg := config.Default()
	cfg.DataDir = f.TempDir()
	cfg.DefaultPartitions = 1
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	cl, err := cluster.Open(cfg, clock.System{}, logger)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { cl.Close() })
	server := New(cl, logger)
	close(server.stopping) // long polls answer at once
	f.Fuzz(func(t *testing.T, body []byte) {
		client, peer := net.Pipe()
		defer client.Close()
		defer peer.Close()
		_, resp, _, err := newConn(server, peer).dispatch(body)
		if err == nil && resp != nil {
			resp.AppendTo(nil) // encoding the answer must not panic either
		}
	})
}
