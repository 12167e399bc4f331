package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

// kqctlAt runs kqctl in-process against addr, with stdin.
func kqctlAt(addr string) func(stdin string, args ...string) (int, string, string) {
	return func(stdin string, args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := run(append([]string{"--bootstrap-server", addr}, args...), strings.NewReader(stdin), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
}

func TestTopicVerbs(t *testing.T) {
	b := brokertest.Start(t, func(c *config.Config) { c.AutoCreateTopics = false })
	kqctl := kqctlAt(b.Addr)
	if code, out, errOut := kqctl("", "topic", "create", "orders", "-p", "6", "--config", "retention.ms=3600000"); code != 0 || !strings.Contains(out, "created topic orders with 6 partitions") {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	b.Sync(t) // on a cluster, every broker knows the topic before it is listed (as in Kafka, metadata reaches them a moment apart)
	if code, _, errOut := kqctl("", "topic", "create", "orders"); code != 1 || !strings.Contains(errOut, "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("create again: %d %q", code, errOut)
	}
	if code, out, _ := kqctl("", "topic", "create", "orders", "--if-not-exists"); code != 0 || !strings.Contains(out, "exists") {
		t.Fatalf("create --if-not-exists: %d %q", code, out)
	}
	if code, _, errOut := kqctl("", "topic", "create", "bad name"); code != 1 || !strings.Contains(errOut, "use only letters, digits") {
		t.Fatalf("bad name: %d %q", code, errOut)
	}
	if code, out, _ := kqctl("", "topic", "list"); code != 0 || !strings.Contains(out, "orders") || !strings.Contains(out, "TOPIC") {
		t.Fatalf("list: %d %q", code, out)
	}
	code, out, _ := kqctl("", "topic", "list", "-o", "json")
	var listed []struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &listed); code != 0 || err != nil || len(listed) != 1 || listed[0].Name != "orders" || listed[0].Partitions != 6 {
		t.Fatalf("list -o json: %d %v %q", code, err, out)
	}

	lines := "k1:{\"id\":1}\nk2:{\"id\":2}\nk1:{\"id\":3}\n"
	if code, out, errOut := kqctl(lines, "produce", "orders", "-K", ":", "-H", "source=test"); code != 0 || !strings.Contains(out, "produced 3 records to orders") {
		t.Fatalf("produce: %d %q %q", code, out, errOut)
	}
	code, out, errOut := kqctl("", "topic", "describe", "orders")
	if code != 0 || !strings.Contains(out, "PartitionCount: 6") || !strings.Contains(out, "Records: 3") || !strings.Contains(out, "retention.ms=3600000") || !strings.Contains(out, "END-OFFSET") {
		t.Fatalf("describe: %d %q %q", code, out, errOut)
	}
	if id := regexp.MustCompile(`TopicId: (\S+)`).FindStringSubmatch(out); id == nil || len(id[1]) != 22 || strings.ContainsAny(id[1], "=+/") {
		t.Fatalf("describe prints the topic id %q, want Kafka's form: 22 characters of URL-safe base64, no padding", id)
	}
	_, out, _ = kqctl("", "topic", "describe", "orders", "-o", "json")
	var described struct {
		SizeBytes  int64 `json:"size_bytes"`
		Partitions []struct {
			EndOffset int64 `json:"end_offset"`
			SizeBytes int64 `json:"size_bytes"`
		} `json:"partition_details"`
	}
	if err := json.Unmarshal([]byte(out), &described); err != nil || described.SizeBytes <= 0 || len(described.Partitions) != 6 {
		t.Fatalf("describe -o json: %v %q", err, out)
	}
	for _, p := range described.Partitions {
		if (p.EndOffset > 0) != (p.SizeBytes > 0) {
			t.Fatalf("a partition's size does not follow its records: %q", out)
		}
	}
	if code, out, errOut := kqctl("", "topic", "alter-config", "orders", "--set", "retention.ms=60000"); code != 0 || !strings.Contains(out, "altered") {
		t.Fatalf("alter-config: %d %q %q", code, out, errOut)
	}
	b.Sync(t)
	if _, out, _ := kqctl("", "topic", "describe", "orders"); !strings.Contains(out, "retention.ms=60000") {
		t.Fatalf("describe after alter: %q", out)
	}
	if code, _, errOut := kqctl("", "topic", "describe", "missing"); code != 1 || !strings.Contains(errOut, "kqctl topic create missing") {
		t.Fatalf("describe a missing topic: %d %q", code, errOut)
	}
	if code, out, errOut := kqctl("", "topic", "delete", "orders"); code != 0 || !strings.Contains(out, "deleted topic orders") {
		t.Fatalf("delete: %d %q %q", code, out, errOut)
	}
	b.Sync(t)
	if code, _, errOut := kqctl("", "topic", "delete", "orders"); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("delete again: %d %q", code, errOut)
	}
	if code, _, errOut := kqctl("", "topic", "frobnicate"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Fatalf("unknown verb: %d %q", code, errOut)
	}
	if code, _, errOut := kqctl("", "produce", "nope"); code != 1 || !strings.Contains(errOut, "does not create topics on first use (auto_create_topics is off); create it with: kqctl topic create nope") {
		t.Fatalf("produce to a missing topic, auto-creation off: %d %q", code, errOut)
	}
}

func TestProduceConsumeAndGroups(t *testing.T) {
	b := brokertest.Start(t, nil)
	kqctl := kqctlAt(b.Addr)
	for _, topic := range []string{"payments", "audit"} {
		if code, _, errOut := kqctl("", "topic", "create", topic, "-p", "3"); code != 0 {
			t.Fatalf("create %s: %q", topic, errOut)
		}
	}
	if code, _, errOut := kqctl("a\nb\nc\nd\n", "produce", "payments", "-k", "order-7", "-H", "trace=t1"); code != 0 {
		t.Fatalf("produce: %q", errOut)
	}
	// From a file, with acks=1.
	file := filepath.Join(t.TempDir(), "records.txt")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := kqctl("", "produce", "audit", "-f", file, "--acks", "1"); code != 0 || !strings.Contains(out, "produced 1 records to audit") {
		t.Fatalf("produce -f: %d %q %q", code, out, errOut)
	}
	// acks=1 answers before the followers have it (on three brokers):
	// consumers see it once the high watermark passes it, a moment later.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, out, errOut := kqctl("", "consume", "audit", "--from", "earliest", "-e")
		if code == 0 && out == "from-file\n" {
			break
		}
		if code != 0 || out != "" || time.Now().After(deadline) {
			t.Fatalf("consume what -f produced: %d %q %q", code, out, errOut)
		}
	}
	// Not in a group: from earliest, -e stops at the end.
	code, out, errOut := kqctl("", "consume", "payments", "--from", "earliest", "-e")
	if code != 0 || out != "a\nb\nc\nd\n" {
		t.Fatalf("consume: %d %q %q", code, out, errOut)
	}
	// -e ends at once where there is nothing to read from the start chosen.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, from := range []string{"latest", future} {
		if code, out, errOut := kqctl("", "consume", "payments", "--from", from, "-e"); code != 0 || out != "" {
			t.Fatalf("consume --from %s -e: %d %q %q", from, code, out, errOut)
		}
	}
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if code, out, errOut := kqctl("", "consume", "payments", "--from", past, "-e"); code != 0 || out != "a\nb\nc\nd\n" {
		t.Fatalf("consume --from an hour ago: %d %q %q", code, out, errOut)
	}
	code, out, errOut = kqctl("", "topic", "describe", "payments", "-o", "json")
	var placed struct {
		Partitions []struct {
			Partition int32 `json:"partition"`
			EndOffset int64 `json:"end_offset"`
		} `json:"partition_details"`
	}
	if err := json.Unmarshal([]byte(out), &placed); err != nil {
		t.Fatalf("describe: %v %q %q", err, out, errOut)
	}
	for _, p := range placed.Partitions {
		if p.EndOffset == 4 { // the keyed records all went to one partition
			if code, out, errOut := kqctl("", "consume", "payments", "-p", fmt.Sprint(p.Partition), "--from", "2", "-e"); code != 0 || out != "c\nd\n" {
				t.Fatalf("consume -p %d --from 2: %d %q %q", p.Partition, code, out, errOut)
			}
		}
	}
	code, out, errOut = kqctl("", "consume", "payments", "--from", "earliest", "-n", "2", "--format", "json")
	if code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("consume -n 2: %d %q %q", code, out, errOut)
	}
	var first struct {
		Key     string            `json:"key"`
		Value   string            `json:"value"`
		Offset  int64             `json:"offset"`
		Headers map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &first); err != nil || first.Key != "order-7" || first.Value != "a" || first.Offset != 0 || first.Headers["trace"] != "t1" {
		t.Fatalf("json record: %v %+v", err, first)
	}

	// In a group: it commits what it printed; describe shows lag 0.
	if code, out, errOut := kqctl("", "consume", "payments", "-g", "billing", "--from", "earliest", "-e"); code != 0 || strings.Count(out, "\n") != 4 {
		t.Fatalf("group consume: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := kqctl("e\nf\n", "produce", "payments", "-k", "order-7"); code != 0 {
		t.Fatalf("produce more: %q", errOut)
	}
	code, out, errOut = kqctl("", "group", "describe", "billing")
	if code != 0 || !strings.Contains(out, "CURRENT-OFFSET") || !strings.Contains(out, "total lag 2") {
		t.Fatalf("group describe: %d %q %q", code, out, errOut)
	}
	if code, out, _ := kqctl("", "group", "list"); code != 0 || !strings.Contains(out, "billing") || !strings.Contains(out, "Empty") {
		t.Fatalf("group list: %d %q", code, out)
	}
	// reset-offsets: a dry run by default, then --execute.
	code, out, errOut = kqctl("", "group", "reset-offsets", "billing", "--topic", "payments", "--to", "earliest")
	if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, "NEW-OFFSET") {
		t.Fatalf("reset dry run: %d %q %q", code, out, errOut)
	}
	if _, out, _ := kqctl("", "group", "describe", "billing", "-o", "json"); !strings.Contains(out, `"lag": 2`) {
		t.Fatalf("the dry run changed the offsets: %q", out)
	}
	// shift:-1 moves each committed offset back by one (a partition with
	// nothing committed moves from the log start, clamped to it).
	code, out, errOut = kqctl("", "group", "reset-offsets", "billing", "--topic", "payments", "--to", "shift:-1", "-o", "json")
	var shifted struct {
		Offsets []struct {
			Current int64 `json:"current_offset"`
			New     int64 `json:"new_offset"`
		} `json:"offsets"`
	}
	if err := json.Unmarshal([]byte(out), &shifted); code != 0 || err != nil || len(shifted.Offsets) != 3 {
		t.Fatalf("reset shift:-1: %d %v %q %q", code, err, out, errOut)
	}
	for _, o := range shifted.Offsets {
		if o.Current > 0 && o.New != o.Current-1 || o.Current < 0 && o.New != 0 {
			t.Fatalf("shift:-1 planned %+v", shifted.Offsets)
		}
	}
	if code, out, errOut := kqctl("", "group", "reset-offsets", "billing", "--topic", "payments", "--to", "earliest", "--execute"); code != 0 || !strings.Contains(out, "offsets reset") {
		t.Fatalf("reset --execute: %d %q %q", code, out, errOut)
	}
	if _, out, _ := kqctl("", "group", "describe", "billing", "-o", "json"); !strings.Contains(out, `"lag": 6`) {
		t.Fatalf("after reset to earliest: %q", out)
	}
	if code, _, errOut := kqctl("", "group", "reset-offsets", "billing", "--topic", "payments", "--to", "sideways"); code != 2 || !strings.Contains(errOut, "earliest, latest, offset:N") {
		t.Fatalf("bad --to: %d %q", code, errOut)
	}
	if code, out, errOut := kqctl("", "group", "delete", "billing"); code != 0 || !strings.Contains(out, "deleted group billing") {
		t.Fatalf("group delete: %d %q %q", code, out, errOut)
	}
	code, out, _ = kqctl("", "cluster", "describe", "-o", "json")
	var info struct {
		ClusterID string `json:"cluster_id"`
		Brokers   []struct {
			NodeID int32 `json:"node_id"`
		} `json:"brokers"`
		Topics int `json:"topics"`
	}
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil || info.ClusterID == "" || len(info.Brokers) != brokertest.ClusterSize() || info.Topics != 2 {
		t.Fatalf("cluster describe: %d %v %q", code, err, out)
	}
}

// TestProduceCreatesTopicsAsKafkaToolsDo: with auto-creation on, kqctl
// produce to a new topic creates it, as kafka-console-producer and kcat do,
// and says so.
func TestProduceCreatesTopicsAsKafkaToolsDo(t *testing.T) {
	b := brokertest.Start(t, func(c *config.Config) { c.DefaultPartitions = 2 })
	kqctl := kqctlAt(b.Addr)
	code, out, errOut := kqctl("one\ntwo\n", "produce", "fresh")
	if code != 0 || !strings.Contains(out, "produced 2 records to fresh") || !strings.Contains(errOut, "created topic fresh with 2 partitions (the broker creates topics on first use)") {
		t.Fatalf("produce to a new topic: %d %q %q", code, out, errOut)
	}
	code, out, errOut = kqctl("three\n", "produce", "fresh")
	if code != 0 || strings.Contains(errOut, "created topic") {
		t.Fatalf("produce to the topic, now there: %d %q %q", code, out, errOut)
	}
	if code, out, _ := kqctl("", "consume", "fresh", "--from", "earliest", "-e"); code != 0 || strings.Count(out, "\n") != 3 {
		t.Fatalf("consume: %d %q", code, out)
	}
}

func TestErrorsSayWhatToDo(t *testing.T) {
	b := brokertest.Start(t, nil)
	kqctl := kqctlAt(b.Addr)
	cases := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"topic", "create", "t", "--config", "retention.ms=soon"}, 1, []string{"INVALID_CONFIG", `retention.ms="soon"`, "must be an integer"}},
		{[]string{"topic", "create", "t", "--config", "nosuch.key=1"}, 1, []string{"INVALID_CONFIG", `unknown topic config "nosuch.key"`, "retention.ms"}},
		{[]string{"topic", "create", "__consumer_offsets"}, 1, []string{"INVALID_TOPIC_EXCEPTION", `names starting with "__" are kept for them`}},
		{[]string{"topic", "create", "t", "-p", "abc"}, 2, []string{`invalid value "abc" for flag -p`, "usage of kqctl topic create"}},
	}
	for _, tt := range cases {
		code, _, errOut := kqctl("", tt.args...)
		if code != tt.code {
			t.Errorf("%v: exit %d, want %d (%q)", tt.args, code, tt.code, errOut)
		}
		for _, want := range tt.want {
			if !strings.Contains(errOut, want) {
				t.Errorf("%v: %q does not say %q", tt.args, errOut, want)
			}
		}
		if first, _, _ := strings.Cut(strings.TrimPrefix(errOut, "kqctl: "), "\n"); strings.Count(errOut, first) > 1 {
			t.Errorf("%v: the error is printed twice: %q", tt.args, errOut)
		}
	}
}

func TestUnreachableBrokerNamesTheAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	t.Setenv("KQ_BROKERS", addr)
	var stdout, stderr strings.Builder
	code := run([]string{"topic", "list"}, strings.NewReader(""), &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "cannot reach the broker at "+addr) {
		t.Fatalf("got %d %q", code, stderr.String())
	}
}
