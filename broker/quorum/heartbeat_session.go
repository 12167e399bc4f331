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
// knows, replaced when the leader changes or the connection fails. Between
// heartbeats a watcher waits on the connection: the leader never writes
// unasked, so anything it reads is the connection closing, and the broker
// heartbeats again at once on a new one (onLost), well within the grace
// the controller gives it.
type heartbeatSession struct {
	mu      sync.Mutex
	conn    net.Conn
	address string
	watcher *watcher // nil: none
	onLost  func()   // set by Open: ask for a heartbeat now
}

// watcher waits on the connection between heartbeats; lost is set, before
// done closes, when the connection closed.
type watcher struct {
	done chan struct{}
	lost bool
}

func (s *heartbeatSession) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked()
}

// dropLocked closes the connection and waits for its watcher.
func (s *heartbeatSession) dropLocked() {
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.stopWatchingLocked()
	s.conn = nil
}

// stopWatchingLocked ends the watcher's read (a deadline in the past) and
// waits for it, so the next heartbeat reads its own answer; a connection
// the watcher saw close is dropped.
func (s *heartbeatSession) stopWatchingLocked() {
	w := s.watcher
	if w == nil {
		return
	}
	s.watcher = nil
	if s.conn != nil {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
	}
	<-w.done
	if w.lost && s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// watchLocked starts the watcher on the current connection. It takes no
// lock: the heartbeat that stops it holds the session's.
func (s *heartbeatSession) watchLocked() {
	conn, w, onLost := s.conn, &watcher{done: make(chan struct{})}, s.onLost
	s.watcher = w
	_ = conn.SetReadDeadline(time.Time{})
	go func() {
		var b [1]byte
		_, err := conn.Read(b[:])
		var timeout net.Error
		if errors.As(err, &timeout) && timeout.Timeout() {
			close(w.done) // stopped for the next heartbeat
			return
		}
		// Closed or reset, or the leader wrote unasked: the session is
		// gone; the next heartbeat, asked for now, opens a new one.
		_ = conn.Close()
		w.lost = true
		close(w.done)
		if onLost != nil {
			onLost()
		}
	}()
}

// heartbeatRemote sends one heartbeat on the session, opening it first if
// there is none to the current leader; a failure on a session that was
// open is tried once more on a new one.
func (q *Quorum) heartbeatRemote(ctx context.Context, brokerID int32, epoch int64) error {
	s := &q.session
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopWatchingLocked()
	address := q.leaderAddress()
	if s.conn != nil && address != "" && s.address != address {
		s.dropLocked() // the leader moved: the old one need not hear more
	}
	reused := s.conn != nil // a leader unknown for a moment keeps the session
	err := q.heartbeatOnceLocked(ctx, brokerID, epoch)
	if err != nil && reused && ctx.Err() == nil {
		err = q.heartbeatOnceLocked(ctx, brokerID, epoch)
	}
	if err == nil {
		s.watchLocked()
	}
	return err
}

func (q *Quorum) heartbeatOnceLocked(ctx context.Context, brokerID int32, epoch int64) error {
	s := &q.session
	if s.conn == nil {
		conn, dialed, err := q.dialLeader(ctx, "heartbeat")
		if err != nil {
			return err
		}
		if _, err := conn.Write([]byte{sessionMagic}); err != nil {
			_ = conn.Close()
			return fmt.Errorf("heartbeat to the metadata leader at %s: %w", dialed, err)
		}
		s.conn, s.address = conn, string(dialed)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	_ = s.conn.SetDeadline(deadline)
	frame := binary.BigEndian.AppendUint32(nil, uint32(brokerID))
	frame = binary.BigEndian.AppendUint64(frame, uint64(epoch))
	var status [1]byte
	_, err := s.conn.Write(frame)
	if err == nil {
		_, err = io.ReadFull(s.conn, status[:])
	}
	address := s.address
	if err != nil {
		s.dropLocked()
		return fmt.Errorf("heartbeat to the metadata leader at %s: %w", address, err)
	}
	_ = s.conn.SetWriteDeadline(time.Time{})
	if status[0] != forwardOK {
		s.dropLocked()
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
	session := q.sessions.Add(1)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(sessionIdle))
		var frame [12]byte
		if _, err := io.ReadFull(conn, frame[:]); err != nil {
			var timeout net.Error
			if heard && !errors.As(err, &timeout) && q.IsLeader() && q.cfg.OnHeartbeatLost != nil {
				select {
				case <-q.closed: // this node is stopping: its own listener closed it
				default:
					q.cfg.OnHeartbeatLost(brokerID, epoch, session)
				}
			}
			return
		}
		brokerID, epoch, heard = int32(binary.BigEndian.Uint32(frame[:])), int64(binary.BigEndian.Uint64(frame[4:])), true
		status := forwardOK
		if !q.IsLeader() {
			status = forwardNotLeader
		} else if q.cfg.OnHeartbeat != nil {
			q.cfg.OnHeartbeat(brokerID, epoch, session)
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
