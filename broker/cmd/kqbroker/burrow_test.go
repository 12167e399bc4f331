package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kqstack/kqstack/internal/testport"
)

// TestBurrowReportsTheGroupsLag: Burrow (LinkedIn's lag monitor, Debian's
// burrow package: 1.2.1, sarama 1.22 speaking Kafka 2.1.0's request
// versions) watches three kqbroker processes. It learns the topics and
// their end offsets from Metadata and ListOffsets, and the group's commits
// only by reading __consumer_offsets from its start and decoding Kafka's
// record schemas (offset commit key v1, value v3), as it does against
// Kafka; it keeps its own state in a ZooKeeper (Debian's zookeeper
// package) started for the test. A consumer group reads a topic of three
// partitions of 100 records each and commits 10, 25 and 40 records short
// of their ends: Burrow must report exactly that lag for each partition,
// and 75 in all.
//
// Burrow 1.2.1 asks for the end offsets with ListOffsets v0 (a
// sarama.OffsetRequest it never gives a version, whatever kafka-version
// says). Kafka served v0 up to 3.9; KIP-896 removed it in 4.0. A broker
// that closes the connection on it (kqbroker registered ListOffsets from
// v1 when this test was written) fails the test, with that named: Burrow
// then knows no topic and no end offset at all.
func TestBurrowReportsTheGroupsLag(t *testing.T) {
	burrow := ""
	for _, name := range []string{"Burrow", "burrow"} { // Debian installs /usr/bin/Burrow
		if path, err := exec.LookPath(name); err == nil {
			burrow = path
			break
		}
	}
	java, javaErr := exec.LookPath("java")
	const zookeeperJar = "/usr/share/java/zookeeper.jar"
	_, jarErr := os.Stat(zookeeperJar)
	switch {
	case burrow == "":
		t.Skip("Burrow is not installed (apt-get install burrow zookeeper; .ci/run installs them), so kqbroker's __consumer_offsets is not checked against Burrow")
	case javaErr != nil || jarErr != nil:
		t.Skip("ZooKeeper (" + zookeeperJar + " and java) is not installed, and Burrow needs it (apt-get install burrow zookeeper; .ci/run installs them)")
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// ZooKeeper's JVM starts while kqbroker is built.
	zookeeper := startZooKeeper(t, java, zookeeperJar)
	bin := buildBroker(t)
	_, addrs, _ := startClusterProcesses(t, bin, 3)
	client := mustClient(t, addrs...)
	admin := kadm.NewClient(client)
	waitWholeISRs(t, ctx, admin, "__consumer_offsets", 3)

	const topic, group, perPartition = "burrow-lag", "burrow-lag-group", 100
	lags := []int64{10, 25, 40}
	if resp, err := admin.CreateTopic(ctx, int32(len(lags)), 3, nil, topic); err != nil || resp.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, resp.Err)
	}
	waitWholeISRs(t, ctx, admin, topic, 3)
	producer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	var records []*kgo.Record
	for p := range lags {
		for i := range perPartition {
			records = append(records, &kgo.Record{Partition: int32(p), Value: []byte(fmt.Sprintf("p%d-%d", p, i))})
		}
	}
	if err := producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	zookeeper.waitReady(t, 20*time.Second)
	t.Logf("brokers, ZooKeeper and %d records up, %v after the start", len(records), time.Since(began).Round(time.Millisecond))

	// The request Burrow learns the end offsets with, asked here first so
	// that a broker refusing it is named in the failure.
	v0 := listOffsetsV0(t, addrs[partitionLeaders(t, ctx, admin, topic)[0]-1], topic, 0)
	if v0 != fmt.Sprint([]int64{perPartition}) {
		t.Errorf("ListOffsets v0 (latest, max 1 offset) of %s/0, as Burrow 1.2.1 sends it: %s, want the offsets [%d] "+
			"(Kafka up to 3.9 answers v0; kqbroker registers ListOffsets v1-v8, as Kafka 4.0 after KIP-896)", topic, v0, perPartition)
	}

	// Burrow after the records: its first look at the topic has their end
	// offsets, so the commits below (dropped by Burrow while it knows no
	// end offset for their partition) are all counted.
	api := startBurrow(t, burrow, addrs, zookeeper.addr)
	wantEnds := slices.Repeat([]int64{perPartition}, len(lags))
	var listed []string
	var ends []int64
	// Burrow 1.2.1 lists a topic once it has the end offset of one
	// partition, and a GET of the topic before it has them all panics
	// (storage/inmemory.go, fetchTopic: a nil offset; seen in CI) and
	// takes Burrow down. So the topic's details are asked for only two
	// offset refreshes (offset-refresh=1, below) after it is listed.
	var firstListed time.Time
	for deadline := time.Now().Add(20 * time.Second); ; {
		var list struct {
			Topics []string `json:"topics"`
		}
		var detail struct {
			Offsets []int64 `json:"offsets"`
		}
		api.get(t, "/v3/kafka/kq/topic", &list)
		if listed = list.Topics; slices.Contains(listed, topic) && firstListed.IsZero() {
			firstListed = time.Now()
		}
		if !firstListed.IsZero() && time.Since(firstListed) > 2500*time.Millisecond {
			api.get(t, "/v3/kafka/kq/topic/"+topic, &detail)
			if ends = detail.Offsets; slices.Equal(ends, wantEnds) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Burrow lists the topics %q (want %s among them), and %s's end offsets as %v, want %v, 20 s after its start "+
				"(it learns both from its ListOffsets v0 requests: %s):\n%s", listed, topic, topic, ends, wantEnds, v0, api.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("Burrow lists %s with end offsets %v, %v after the start", topic, ends, time.Since(began).Round(time.Millisecond))

	// The group reads the partitions and commits what it handled: all but
	// the last lags[p] records of partition p.
	consumer, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	handled := make([]*kgo.Record, len(lags)) // per partition, the last record handled
	for missing := len(lags); missing > 0; {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("the group did not read the records: %v", err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			if r.Offset == perPartition-lags[r.Partition]-1 && handled[r.Partition] == nil {
				handled[r.Partition] = r
				missing--
			}
		})
	}
	if err := consumer.CommitRecords(ctx, handled...); err != nil {
		t.Fatalf("commit: %v", err)
	}
	committed, err := admin.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p, lag := range lags {
		if o, _ := committed.Lookup(topic, int32(p)); o.At != perPartition-lag {
			t.Fatalf("the broker has %s/%d committed at %d, want %d", topic, p, o.At, perPartition-lag)
		}
	}

	// Burrow reads the commits from __consumer_offsets. It subscribes its
	// 50 partitions one at a time per broker, each behind a fetch that
	// waits its 250 ms (sarama 1.22): it reads the group's partition a few
	// seconds after its start.
	var wantTotal int64
	for _, lag := range lags {
		wantTotal += lag
	}
	var status *burrowLag
	for deadline := time.Now().Add(30 * time.Second); ; {
		status = &burrowLag{}
		api.get(t, "/v3/kafka/kq/consumer/"+group+"/lag", status)
		problem := status.differs(topic, lags, perPartition, wantTotal)
		if problem == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Burrow's lag of %s, 30 s after the commits: %s\nits last answer: %s\n%s", group, problem, status.raw, api.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("Burrow reports %s's lag as %d (%v per partition), %v after the start", group, status.Status.TotalLag, lags, time.Since(began).Round(time.Millisecond))
}

// listOffsetsV0 sends addr a ListOffsets v0 request for the latest offset
// of topic/partition (at most one), as Burrow 1.2.1 does, and returns the
// offsets answered, or what went wrong.
func listOffsetsV0(t *testing.T, addr, topic string, partition int32) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version, req.ReplicaID = 0, -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.MaxNumOffsets = partition, -1, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if _, err := conn.Write(kmsg.NewRequestFormatter(kmsg.FormatterClientID("burrow-test")).AppendRequest(nil, req, 1)); err != nil {
		return fmt.Sprintf("sending it: %v", err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return fmt.Sprintf("the broker closed the connection without an answer (%v)", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, frame); err != nil || len(frame) < 4 {
		return fmt.Sprintf("a cut answer (%v)", err)
	}
	resp := kmsg.NewPtrListOffsetsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(frame[4:]); err != nil { // after the correlation id
		return fmt.Sprintf("an answer that does not decode as v0: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Sprintf("an answer for %d topics", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return fmt.Sprintf("error %v", err)
	}
	return fmt.Sprint(p.OldStyleOffsets)
}

// burrowLag is Burrow's answer to /v3/kafka/<cluster>/consumer/<group>/lag.
type burrowLag struct {
	raw    string
	Error  bool   `json:"error"`
	Msg    string `json:"message"`
	Status struct {
		Group      string `json:"group"`
		TotalLag   int64  `json:"totallag"`
		Partitions []struct {
			Topic      string        `json:"topic"`
			Partition  int32         `json:"partition"`
			CurrentLag int64         `json:"current_lag"`
			End        *burrowCommit `json:"end"`
		} `json:"partitions"`
	} `json:"status"`
}

type burrowCommit struct {
	Offset int64 `json:"offset"`
	Lag    int64 `json:"lag"`
}

// differs says how the answer differs from the lags committed, or "".
func (s *burrowLag) differs(topic string, lags []int64, end, total int64) string {
	if s.Error {
		return "error: " + s.Msg
	}
	seen := make([]bool, len(lags))
	for _, p := range s.Status.Partitions {
		if p.Topic != topic || p.Partition < 0 || int(p.Partition) >= len(lags) {
			return fmt.Sprintf("a partition %s/%d, not committed to", p.Topic, p.Partition)
		}
		want := lags[p.Partition]
		if p.CurrentLag != want {
			return fmt.Sprintf("%s/%d: current_lag %d, want %d", topic, p.Partition, p.CurrentLag, want)
		}
		if p.End == nil || p.End.Offset != end-want || p.End.Lag != want {
			return fmt.Sprintf("%s/%d: end %+v, want offset %d lag %d", topic, p.Partition, p.End, end-want, want)
		}
		seen[p.Partition] = true
	}
	for p, ok := range seen {
		if !ok {
			return fmt.Sprintf("%s/%d is missing", topic, p)
		}
	}
	if s.Status.TotalLag != total {
		return fmt.Sprintf("totallag %d, want %d", s.Status.TotalLag, total)
	}
	return ""
}

// helperProcess is a process the test runs (ZooKeeper, Burrow), its output in a
// file, killed when the test ends.
type helperProcess struct {
	name    string
	logPath string
	exited  chan struct{} // closed when the process has exited
	err     error         // its exit, once exited is closed
}

func startHelperProcess(t *testing.T, dir, name string, cmd *exec.Cmd) *helperProcess {
	t.Helper()
	c := &helperProcess{name: name, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(c.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// logs is the end of the process's output.
func (c *helperProcess) logs() string {
	text, _ := os.ReadFile(c.logPath)
	lines := strings.SplitAfter(string(text), "\n")
	if len(lines) > 150 {
		lines = append([]string{fmt.Sprintf("[%d lines before]\n", len(lines)-150)}, lines[len(lines)-150:]...)
	}
	return fmt.Sprintf("--- %s log (%s):\n%s", c.name, c.logPath, strings.Join(lines, ""))
}

type zooKeeper struct {
	*helperProcess
	addr string
}

// startZooKeeper runs a standalone ZooKeeper on a free port with a
// temporary data directory: no admin server, no four-letter words.
func startZooKeeper(t *testing.T, java, jar string) *zooKeeper {
	t.Helper()
	dir := t.TempDir()
	addr := testport.Addrs(t, 1)[0]
	host, port, _ := net.SplitHostPort(addr)
	config := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%s\nclientPortAddress=%s\nmaxClientCnxns=0\n"+
		"admin.enableServer=false\n4lw.commands.whitelist=\nstandaloneEnabled=true\n", filepath.Join(dir, "data"), port, host)
	cfg := filepath.Join(dir, "zoo.cfg")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// The jar's manifest names the rest of its class path; slf4j-simple
	// (when there) sends its log to stderr.
	classPath := jar
	if _, err := os.Stat("/usr/share/java/slf4j-simple.jar"); err == nil {
		classPath += ":/usr/share/java/slf4j-simple.jar"
	}
	cmd := exec.Command(java, "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Dzookeeper.admin.enableServer=false",
		"-cp", classPath, "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg)
	return &zooKeeper{helperProcess: startHelperProcess(t, dir, "zookeeper", cmd), addr: addr}
}

// waitReady waits until ZooKeeper accepts connections on its client port.
func (z *zooKeeper) waitReady(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		conn, err := net.DialTimeout("tcp", z.addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-z.exited:
			t.Fatalf("ZooKeeper exited (%v):\n%s", z.err, z.logs())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("ZooKeeper not listening on %s in %v:\n%s", z.addr, within, z.logs())
		}
	}
}

type burrowAPI struct {
	*helperProcess
	base string
}

// startBurrow runs Burrow with a config of its own: the cluster "kq" at
// addrs, read as Kafka 2.1.0 (the newest version Burrow 1.2.1 knows),
// its group offsets from __consumer_offsets, its state in ZooKeeper at
// zookeeper, its HTTP API on a free port. It returns once /burrow/admin
// answers.
func startBurrow(t *testing.T, bin string, addrs []string, zookeeper string) *burrowAPI {
	t.Helper()
	dir := t.TempDir()
	addr := testport.Addrs(t, 1)[0]
	servers := `"` + strings.Join(addrs, `", "`) + `"`
	config := fmt.Sprintf(`[general]
pidfile="%s"

[logging]
level="info"

[zookeeper]
servers=["%s"]
timeout=6
root-path="/burrow"

[client-profile.kq]
client-id="burrow-test"
kafka-version="2.1.0"

[cluster.kq]
class-name="kafka"
servers=[%s]
client-profile="kq"
topic-refresh=1
offset-refresh=1

[consumer.kq]
class-name="kafka"
cluster="kq"
servers=[%s]
client-profile="kq"
offsets-topic="__consumer_offsets"
start-latest=false

[httpserver.default]
address="%s"

[storage.default]
class-name="inmemory"
workers=4
intervals=10
expire-group=604800
min-distance=1

[evaluator.default]
class-name="caching"
expire-cache=1
`, filepath.Join(dir, "burrow.pid"), zookeeper, servers, servers, addr)
	if err := os.WriteFile(filepath.Join(dir, "burrow.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-dir", dir)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1") // light on a small machine
	api := &burrowAPI{helperProcess: startHelperProcess(t, dir, "burrow", cmd), base: "http://" + addr}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(api.base + "/burrow/admin")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return api
			}
		}
		select {
		case <-api.exited:
			t.Fatalf("Burrow exited (%v):\n%s", api.err, api.logs())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("Burrow's HTTP API not up in 20 s:\n%s", api.logs())
		}
	}
}

// get decodes the JSON answer to path into v; a 404 (a cluster, topic or
// group Burrow does not know yet) leaves v as it was. Burrow having exited
// or another status fails the test.
func (b *burrowAPI) get(t *testing.T, path string, v any) {
	t.Helper()
	select {
	case <-b.exited:
		t.Fatalf("Burrow exited (%v):\n%s", b.err, b.logs())
	default:
	}
	resp, err := http.Get(b.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, b.logs())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s\n%s", path, resp.Status, body, b.logs())
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	if lag, ok := v.(*burrowLag); ok {
		lag.raw = string(body)
	}
}
