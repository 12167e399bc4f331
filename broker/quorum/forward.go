package quorum

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/kqstack/kqstack/broker/metadata"
)

// A member that does not lead forwards its proposals to the leader over
// the controller listener, which raft shares: a connection that opens
// with forwardMagic carries one proposal; any other is raft's (its RPC
// types are 0 to 4).
//
//	request   | 'F' | length u32 | entry (metadata.EncodeBatch) |
//	answer    | status u8 | index u64 | length u32 | message |
//
// status: forwardOK, forwardRefused (the image refused the batch; message:
// why), forwardTopicExists (message: the name), forwardNotLeader,
// forwardFailed (message: raft's error), forwardStale (a partition change
// decided on another state; message: its code byte, then why). index is
// the entry's raft index when it was committed, refused ones included (the
// image refuses them as it applies them): the proposer waits until it has
// applied that far before answering either way, so it reads the state the
// decision was made on; 0 otherwise.
const forwardMagic = 'F'

// heartbeatMagic opens a broker's heartbeat to the leader:
//
//	request   | 'H' | broker id u32 | broker epoch u64 |
//	answer    | status u8 |          forwardOK, or forwardNotLeader
const heartbeatMagic = 'H'

// joinMagic asks the leader to add a non-voting member:
//
//	request   | 'J' | node id u32 | address length u16 | address |
//	answer    | status u8 | length u32 | message |
const joinMagic = 'J'

const (
	forwardOK byte = iota
	forwardRefused
	forwardTopicExists
	forwardNotLeader
	forwardFailed
	forwardStale
)

// maxForwardBytes bounds a forwarded entry before it is allocated.
const maxForwardBytes = 16 << 20

// dialLeader connects to the leader's controller listener, with ctx's
// deadline on the connection.
func (q *Quorum) dialLeader(ctx context.Context, purpose string) (net.Conn, raft.ServerAddress, error) {
	address := raft.ServerAddress(q.leaderAddress()) // where this broker reaches it
	if address == "" {
		return nil, "", fmt.Errorf("%w: no leader is known yet", ErrNotLeader)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, address, fmt.Errorf("%s to the metadata leader at %s: %w", purpose, address, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	return conn, address, nil
}

// forward sends an entry to the leader and returns its raft index, also
// with the image's refusal.
func (q *Quorum) forward(ctx context.Context, data []byte) (uint64, error) {
	conn, address, err := q.dialLeader(ctx, "forwarding")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	request := binary.BigEndian.AppendUint32([]byte{forwardMagic}, uint32(len(data)))
	if _, err := conn.Write(append(request, data...)); err != nil {
		return 0, fmt.Errorf("forwarding to the metadata leader at %s: %w", address, err)
	}
	var header [13]byte
	if _, err := io.ReadFull(conn, header[:]); err != nil {
		return 0, fmt.Errorf("the metadata leader at %s did not answer: %w", address, err)
	}
	status, index, length := header[0], binary.BigEndian.Uint64(header[1:]), binary.BigEndian.Uint32(header[9:])
	if length > maxForwardBytes {
		return 0, fmt.Errorf("the metadata leader at %s answered %d bytes", address, length)
	}
	message := make([]byte, length)
	if _, err := io.ReadFull(conn, message); err != nil {
		return 0, fmt.Errorf("the metadata leader at %s did not answer: %w", address, err)
	}
	switch status {
	case forwardOK:
		return index, nil
	case forwardRefused:
		return index, errors.New(string(message))
	case forwardTopicExists:
		return index, &metadata.TopicExistsError{Name: string(message)}
	case forwardStale:
		if len(message) == 0 {
			return index, &metadata.StaleChangeError{Reason: "refused by the leader"}
		}
		return index, &metadata.StaleChangeError{Code: metadata.StaleCode(message[0]), Reason: string(message[1:])}
	case forwardNotLeader:
		return 0, fmt.Errorf("%w: %s moved on", ErrNotLeader, address)
	}
	return 0, fmt.Errorf("metadata leader at %s: %s", address, message)
}

// serveMember answers a member's message: a forwarded entry or a
// heartbeat.
func (q *Quorum) serveMember(conn net.Conn, magic byte) {
	switch magic {
	case heartbeatMagic:
		q.serveHeartbeat(conn)
		return
	case sessionMagic:
		q.serveHeartbeatSession(conn)
		return
	case joinMagic:
		q.serveJoin(conn)
		return
	}
	q.serveForward(conn)
}

// serveHeartbeat passes a broker's heartbeat to the leader's hook.
func (q *Quorum) serveHeartbeat(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var body [12]byte
	if _, err := io.ReadFull(conn, body[:]); err != nil {
		return
	}
	status := forwardOK
	if !q.IsLeader() {
		status = forwardNotLeader
	} else if q.cfg.OnHeartbeat != nil {
		q.cfg.OnHeartbeat(int32(binary.BigEndian.Uint32(body[:])), int64(binary.BigEndian.Uint64(body[4:])), 0)
	}
	_, _ = conn.Write([]byte{status})
}

// Heartbeat tells the leader this broker (id, registered epoch) is alive:
// on the leader, its own hook; elsewhere over the heartbeat session
// (heartbeat_session.go).
func (q *Quorum) Heartbeat(ctx context.Context, brokerID int32, epoch int64) error {
	if q.IsLeader() {
		q.session.close()
		if q.cfg.OnHeartbeat != nil {
			q.cfg.OnHeartbeat(brokerID, epoch, 0)
		}
		return nil
	}
	return q.heartbeatRemote(ctx, brokerID, epoch)
}

// serveForward applies one forwarded entry on the leader and answers.
func (q *Quorum) serveForward(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var length [4]byte
	if _, err := io.ReadFull(conn, length[:]); err != nil {
		return
	}
	n := binary.BigEndian.Uint32(length[:])
	if n > maxForwardBytes {
		q.cfg.Logger.Warn("closing a controller connection: forwarded entry too large", "bytes", n, "peer", conn.RemoteAddr().String())
		return
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(conn, data); err != nil {
		return
	}
	status, index, message := forwardOK, uint64(0), ""
	if _, err := metadata.DecodeBatch(data); err != nil {
		status, message = forwardRefused, err.Error()
	} else {
		future := q.raft.Apply(data, 10*time.Second)
		var exists *metadata.TopicExistsError
		switch err := future.Error(); {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
			status = forwardNotLeader
		case err != nil:
			status, message = forwardFailed, err.Error()
		default:
			index = future.Index()
			switch result := future.Response().(type) {
			case *metadata.Image:
			case error:
				var stale *metadata.StaleChangeError
				switch {
				case errors.As(result, &exists):
					status, message = forwardTopicExists, exists.Name
				case errors.As(result, &stale):
					status, message = forwardStale, string([]byte{byte(stale.Code)})+stale.Reason
				default:
					status, message = forwardRefused, result.Error()
				}
			}
		}
	}
	answer := append([]byte{status}, binary.BigEndian.AppendUint64(nil, index)...)
	answer = binary.BigEndian.AppendUint32(answer, uint32(len(message)))
	_, _ = conn.Write(append(answer, message...))
}

// waitApplied waits until this member has applied index.
func (q *Quorum) waitApplied(ctx context.Context, index uint64) error {
	for q.fsm.applied.Load() < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the metadata change at index %d was committed but not yet applied here: %w", index, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// streamLayer is raft's network over the listener the broker opened
// (controller_listen): it sorts accepted connections into raft's and
// forwarded proposals by their first byte.
type streamLayer struct {
	listener  net.Listener
	advertise net.Addr
	forwarded func(conn net.Conn, magic byte)
	raftConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newStreamLayer(listener net.Listener, advertise net.Addr, forwarded func(net.Conn, byte)) *streamLayer {
	s := &streamLayer{listener: listener, advertise: advertise, forwarded: forwarded, raftConns: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s
}

func (s *streamLayer) acceptLoop() {
	for {
		conn, err := s.listener.Accept()
		if err != nil {
			_ = s.Close()
			return
		}
		go s.sort(conn)
	}
}

func (s *streamLayer) sort(conn net.Conn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	first := make([]byte, 1)
	if _, err := io.ReadFull(conn, first); err != nil {
		_ = conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	if first[0] == forwardMagic || first[0] == heartbeatMagic || first[0] == sessionMagic || first[0] == joinMagic {
		s.forwarded(conn, first[0])
		return
	}
	select {
	case s.raftConns <- &prefixedConn{Conn: conn, prefix: first}:
	case <-s.closed:
		_ = conn.Close()
	}
}

// Accept hands raft its next connection.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case conn := <-s.raftConns:
		return conn, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

func (s *streamLayer) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return s.listener.Close()
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// prefixedConn gives back the byte the stream layer read to sort it.
type prefixedConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixedConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// serveJoin adds a non-voting member, on the leader.
func (q *Quorum) serveJoin(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var header [6]byte
	if _, err := io.ReadFull(conn, header[:]); err != nil {
		return
	}
	address := make([]byte, binary.BigEndian.Uint16(header[4:]))
	if _, err := io.ReadFull(conn, address); err != nil {
		return
	}
	id := int32(binary.BigEndian.Uint32(header[:4]))
	status, message := forwardOK, ""
	if !q.IsLeader() {
		status = forwardNotLeader
	} else if err := q.raft.AddNonvoter(raft.ServerID(fmt.Sprint(id)), raft.ServerAddress(address), 0, 10*time.Second).Error(); err != nil {
		status, message = forwardFailed, err.Error()
	} else {
		q.cfg.Logger.Info("a broker joined the metadata quorum as a non-voting member", "node", id, "address", string(address))
	}
	answer := binary.BigEndian.AppendUint32([]byte{status}, uint32(len(message)))
	_, _ = conn.Write(append(answer, message...))
}

// join asks the voters, in turn, to add this node as a non-voting member,
// until the leader has.
func (q *Quorum) join(voters []Voter) {
	request := binary.BigEndian.AppendUint32([]byte{joinMagic}, uint32(q.cfg.NodeID))
	request = binary.BigEndian.AppendUint16(request, uint16(len(q.cfg.Advertise)))
	request = append(request, q.cfg.Advertise...)
	for {
		for _, v := range voters {
			if q.askToJoin(v.Addr, request) {
				return
			}
		}
		select {
		case <-q.closed:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (q *Quorum) askToJoin(address string, request []byte) bool {
	conn, err := net.DialTimeout("tcp", address, 2*time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write(request); err != nil {
		return false
	}
	var header [5]byte
	if _, err := io.ReadFull(conn, header[:]); err != nil {
		return false
	}
	if header[0] != forwardOK {
		message := make([]byte, min(binary.BigEndian.Uint32(header[1:]), 4096))
		_, _ = io.ReadFull(conn, message)
		if header[0] == forwardFailed {
			q.cfg.Logger.Warn("joining the metadata quorum", "voter", address, "err", string(message))
		}
		return false
	}
	return true
}
