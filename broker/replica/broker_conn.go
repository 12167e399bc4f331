package replica

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxResponseBytes bounds a response a follower reads: a fetch asks for
// fetchMaxBytes, but the first batch always comes whole, and a topic's
// max.message.bytes may be up to a request's size (100 MiB by default).
const maxResponseBytes = 256 << 20

// brokerConn is one connection to another broker's Kafka listener, for
// one request at a time: kmsg encodes and decodes, as for clients.
type brokerConn struct {
	conn          net.Conn
	reader        *bufio.Reader
	formatter     *kmsg.RequestFormatter
	correlationID int32
	buf           []byte
}

func dialBroker(ctx context.Context, address string, self int32) (*brokerConn, error) {
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	clientID := fmt.Sprintf("kqbroker-%d-replica-fetcher", self)
	return &brokerConn{conn: conn, reader: bufio.NewReaderSize(conn, 64<<10), formatter: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}, nil
}

// request sends req and reads its response, within timeout.
func (b *brokerConn) request(req kmsg.Request, timeout time.Duration) (kmsg.Response, error) {
	b.correlationID++
	_ = b.conn.SetDeadline(time.Now().Add(timeout))
	b.buf = b.formatter.AppendRequest(b.buf[:0], req, b.correlationID)
	if _, err := b.conn.Write(b.buf); err != nil {
		return nil, err
	}
	var header [8]byte
	if _, err := io.ReadFull(b.reader, header[:]); err != nil {
		return nil, err
	}
	size := int32(binary.BigEndian.Uint32(header[:4]))
	if size < 4 || size > maxResponseBytes {
		return nil, fmt.Errorf("a response of %d bytes", size)
	}
	if got := int32(binary.BigEndian.Uint32(header[4:])); got != b.correlationID {
		return nil, fmt.Errorf("response to request %d, expected %d", got, b.correlationID)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(b.reader, body); err != nil {
		return nil, err
	}
	resp := req.ResponseKind()
	if resp.IsFlexible() && req.Key() != 18 { // ApiVersions answers with the old header
		count, n := binary.Uvarint(body)
		if n <= 0 || count != 0 {
			return nil, errors.New("a response header with tagged fields kqbroker does not send")
		}
		body = body[n:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decoding the %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}

func (b *brokerConn) close() { _ = b.conn.Close() }
