package e2e

import (
	"database/sql"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// BenchmarkPipeline measures the whole pipeline with the real binaries:
// payment callback (status and outbox row in one transaction) -> relay ->
// kqbroker (acks=all) -> order-mq (kq, dedup in Redis) -> order state.
// Latency per event is the order row's updated_at minus the payment row's
// (both written by the services), so nothing polls. It reports p50, p99
// and max latency at a steady 1,000 callbacks/s, and the sustained rate
// when callbacks come as fast as 8 clients can send them.
// Run: go test ./app/e2e -run '^$' -bench Pipeline -benchtime 1x
func BenchmarkPipeline(b *testing.B) {
	for _, tc := range []struct {
		name string
		rate int // callbacks per second; 0: as fast as possible
	}{{"steady-1000-per-s", 1000}, {"max-rate", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			s := newStack(b, sqliteDatabase)
			const n = 3000
			type pair struct{ order, payment string }
			pairs := make([]pair, n)
			var wg sync.WaitGroup
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 8 {
						var o struct {
							OrderNo string `json:"order_no"`
						}
						s.call("POST", s.orderURL+"/orders", map[string]any{"user_id": i + 1, "amount": 100}, &o)
						var p struct {
							PaymentNo string `json:"payment_no"`
						}
						s.call("POST", s.payURL+"/payments", map[string]any{"order_no": o.OrderNo, "amount": 100}, &p)
						pairs[i] = pair{o.OrderNo, p.PaymentNo}
					}
				}()
			}
			wg.Wait()

			b.ResetTimer()
			start := time.Now()
			interval := time.Duration(0)
			if tc.rate > 0 {
				interval = time.Second / time.Duration(tc.rate)
			}
			next := make(chan int, 64)
			go func() {
				for i := 0; i < n; i++ {
					if interval > 0 {
						time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
					}
					next <- i
				}
				close(next)
			}()
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						s.call("POST", s.payURL+"/callback", map[string]any{"payment_no": pairs[i].payment, "status": "paid"}, nil)
					}
				}()
			}
			wg.Wait()
			orders := openDB(b, filepath.Join(s.dir, "order.db"))
			payments := openDB(b, filepath.Join(s.dir, "payment.db"))
			deadline := time.Now().Add(60 * time.Second)
			for countPaid(b, orders) < n {
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d orders paid after 60s", countPaid(b, orders), n)
				}
				time.Sleep(20 * time.Millisecond)
			}
			b.StopTimer()
			applied := timesBy(b, orders, "SELECT order_no, updated_at FROM orders WHERE state = 'paid'")
			paid := timesBy(b, payments, "SELECT order_no, updated_at FROM payment WHERE status = 'paid'")
			var latencies []int64
			first, last := int64(1<<62), int64(0)
			for orderNo, at := range applied {
				latencies = append(latencies, at-paid[orderNo])
				first, last = min(first, paid[orderNo]), max(last, at)
			}
			sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
			b.ReportMetric(float64(latencies[len(latencies)/2]), "p50-ms")
			b.ReportMetric(float64(latencies[len(latencies)*99/100]), "p99-ms")
			b.ReportMetric(float64(latencies[len(latencies)-1]), "max-ms")
			b.ReportMetric(float64(n)/(float64(last-first)/1000), "events/s")
		})
	}
}

func openDB(b *testing.B, path string) *sql.DB {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return db
}

func countPaid(b *testing.B, db *sql.DB) int {
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM orders WHERE state = 'paid'").Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

func timesBy(b *testing.B, db *sql.DB, query string) map[string]int64 {
	rows, err := db.Query(query)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var key string
		var at int64
		if err := rows.Scan(&key, &at); err != nil {
			b.Fatal(err)
		}
		out[key] = at
	}
	return out
}
