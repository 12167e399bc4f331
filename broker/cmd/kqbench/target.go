package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A target is a broker under test: a child process kqbench started (a
// fresh kqbroker or a kfake cluster), or an address given with -bootstrap.
type target struct {
	name    string // kqbroker, kfake, or the bootstrap address
	addr    string
	admin   string // kqbroker's admin HTTP address, for its /metrics
	dataDir string // kqbroker's, removed by stop
	cmd     *exec.Cmd
	exited  chan error
	startup time.Duration // from exec to accepting connections
	// kind and args start the child again (restart).
	kind string
	args []string
	// replicas is the replication factor of the topics kqbench creates
	// (0: 1); peers are the other brokers of a cluster target.
	replicas int16
	peers    []*target
	nodeID   int32 // a cluster member's node id
}

// startChild re-executes kqbench as "serve <kind> args...", so that each
// broker runs in its own process, as in production, and its memory can be
// read on its own. It returns once the child has logged that it is ready.
func startChild(kind string, dataDir string, args ...string) (*target, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{"serve", kind}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t := &target{name: kind, dataDir: dataDir, cmd: cmd, exited: make(chan error, 1), kind: kind, args: args}
	ready := make(chan [2]string, 1)
	var lastLines []string
	go func() {
		scanner := bufio.NewScanner(stderr)
		scanner.Buffer(make([]byte, 64<<10), 1<<20)
		for scanner.Scan() {
			line := scanner.Text()
			if addr, ok := readyAddress(line); ok {
				select {
				case ready <- [2]string{addr, logField(line, "admin")}:
				default:
				}
				continue
			}
			if len(lastLines) < 20 {
				lastLines = append(lastLines, line)
			}
			if os.Getenv("KQBENCH_LOG") != "" {
				fmt.Fprintf(os.Stderr, "[%s] %s\n", kind, line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		t.exited <- cmd.Wait()
	}()
	select {
	case addrs := <-ready:
		t.addr, t.admin = addrs[0], addrs[1]
		t.startup = time.Since(begin)
		return t, nil
	case err := <-t.exited:
		return nil, fmt.Errorf("%s exited before it was ready (%v): %s", kind, err, strings.Join(lastLines, "\n"))
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s was not ready after 60s", kind)
	}
}

// readyAddress finds the listen address in the "ready" log line both
// children print (slog text format: msg="kqbroker ready" listen=host:port).
func readyAddress(line string) (string, bool) {
	if !strings.Contains(line, " ready\"") {
		return "", false
	}
	addr := logField(line, "listen")
	return addr, addr != ""
}

// logField is a key=value field of a slog text line ("" if absent).
func logField(line, key string) string {
	for _, field := range strings.Fields(line) {
		if value, ok := strings.CutPrefix(field, key+"="); ok {
			return value
		}
	}
	return ""
}

// startKqbroker starts a kqbroker on a data directory (a fresh temporary
// one when dataDir is empty) with the default config: fsync before acks=all
// is acknowledged, group commit.
func startKqbroker(dataDir string) (*target, error) {
	if dataDir == "" {
		dir, err := os.MkdirTemp(benchTempDir(), "kqbench-kqbroker-")
		if err != nil {
			return nil, err
		}
		dataDir = dir
	}
	level := "info"
	if os.Getenv("KQBENCH_LOG") == "debug" {
		level = "debug"
	}
	return startChild("kqbroker", dataDir, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-data-dir", dataDir, "-log-level", level)
}

// startKqbrokerInterval starts a kqbroker that acknowledges acks=all
// without waiting for an fsync and fsyncs every second instead (Kafka's
// own default relies on replication rather than fsync): the same broker
// with the disk's fsync latency taken out of the acknowledgement.
func startKqbrokerInterval() (*target, error) {
	dir, err := os.MkdirTemp(benchTempDir(), "kqbench-kqbroker-interval-")
	if err != nil {
		return nil, err
	}
	configPath := dir + ".yaml"
	if err := os.WriteFile(configPath, []byte("log:\n  flush_mode: interval\n  flush_ms: 1000\n"), 0o644); err != nil {
		return nil, err
	}
	t, err := startChild("kqbroker", dir, "-config", configPath, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-data-dir", dir)
	if t != nil {
		t.name = "kqbroker-interval"
	}
	return t, err
}

func startKfake() (*target, error) { return startChild("kfake", "") }

// benchTempDir is where kqbroker's data goes: KQBENCH_DIR, or the system's
// temporary directory. It should be on a real disk, not a tmpfs.
func benchTempDir() string {
	if dir := os.Getenv("KQBENCH_DIR"); dir != "" {
		return dir
	}
	return os.TempDir()
}

// stop asks the child to stop (SIGTERM: kqbroker flushes and marks its logs
// clean) and waits; the data directory is kept when keepData is set.
func (t *target) stop(keepData bool) error {
	for _, peer := range t.peers {
		_ = peer.stop(keepData)
	}
	return t.stopSelf(keepData)
}

// stopSelf stops this child only, not a cluster's peers.
func (t *target) stopSelf(keepData bool) error {
	if t.cmd == nil {
		return nil
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-t.exited:
	case <-time.After(60 * time.Second):
		_ = t.cmd.Process.Kill()
		err = errors.New("did not stop within 60s of SIGTERM; killed")
	}
	if !keepData && t.dataDir != "" {
		_ = os.RemoveAll(t.dataDir)
		_ = os.Remove(t.dataDir + ".yaml")
	}
	return err
}

// restart starts a stopped or killed child again, on its data directory.
func (t *target) restart() error {
	again, err := startChild(t.kind, t.dataDir, t.args...)
	if err != nil {
		return err
	}
	t.cmd, t.exited, t.addr, t.admin = again.cmd, again.exited, again.addr, again.admin
	return nil
}

// kill stops the child with SIGKILL, as a crash would.
func (t *target) kill() {
	_ = t.cmd.Process.Kill()
	<-t.exited
}

// rss is the child's resident memory in bytes, from /proc; 0 for a target
// kqbench did not start.
func (t *target) rss() int64 {
	if t.cmd == nil {
		return 0
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", t.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpuTime is the CPU time (user and system) the child has used so far;
// 0 for a target kqbench did not start.
func (t *target) cpuTime() time.Duration {
	if t.cmd == nil {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", t.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 per second on Linux).
	_, rest, _ := strings.Cut(string(stat), ") ")
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(fields[11], 10, 64)
	system, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(user+system) * 10 * time.Millisecond
}

// selfCPUTime is the CPU time kqbench itself (the clients) has used.
func selfCPUTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

// peakRSS samples the child's RSS every 50ms until stop is called and
// returns the largest value seen.
func (t *target) peakRSS() (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64, 1)
	go func() {
		peak := t.rss()
		ticker := time.NewTicker(50 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				peak = max(peak, t.rss())
			case <-done:
				result <- max(peak, t.rss())
				return
			}
		}
	}()
	return func() int64 { close(done); return <-result }
}

// createTopic creates a topic with the given partitions (replication 1, or
// the cluster's), waiting until the target's metadata shows it.
func (t *target) createTopic(ctx context.Context, topic string, partitions int32) error {
	client, err := kgo.NewClient(kgo.SeedBrokers(t.addr))
	if err != nil {
		return err
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	resp, err := admin.CreateTopic(ctx, partitions, max(t.replicas, 1), nil, topic)
	if err != nil {
		return fmt.Errorf("create topic %s on %s: %w", topic, t.name, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("create topic %s on %s: %w", topic, t.name, resp.Err)
	}
	for ctx.Err() == nil {
		details, err := admin.ListTopics(ctx, topic)
		if err == nil && details[topic].Err == nil && len(details[topic].Partitions) == int(partitions) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ctx.Err()
}

// deleteTopic frees what a run wrote, so that kfake (which keeps everything
// in memory) and kqbroker start each run from the same state.
func (t *target) deleteTopic(ctx context.Context, topic string) {
	client, err := kgo.NewClient(kgo.SeedBrokers(t.addr))
	if err != nil {
		return
	}
	defer client.Close()
	_, _ = kadm.NewClient(client).DeleteTopics(ctx, topic)
}
