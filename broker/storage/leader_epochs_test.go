package storage

import (
	"reflect"
	"testing"
)

func epochsOf(pairs ...int64) leaderEpochs {
	var c leaderEpochs
	for i := 0; i < len(pairs); i += 2 {
		c.entries = append(c.entries, epochEntry{epoch: int32(pairs[i]), startOffset: pairs[i+1]})
	}
	return c
}

func TestLeaderEpochsEndOffsetFor(t *testing.T) {
	// epoch 1 from 0, epoch 3 from 100, epoch 4 from 150 (empty so far), log end 150
	c := epochsOf(1, 0, 3, 100, 4, 150)
	cases := []struct {
		requested   int32
		epoch       int32
		endOffset   int64
		description string
	}{
		{4, 4, 150, "the latest epoch ends at the log end, even with nothing in it"},
		{3, 3, 150, "an epoch ends where the next begins"},
		{1, 1, 100, "the first epoch"},
		{2, 1, 100, "an epoch this log never had: the largest below it, ending where the next began"},
		{0, 0, 0, "older than every epoch kept: it ended where the oldest began"},
		{5, UndefinedEpoch, -1, "newer than any known"},
		{UndefinedEpoch, UndefinedEpoch, -1, "no epoch asked"},
	}
	for _, tt := range cases {
		epoch, end := c.endOffsetFor(tt.requested, 150)
		if epoch != tt.epoch || end != tt.endOffset {
			t.Errorf("%s: epoch %d -> (%d, %d), want (%d, %d)", tt.description, tt.requested, epoch, end, tt.epoch, tt.endOffset)
		}
	}
	var empty leaderEpochs
	if epoch, end := empty.endOffsetFor(0, 10); epoch != UndefinedEpoch || end != -1 {
		t.Errorf("an empty cache: (%d, %d)", epoch, end)
	}
}

func TestLeaderEpochsAssignAndTruncate(t *testing.T) {
	c := epochsOf(1, 0, 3, 100)
	if c.assign(3, 120) || c.assign(2, 130) || c.assign(-1, 200) {
		t.Fatal("an epoch already known (or older, or none) changed the cache")
	}
	if !c.assign(5, 150) || !reflect.DeepEqual(c, epochsOf(1, 0, 3, 100, 5, 150)) {
		t.Fatalf("assign 5@150: %v", c.entries)
	}
	// A follower copies the new leader's epoch 4 from 120: entries that
	// conflict with it (epoch 5, and the start at 150) go.
	if !c.assign(4, 120) || !reflect.DeepEqual(c, epochsOf(1, 0, 3, 100, 4, 120)) {
		t.Fatalf("assign 4@120: %v", c.entries)
	}
	if !c.truncateFromEnd(100) || !reflect.DeepEqual(c, epochsOf(1, 0)) {
		t.Fatalf("truncate from end at 100: %v", c.entries)
	}
	c = epochsOf(1, 0, 3, 100, 4, 120)
	if !c.truncateFromStart(110) || !reflect.DeepEqual(c, epochsOf(3, 110, 4, 120)) {
		t.Fatalf("truncate from start at 110: %v", c.entries)
	}
	if c.truncateFromStart(50) {
		t.Fatal("truncating from before the start changed the cache")
	}
}

func TestLeaderEpochsFile(t *testing.T) {
	c := epochsOf(0, 0, 3, 1250)
	if got := string(c.encode()); got != "0\n2\n0 0\n3 1250\n" {
		t.Fatalf("encoded %q", got)
	}
	decoded, err := decodeLeaderEpochs(c.encode())
	if err != nil || !reflect.DeepEqual(decoded, c) {
		t.Fatalf("decoded %v %v", decoded, err)
	}
	for _, bad := range []string{"", "1\n0\n", "0\n2\n0 0\n", "0\n1\nx 1\n", "0\n2\n3 5\n1 9\n", "0\n1\n-2 0\n"} {
		if _, err := decodeLeaderEpochs([]byte(bad)); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
}
