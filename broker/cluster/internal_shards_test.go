package cluster

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kqstack/kqstack/broker/metadata"
	"github.com/kqstack/kqstack/broker/replica"
)

// shardEvents records what the shards of a test topic loaded and unloaded.
type shardEvents struct {
	mu       sync.Mutex
	unloaded []string
	release  chan struct{} // a load of partition 2 waits for it
}

func (e *shardEvents) load(p *Partition, epoch int32) (string, error) {
	if p.Index == 2 {
		<-e.release
	}
	if p.Index == 3 {
		return "", errors.New("a corrupt partition")
	}
	return fmt.Sprintf("p%d@%d", p.Index, epoch), nil
}

func (e *shardEvents) unload(state string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.unloaded = append(e.unloaded, state)
}

func waitClosedFor(d time.Duration, ready <-chan struct{}) bool {
	select {
	case <-ready:
		return true
	case <-time.After(d):
		return false
	}
}

// TestInternalShardsFollowLeadership: a shard loads when this broker gains
// a partition's leadership, is dropped (unloaded once its load is over)
// when it loses it or the epoch moves, answers "loading" past the wait,
// and a failed load answers its error; loaded lists the serving shards
// in partition order.
func TestInternalShardsFollowLeadership(t *testing.T) {
	events := &shardEvents{release: make(chan struct{})}
	shards := newInternalShards(1, events.load, events.unload, waitClosedFor)
	partitions := make([]*Partition, 4)
	for i := range partitions {
		partitions[i] = &Partition{Topic: "__internal", Index: int32(i), Replica: &replica.Replica{}}
	}
	lead := func(i int, leader, epoch int32) {
		shards.follow(partitions[i], metadata.Partition{Leader: leader, LeaderEpoch: epoch})
	}
	lead(0, 1, 5)
	lead(1, 2, 5) // another broker leads it
	lead(2, 1, 5) // its load waits
	lead(3, 1, 5) // its load fails

	if state, found, err := shards.get(0); found != shardLoaded || err != nil || state != "p0@5" {
		t.Fatalf("partition 0: %q, %v, %v; want p0@5 loaded", state, found, err)
	}
	if _, found, _ := shards.get(1); found != shardNotLed {
		t.Fatalf("partition 1, led elsewhere: %v, want shardNotLed", found)
	}
	if _, found, _ := shards.get(3); found != shardLoaded {
		t.Fatalf("partition 3: %v, want its load over", found)
	} else if _, _, err := shards.get(3); err == nil {
		t.Fatal("partition 3's failed load: no error")
	}
	began := time.Now()
	if _, found, _ := shards.get(2); found != shardLoading || time.Since(began) < loadWait {
		t.Fatalf("partition 2 still loading: %v after %v, want shardLoading after the load wait", found, time.Since(began))
	}
	if got := shards.loaded(); !slices.Equal(got, []string{"p0@5"}) {
		t.Fatalf("loaded %v, want [p0@5]", got)
	}

	// The same epoch again changes nothing; a new one loads anew, and a
	// lost leadership unloads, also of a shard still loading (once done).
	lead(0, 1, 5)
	lead(0, 1, 6)
	lead(2, 3, 6)
	close(events.release)
	if state, _, _ := shards.get(0); state != "p0@6" {
		t.Fatalf("partition 0 at epoch 6: %q", state)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		events.mu.Lock()
		unloaded := slices.Sorted(slices.Values(events.unloaded))
		events.mu.Unlock()
		if slices.Equal(unloaded, []string{"p0@5", "p2@5"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unloaded %v, want p0@5 and p2@5", unloaded)
		}
	}
	shards.close()
	if got := shards.loaded(); len(got) != 0 {
		t.Fatalf("after close: %v loaded", got)
	}
}
