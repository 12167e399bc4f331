package storage

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashHelperEnv = "KQ_STORAGE_CRASH_HELPER_DIR"

// TestMain runs the crash helper instead of the tests when the test binary
// is started by TestSIGKILLRecovery.
func TestMain(m *testing.M) {
	if dir := os.Getenv(crashHelperEnv); dir != "" {
		runCrashHelper(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runCrashHelper appends durable batches to dir, printing
// "ack <base offset> <crc>" for each acknowledged one, until it is killed.
func runCrashHelper(dir string) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 256 << 10
	cfg.IndexIntervalBytes = 1024
	l, err := Open(dir, Options{Config: cfg, Logger: quietLogger()})
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper: %v\n", err)
		os.Exit(3)
	}
	var stdout sync.Mutex
	var wg sync.WaitGroup
	for appender := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(appender)))
			for {
				batch := makeBatch(batchSpec{records: 1 + rng.IntN(8), valueSize: rng.IntN(2000), firstTimestamp: time.Now().UnixMilli()})
				result, err := l.Append(batch, AppendOptions{Durable: true})
				if err != nil {
					fmt.Fprintf(os.Stderr, "helper: append: %v\n", err)
					os.Exit(4)
				}
				stdout.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d\n", result.BaseOffset, parseBatchHeader(batch).CRC)
				stdout.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestSIGKILLRecovery kills a process that appends with durability on at
// random moments, again and again on the same directory, and checks after
// each kill that every batch it acknowledged is read back intact.
func TestSIGKILLRecovery(t *testing.T) {
	rounds := 12
	if testing.Short() {
		rounds = 3
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := make(map[int64]uint32) // base offset -> CRC
	for round := range rounds {
		runUntilKilled(t, dir, time.Duration(20+rng.IntN(180))*time.Millisecond, acked)
		l, err := Open(dir, Options{Config: DefaultConfig(), Logger: quietLogger()})
		if err != nil {
			t.Fatalf("round %d: recovery: %v", round, err)
		}
		found := make(map[int64]uint32)
		for _, h := range readAll(t, l) { // checks density and every CRC
			found[h.BaseOffset] = h.CRC
		}
		for base, crc := range acked {
			if got, ok := found[base]; !ok || got != crc {
				t.Fatalf("round %d: acknowledged batch at offset %d lost (log end %d)", round, base, l.LogEndOffset())
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("the helper acknowledged nothing")
	}
	t.Logf("%d rounds, %d acknowledged batches all recovered", rounds, len(acked))
}

func runUntilKilled(t *testing.T, dir string, after time.Duration, acked map[int64]uint32) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan map[int64]uint32)
	go func() {
		got := make(map[int64]uint32)
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			fields := strings.Fields(scanner.Text())
			if len(fields) != 3 || fields[0] != "ack" {
				continue
			}
			base, err1 := strconv.ParseInt(fields[1], 10, 64)
			crc, err2 := strconv.ParseUint(fields[2], 10, 32)
			if err1 == nil && err2 == nil {
				got[base] = uint32(crc)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		lines <- got
	}()
	time.Sleep(after)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	got := <-lines
	err = cmd.Wait()
	if status, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !status.Signaled() {
		t.Fatalf("helper exited on its own before the kill: %v", err)
	}
	for base, crc := range got {
		acked[base] = crc
	}
}
