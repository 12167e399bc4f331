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
)

// sessionMagic opens a broker's heartbeat session with the leader: one
// connection that carries every heartbeat, so that its loss is news. A
// broker killed with SIGKILL has its connection closed by its kernel at
// once, long before its session would time out; the leader hears of it
// (OnHeartbeatLost) and the controller fences the broker unless it
// heartbeats again on a new connection within a moment.
//
//	opening   | 'S' |
//	then      | broker id u32 | broker epoch u64 |   each heartbeat
//	answer    | status u8 |                         forwardOK, or forwardNotLeader
const sessionMagic = 'S'

// sessionIdle closes a session the broker stopped using (no signal:
// only a connection the broker's side closed or reset is news).
const sessionIdle = time.Minute

// heartbeatSession is the broker's end: one connection to the leader it
// knows, replaced when the leader changes or the connection fails.
type heartbeatSession struct {
	mu      sync.Mutex
	conn    net.Conn
	address string
}

func (s *heartbeatSession) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// heartbeatRemote sends one heartbeat on the session, opening it first if
// there is none to the current leader.
func (q *Quorum) heartbeatRemote(ctx context.Context, brokerID int32, epoch int64) error {
	s := &q.session
	s.mu.Lock()
	defer s.mu.Unlock()
	address := q.leaderAddress()
	if s.conn != nil && s.address != address {
		_ = s.conn.Close() // the leader moved: the old one need not hear more
		s.conn = nil
	}
	if s.conn == nil {
		conn, dialed, err := q.dialLeader(ctx, "heartbeat")
		if err != nil {
			return err
		}
		if _, err := conn.Write([]byte{sessionMagic}); err != nil {
			_ = conn.Close()
			return fmt.Errorf("heartbeat to the metadata leader at %s: %w", dialed, err)
		}
		s.conn, s.address = conn, address
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = s.conn.SetDeadline(deadline)
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(brokerID))
	frame = binary.BigEndian.AppendUint64(frame, uint64(epoch))
	var status [1]byte
	_, err := s.conn.Write(frame)
	if err == nil {
		_, err = io.ReadFull(s.conn, status[:])
	}
	if err != nil {
		_ = s.conn.Close()
		s.conn = nil
		return fmt.Errorf("heartbeat to the metadata leader at %s: %w", address, err)
	}
	if status[0] != forwardOK {
		_ = s.conn.Close()
		s.conn = nil
		return fmt.Errorf("%w: %s moved on", ErrNotLeader, address)
	}
	return nil
}

// serveHeartbeatSession is the leader's end: each heartbeat goes to the
// OnHeartbeat hook; when the broker's side closes or resets the
// connection, OnHeartbeatLost hears of the last broker epoch it carried.
func (q *Quorum) serveHeartbeatSession(conn net.Conn) {
	defer conn.Close()
	var brokerID int32
	var epoch int64
	heard := false
	for {
		_ = conn.SetReadDeadline(time.Now().Add(sessionIdle))
		var frame [12]byte
		if _, err := io.ReadFull(conn, frame[:]); err != nil {
			var timeout net.Error
			if heard && !errors.As(err, &timeout) && q.IsLeader() && q.cfg.OnHeartbeatLost != nil {
				select {
				case <-q.closed: // this node is stopping: its own listener closed it
				default:
					q.cfg.OnHeartbeatLost(brokerID, epoch)
				}
			}
			return
		}
		brokerID, epoch, heard = int32(binary.BigEndian.Uint32(frame[:])), int64(binary.BigEndian.Uint64(frame[4:])), true
		status := forwardOK
		if !q.IsLeader() {
			status = forwardNotLeader
		} else if q.cfg.OnHeartbeat != nil {
			q.cfg.OnHeartbeat(brokerID, epoch)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write([]byte{status}); err != nil || status != forwardOK {
			return
		}
	}
}

// leaderAddress is where this broker reaches the leader ("" if none).
func (q *Quorum) leaderAddress() string {
	address, id := q.raft.LeaderWithID()
	if own, err := voterAddresses(q.cfg.Voters).ServerAddr(id); err == nil && address != "" {
		return string(own)
	}
	return string(address)
}
