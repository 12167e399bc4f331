package cluster

import (
	"sort"
	"sync"
	"time"

	"github.com/kqstack/kqstack/broker/metadata"
)

// internalShards hold the state a broker keeps for the partitions of an
// internal topic it leads: one shard per led partition, at its leader
// epoch. The group coordinators are one user (a shard's state is the
// groups of a partition of __consumer_offsets); the transaction
// coordinator and share-group state are to be others.
//
//	leadership gained (apply hook) ──► load(partition, epoch), in the
//	                                   background; lookups wait up to
//	                                   loadWait, then hear "loading"
//	loaded                         ──► lookups get the state
//	leadership lost, new epoch     ──► unload(state) once loaded; the
//	                                   lookups of a new epoch load anew
//
// Safe for concurrent use; mu guards shards and is never held across I/O
// (load and unload run on goroutines of their own).
type internalShards[S any] struct {
	self   int32
	load   func(p *Partition, epoch int32) (S, error)
	unload func(S)
	wait   func(d time.Duration, ready <-chan struct{}) bool

	mu     sync.Mutex
	shards map[int32]*internalShard[S]
	// held: loads wait until release (the takeover of a private offsets
	// log writes into the partitions first).
	held chan struct{}
}

// internalShard is one partition's state at one leader epoch.
type internalShard[S any] struct {
	partition int32
	epoch     int32
	ready     chan struct{} // closed once loaded, or failed
	// set before ready closes
	state S
	err   error
}

// newInternalShards returns the shards of one internal topic; wait
// reports whether ready closed within d.
func newInternalShards[S any](self int32, load func(*Partition, int32) (S, error), unload func(S), wait func(time.Duration, <-chan struct{}) bool) *internalShards[S] {
	return &internalShards[S]{self: self, load: load, unload: unload, wait: wait, shards: map[int32]*internalShard[S]{}}
}

// follow is called from the apply hook with a partition of the topic and
// its new state: a new leadership (or epoch) loads, a lost one unloads.
func (s *internalShards[S]) follow(p *Partition, state metadata.Partition) {
	leading := state.Leader == s.self && p.Replica != nil
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.shards[p.Index]
	if old != nil && leading && old.epoch == state.LeaderEpoch {
		return
	}
	if old != nil {
		delete(s.shards, p.Index)
		go s.drop(old)
	}
	if !leading {
		return
	}
	shard := &internalShard[S]{partition: p.Index, epoch: state.LeaderEpoch, ready: make(chan struct{})}
	s.shards[p.Index] = shard
	held := s.held
	go func() {
		if held != nil {
			<-held
		}
		defer close(shard.ready)
		shard.state, shard.err = s.load(p, shard.epoch)
	}()
}

// drop unloads a shard once its load is over (a failed one has nothing).
func (s *internalShards[S]) drop(shard *internalShard[S]) {
	<-shard.ready
	if shard.err == nil {
		s.unload(shard.state)
	}
}

// hold makes loads wait until release.
func (s *internalShards[S]) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
}

// release lets the held loads go.
func (s *internalShards[S]) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
}

// shardLookup is what a lookup found for a partition.
type shardLookup int

const (
	shardNotLed  shardLookup = iota // this broker does not lead it
	shardLoading                    // still loading after loadWait
	shardLoaded                     // loaded, or failed to (err)
)

// get returns partition's state, waiting up to loadWait for its load.
func (s *internalShards[S]) get(partition int32) (S, shardLookup, error) {
	var zero S
	s.mu.Lock()
	shard := s.shards[partition]
	s.mu.Unlock()
	if shard == nil {
		return zero, shardNotLed, nil
	}
	if !s.wait(loadWait, shard.ready) {
		return zero, shardLoading, nil
	}
	return shard.state, shardLoaded, shard.err
}

// loaded returns the states that serve now, by partition.
func (s *internalShards[S]) loaded() []S {
	s.mu.Lock()
	var shards []*internalShard[S]
	for _, shard := range s.shards {
		select {
		case <-shard.ready:
			if shard.err == nil {
				shards = append(shards, shard)
			}
		default:
		}
	}
	s.mu.Unlock()
	sort.Slice(shards, func(i, j int) bool { return shards[i].partition < shards[j].partition })
	states := make([]S, len(shards))
	for i, shard := range shards {
		states[i] = shard.state
	}
	return states
}

// close unloads every shard (the broker stops).
func (s *internalShards[S]) close() {
	s.mu.Lock()
	shards := s.shards
	s.shards = map[int32]*internalShard[S]{}
	s.mu.Unlock()
	for _, shard := range shards {
		s.drop(shard)
	}
}
