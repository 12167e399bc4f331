package delay

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kqstack/kqstack/common/redistest"
)

func TestDueClaimsEachMemberOnce(t *testing.T) {
	q := Queue{Client: redistest.Start(t), Key: "close-unpaid"}
	ctx := context.Background()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 200; i++ {
		if err := q.Add(ctx, fmt.Sprintf("order-%03d", i), base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Remove(ctx, "order-005"); err != nil { // paid in time
		t.Fatal(err)
	}
	if err := q.Add(ctx, "order-006", base.Add(time.Hour)); err != nil { // rescheduled
		t.Fatal(err)
	}
	// Four workers race for the members due in the first 100 seconds.
	var mu sync.Mutex
	var claimed []string
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				due, err := q.Due(ctx, base.Add(99*time.Second), 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(due) == 0 {
					return
				}
				mu.Lock()
				claimed = append(claimed, due...)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Strings(claimed)
	if len(claimed) != 98 { // 0..99, less the paid and the rescheduled one
		t.Fatalf("%d members claimed, want 98", len(claimed))
	}
	for i := 1; i < len(claimed); i++ {
		if claimed[i] == claimed[i-1] {
			t.Fatalf("%s claimed twice", claimed[i])
		}
	}
	for _, c := range claimed {
		if c == "order-005" || c == "order-006" {
			t.Fatalf("%s should not be due", c)
		}
	}
	if due, _ := q.Due(ctx, base.Add(99*time.Second), 10); len(due) != 0 {
		t.Fatalf("claimed members came back: %v", due)
	}
}
