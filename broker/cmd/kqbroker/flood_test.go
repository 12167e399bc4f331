package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRequestFloodKeepsMemoryBoundedAndOthersServed is the attack the
// request memory budget exists for, made with raw sockets: 120 connections
// each announce a 100 MB produce request (a valid header, so the broker
// takes it as a real one) and send 25 MB of it, then stall. The broker
// must stay under 1 GiB of RSS while a normal producer on its own
// connection keeps being answered.
func TestRequestFloodKeepsMemoryBoundedAndOthersServed(t *testing.T) {
	const (
		attackers     = 120
		announced     = 100_000_000
		sentPerClient = 25_000_000
		rssLimit      = 1 << 30
	)
	bin := buildBroker(t)
	broker := startProcess(t, bin, "-listen", "127.0.0.1:0", "-admin-listen", "", "-data-dir", t.TempDir())
	pid := broker.cmd.Process.Pid

	client, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr), kgo.AllowAutoTopicCreation(), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	produce := func(n int) []time.Duration {
		t.Helper()
		latencies := make([]time.Duration, 0, n)
		for i := range n {
			began := time.Now()
			if err := client.ProduceSync(ctx, &kgo.Record{Topic: "normal", Value: []byte("record " + strconv.Itoa(i))}).FirstErr(); err != nil {
				t.Fatalf("the normal producer's record %d: %v", i, err)
			}
			latencies = append(latencies, time.Since(began))
		}
		return latencies
	}
	before := produce(200)

	// The flood. Each attacker writes until it has sent its 25 MB or the
	// broker stops reading it (then the write blocks until the deadline).
	var sent atomic.Int64
	var conns []net.Conn
	var writers sync.WaitGroup
	for range attackers {
		conn, err := net.Dial("tcp", broker.Addr)
		if err != nil {
			t.Fatalf("attacker dial: %v", err)
		}
		conns = append(conns, conn)
		writers.Add(1)
		go func() {
			defer writers.Done()
			_ = conn.SetWriteDeadline(time.Now().Add(8 * time.Second))
			if _, err := conn.Write(produceHeader(announced)); err != nil {
				return
			}
			junk := make([]byte, 1<<20)
			for written := 0; written < sentPerClient; written += len(junk) {
				n, err := conn.Write(junk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		}()
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	var peakRSS atomic.Int64
	sampling := make(chan struct{})
	go func() {
		defer close(sampling)
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if rss := processMemory(t, pid, "VmRSS"); rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
		}
	}()
	time.Sleep(time.Second) // the flood under way
	during := produce(300)
	writers.Wait()
	<-sampling
	peak := max(peakRSS.Load(), processMemory(t, pid, "VmHWM"))

	t.Logf("flood: %d connections announced %d MB each and sent %d MB in all (the rest waits in their kernel buffers)", attackers, announced/1_000_000, sent.Load()/1_000_000)
	t.Logf("broker peak RSS %d MiB (limit %d MiB)", peak>>20, rssLimit>>20)
	t.Logf("normal producer, acks=all, one record at a time: before the flood %s; during it %s", summary(before), summary(during))
	if peak >= rssLimit {
		t.Errorf("broker peak RSS %d MiB under the flood, want under %d MiB", peak>>20, rssLimit>>20)
	}

	// The flood ends; the broker still serves and stops cleanly.
	for _, c := range conns {
		c.Close()
	}
	produce(10)
	broker.stop(t)
}

// produceHeader is the start of a Produce v9 request frame announcing size
// bytes: size, api key 0, version 9, correlation id, client id, the empty
// tagged fields of a flexible header.
func produceHeader(size int32) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(size))
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint16(b, 9)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, 5)
	b = append(b, "flood"...)
	return append(b, 0)
}

// processMemory reads a VmRSS or VmHWM line of /proc/PID/status, in bytes.
func processMemory(t *testing.T, pid int, field string) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0 // the process is gone
	}
	for _, line := range strings.Split(string(status), "\n") {
		if value, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// summary is p50 / p99 / max of latencies.
func summary(latencies []time.Duration) string {
	sorted := slices.Sorted(slices.Values(latencies))
	at := func(q float64) time.Duration {
		return sorted[int(q*float64(len(sorted)-1))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v, p99 %v, max %v over %d records", at(0.5), at(0.99), sorted[len(sorted)-1].Round(10*time.Microsecond), len(sorted))
}
