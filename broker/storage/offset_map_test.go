package storage

import (
	"fmt"
	"testing"
)

func TestOffsetMap(t *testing.T) {
	m := newOffsetMap(24*1000, 1<<20)
	if len(m.slots) != 1000 || m.maxUsed != 900 {
		t.Fatalf("a 24000-byte map has %d slots, full at %d; want 1000 and 900", len(m.slots), m.maxUsed)
	}
	if small := newOffsetMap(1<<30, 10); len(small.slots) > 16 {
		t.Fatalf("a map for 10 entries has %d slots", len(small.slots))
	}
	for i := range 900 {
		m.putKey(fmt.Appendf(nil, "key-%d", i), int64(i))
	}
	if m.room(1) {
		t.Fatal("room after 900 entries in 1000 slots")
	}
	m.putKey([]byte("key-5"), 5000) // an existing key still updates when full
	m.putKey([]byte("one more"), 1) // a new one is dropped
	cases := []struct {
		key  string
		want int64
	}{{"key-0", 0}, {"key-5", 5000}, {"key-899", 899}, {"one more", -1}, {"key-900", -1}, {"", -1}}
	for _, tt := range cases {
		if got := m.getKey([]byte(tt.key)); got != tt.want {
			t.Errorf("getKey(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}

	// Producers and keys do not collide, even a key spelling a producer id.
	p := newOffsetMap(1<<20, 100)
	p.putProducer(7, 70)
	var id [8]byte
	id[7] = 7
	if got := p.getKey(id[:]); got != -1 {
		t.Fatalf("the key %x finds producer 7's entry: %d", id, got)
	}
	p.putKey(id[:], 3)
	if got := p.producerLastOffset(7); got != 70 {
		t.Fatalf("producer 7's last offset = %d after putting a key, want 70", got)
	}
	if got := p.producerLastOffset(8); got != -1 {
		t.Fatalf("unknown producer: %d", got)
	}
}
