package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// requestHeaderMinSize: api key, api version, correlation id, client id length.
const requestHeaderMinSize = 10

// conn is one client connection. Its reader goroutine reads a request,
// handles it and queues the response; its writer goroutine writes responses
// in the order the requests came. Requests of one connection are handled one
// at a time, in order, as Kafka does, so a producer's pipelined batches are
// appended in the order it sent them. A handler may leave the wait for
// durability (acks=all, offset commits) to the writer: the reader goes on
// to the next request, whose fsync can then be shared.
type conn struct {
	server    *Server
	netConn   net.Conn
	logger    *slog.Logger
	responses chan pendingResponse
	// finishLater and releaseLater are set by a handler during dispatch;
	// reader goroutine only.
	finishLater  func()
	releaseLater func()

	mu       sync.Mutex
	clientID string
	stopped  bool
	// stop is closed by stopReading: a wait for request memory ends.
	stop chan struct{}
}

// pendingResponse is a response on its way to the writer.
type pendingResponse struct {
	header         requestHeader
	resp           kmsg.Response
	flexibleHeader bool
	// finish, when set, runs on the writer before the response is encoded:
	// it waits for durability and fills in the outcome.
	finish func()
	began  time.Time // when the request was read, for its latency metric
	// release, when set, runs on the writer once the response is encoded:
	// it gives back the buffers the response pointed into.
	release func()
}

// deferFinish lets the handler being run complete its response on the
// writer goroutine.
func (c *conn) deferFinish(finish func()) { c.finishLater = finish }

// deferRelease hands the writer what to free once the handler's response
// is encoded (pooled buffers it refers to).
func (c *conn) deferRelease(release func()) { c.releaseLater = release }

// requestHeader is Kafka's request header, v1 or v2.
type requestHeader struct {
	key           int16
	version       int16
	correlationID int32
	clientID      string
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{server: s, netConn: nc, logger: s.logger.With("client", nc.RemoteAddr().String()),
		responses: make(chan pendingResponse, 64), stop: make(chan struct{})}
}

// stopReading makes the reader stop after the request it is on.
func (c *conn) stopReading() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		c.stopped = true
		close(c.stop)
	}
	_ = c.netConn.SetReadDeadline(time.Now())
}

// extendReadDeadline gives the client connections_max_idle_ms to send its
// next bytes; it reports false once the connection is stopping (whose
// deadline, now, must stay).
func (c *conn) extendReadDeadline(idle time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	_ = c.netConn.SetReadDeadline(time.Now().Add(idle))
	return true
}

func (c *conn) isStopped() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

func (c *conn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.responses)
	<-writerDone
	_ = c.netConn.Close()
}

func (c *conn) writeLoop() {
	w := bufio.NewWriterSize(c.netConn, 64<<10)
	idle := time.Duration(c.server.cluster.Config().ConnectionsMaxIdleMs) * time.Millisecond
	failed := false
	var frame []byte // reused from response to response
	for pending := range c.responses {
		if pending.finish != nil && !c.runFinish(pending) {
			failed = true
			_ = c.netConn.Close()
		}
		if failed {
			if pending.release != nil {
				pending.release()
			}
			continue // drain, so the reader never blocks
		}
		frame = appendResponse(frame[:0], pending)
		if pending.release != nil {
			pending.release()
		}
		c.server.metrics.Request(pending.header.key, pending.header.version, time.Since(pending.began))
		// A client that stops reading its answers is as good as idle; the
		// deadline keeps it from holding its reader (and the request
		// memory of the request under way) for ever.
		_ = c.netConn.SetWriteDeadline(time.Now().Add(idle))
		_, err := w.Write(frame)
		if cap(frame) > maxPooledBuffer {
			frame = nil
		}
		if err != nil {
			failed = true
			_ = c.netConn.Close()
			continue
		}
		if len(c.responses) == 0 {
			if err := w.Flush(); err != nil {
				failed = true
				_ = c.netConn.Close()
			}
		}
	}
	if !failed {
		_ = w.Flush()
	}
}

// readLoop reads and handles requests one at a time. Each request's bytes
// are held against the server's request memory from the moment its header
// names an API this broker serves until it is handled (see requestMemory).
func (c *conn) readLoop() {
	r := bufio.NewReaderSize(c.netConn, 64<<10)
	cfg := c.server.cluster.Config()
	idle := time.Duration(cfg.ConnectionsMaxIdleMs) * time.Millisecond
	var sizeBytes [4]byte
	for {
		if !c.extendReadDeadline(idle) {
			return
		}
		if n, err := io.ReadFull(r, sizeBytes[:]); err != nil {
			c.logReadEnd(err, n == 0, idle)
			return
		}
		size := int32(binary.BigEndian.Uint32(sizeBytes[:]))
		if size < requestHeaderMinSize || size > cfg.MaxRequestBytes {
			c.logger.Warn("closing connection: request size out of bounds", "size", size, "max_request_bytes", cfg.MaxRequestBytes, "client_id", c.currentClientID())
			return
		}
		// Nothing is reserved for a request until its header names an API
		// and version this broker serves.
		key, err := r.Peek(4)
		if err != nil {
			c.logReadEnd(err, false, idle)
			return
		}
		apiKey, apiVersion := int16(binary.BigEndian.Uint16(key)), int16(binary.BigEndian.Uint16(key[2:]))
		if err := checkAPI(apiKey, apiVersion); err != nil {
			c.logger.Warn("closing connection", "err", err, "client_id", c.currentClientID())
			return
		}
		if !c.server.memory.acquire(int64(size), c.stop) {
			return
		}
		err = c.readAndHandle(r, int(size), apiKey == produceKey, idle)
		c.server.memory.release(int64(size))
		if err != nil || c.isStopped() {
			return
		}
	}
}

// readAndHandle reads a request body of size bytes and handles it; an
// error has been logged and closes the connection.
func (c *conn) readAndHandle(r *bufio.Reader, size int, produce bool, idle time.Duration) error {
	// A produce request's body is done with once it is appended (the
	// handler keeps none of it), so it is read into a pooled buffer. Other
	// requests' bodies may be kept (group metadata points into them) and
	// are allocated.
	var pooled *[]byte
	var into []byte
	if produce {
		pooled = bufferPool.Get().(*[]byte)
		into = (*pooled)[:0]
	}
	body, err := c.readBody(r, size, into, idle)
	if pooled != nil {
		*pooled = body
		defer putBuffer(pooled)
	}
	if err != nil {
		c.logReadEnd(err, false, idle)
		return err
	}
	if err := c.handleFrame(body); err != nil {
		c.logger.Warn("closing connection", "err", err, "client_id", c.currentClientID())
		return err
	}
	return nil
}

// readBody reads size bytes into buf, growing it as the bytes arrive
// rather than to the size the client announced: a client that stops
// halfway costs what it sent, not what it promised.
func (c *conn) readBody(r *bufio.Reader, size int, buf []byte, idle time.Duration) ([]byte, error) {
	const firstChunk = 64 << 10
	body := buf[:0]
	for len(body) < size {
		if len(body) == cap(body) {
			grown := make([]byte, len(body), min(size, max(2*cap(body), firstChunk)))
			copy(grown, body)
			body = grown
		}
		if !c.extendReadDeadline(idle) {
			return body, os.ErrDeadlineExceeded
		}
		// Never past size: a pooled buffer may be larger, and the bytes
		// after this request belong to the next one.
		n, err := r.Read(body[len(body):min(cap(body), size)])
		body = body[:len(body)+n]
		if err != nil && len(body) < size {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return body, err
		}
	}
	return body, nil
}

// logReadEnd logs why reading stopped. A connection closed between
// requests (a port probe, a client going away) is routine: debug. One
// closed halfway through a request is worth a line; so is one closed for
// idling.
func (c *conn) logReadEnd(err error, betweenRequests bool, idle time.Duration) {
	switch {
	case c.isStopped():
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.logger.Debug("closing idle connection", "idle", idle, "connections_max_idle_ms", idle.Milliseconds(), "client_id", c.currentClientID())
	case betweenRequests:
		c.logger.Debug("connection closed", "err", err, "client_id", c.currentClientID())
	default:
		c.logger.Info("connection closed mid-request", "err", err, "client_id", c.currentClientID())
	}
}

func (c *conn) currentClientID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clientID
}

// runFinish runs a response's finish step; a panic there closes this
// connection, never the broker.
func (c *conn) runFinish(pending pendingResponse) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			c.logger.Error("closing connection: internal error completing a response", "api_key", pending.header.key, "err", p)
			ok = false
		}
	}()
	pending.finish()
	return true
}

// handleFrame parses, handles and answers one request. A panic in a
// handler closes this connection, never the broker.
func (c *conn) handleFrame(body []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error handling a request: %v", p)
		}
	}()
	c.finishLater, c.releaseLater = nil, nil
	began := time.Now()
	header, resp, flexibleHeader, err := c.dispatch(body)
	if err != nil {
		return err
	}
	if resp != nil {
		c.responses <- pendingResponse{header: header, resp: resp, flexibleHeader: flexibleHeader, finish: c.finishLater, release: c.releaseLater, began: began}
		return nil
	}
	c.server.metrics.Request(header.key, header.version, time.Since(began))
	if c.finishLater != nil {
		c.finishLater() // nothing to answer, but the work must end
	}
	if c.releaseLater != nil {
		c.releaseLater()
	}
	return nil
}

// dispatch parses a request and runs its handler. The response is nil when
// none is due (acks=0).
func (c *conn) dispatch(body []byte) (requestHeader, kmsg.Response, bool, error) {
	header, rest, err := parseRequestHeaderStart(body)
	if err != nil {
		return header, nil, false, err
	}
	c.mu.Lock()
	c.clientID = header.clientID
	c.mu.Unlock()

	h, known := handlers[header.key]
	if header.key == apiVersionsKey && (!known || header.version > h.maxVersion) {
		// Clients probe with their newest ApiVersions; the answer is v0 with
		// UNSUPPORTED_VERSION and our ranges, so they can retry lower.
		return header, unsupportedAPIVersionsResponse(), false, nil
	}
	if err := checkAPI(header.key, header.version); err != nil {
		return header, nil, false, err
	}
	req := kmsg.RequestForKey(header.key)
	req.SetVersion(header.version)
	if req.IsFlexible() {
		if rest, err = skipTaggedFields(rest); err != nil {
			return header, nil, false, fmt.Errorf("api key %d v%d: request header: %w", header.key, header.version, err)
		}
	}
	if err := req.ReadFrom(rest); err != nil {
		return header, nil, false, fmt.Errorf("api key %d v%d: malformed request: %w", header.key, header.version, err)
	}
	resp, err := h.handle(c, req)
	if err != nil {
		return header, nil, false, fmt.Errorf("api key %d v%d: %w", header.key, header.version, err)
	}
	if resp == nil {
		return header, nil, false, nil
	}
	return header, resp, resp.IsFlexible() && header.key != apiVersionsKey, nil
}

// checkAPI reports whether a request's api key and version are served.
// An ApiVersions request of any version is: a too-new one is answered
// with the supported ranges.
func checkAPI(key, version int16) error {
	h, known := handlers[key]
	switch {
	case key == apiVersionsKey:
		return nil
	case !known:
		return fmt.Errorf("api key %d is not supported by kqbroker", key)
	case version < h.minVersion || version > h.maxVersion:
		return fmt.Errorf("api key %d v%d: kqbroker supports v%d to v%d", key, version, h.minVersion, h.maxVersion)
	}
	return nil
}

// appendResponse frames a response onto frame: size, correlation id,
// tagged fields when the response header is v1 (flexible; never for
// ApiVersions), body.
func appendResponse(frame []byte, p pendingResponse) []byte {
	start := len(frame)
	frame = append(frame, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(frame[start+4:], uint32(p.header.correlationID))
	if p.flexibleHeader {
		frame = append(frame, 0)
	}
	frame = p.resp.AppendTo(frame)
	binary.BigEndian.PutUint32(frame[start:], uint32(len(frame)-start-4))
	return frame
}

// parseRequestHeaderStart reads the header fields common to v1 and v2; the
// caller skips v2's tagged fields once it knows the request is flexible.
func parseRequestHeaderStart(body []byte) (requestHeader, []byte, error) {
	r := kbin.Reader{Src: body}
	h := requestHeader{key: r.Int16(), version: r.Int16(), correlationID: r.Int32()}
	if clientID := r.NullableString(); clientID != nil {
		h.clientID = *clientID
	}
	if !r.Ok() {
		return h, nil, fmt.Errorf("api key %d: request header truncated", h.key)
	}
	return h, r.Src, nil
}

func skipTaggedFields(b []byte) ([]byte, error) {
	r := kbin.Reader{Src: b}
	for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
		r.Uvarint() // tag
		r.Span(int(r.Uvarint()))
	}
	if !r.Ok() {
		return nil, errors.New("bad tagged fields")
	}
	return r.Src, nil
}
