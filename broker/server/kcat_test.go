package server_test

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kcat runs kcat (librdkafka) with args and stdin; .ci/run installs it.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat; .ci/run installs it)")
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %v: %v\n%s%s", args, err, out, stderr.String())
	}
	return string(out)
}

func TestKcat(t *testing.T) {
	b := startBroker(t, nil)
	before := time.Now().UnixMilli()
	kcat(t, "alpha\nbeta\ngamma\n", "-b", b.Addr, "-t", "kcat-topic", "-P", "-K:", "-z", "snappy")
	time.Sleep(5 * time.Millisecond)
	middle := time.Now().UnixMilli()
	kcat(t, "delta\n", "-b", b.Addr, "-t", "kcat-topic", "-P")

	out := kcat(t, "", "-b", b.Addr, "-t", "kcat-topic", "-C", "-o", "beginning", "-e", "-f", "%o:%s\n")
	if want := "0:alpha\n1:beta\n2:gamma\n3:delta\n"; out != want {
		t.Fatalf("consumed %q, want %q", out, want)
	}
	meta := kcat(t, "", "-b", b.Addr, "-L")
	topic, _ := b.Cluster.Topic("kcat-topic")
	leader := fmt.Sprintf("leader %d,", topic.Partitions[0].State().Leader)
	if !strings.Contains(meta, `topic "kcat-topic" with 1 partitions`) || !strings.Contains(meta, leader) {
		t.Fatalf("metadata listing:\n%s", meta)
	}
	// -Q: offsets by time.
	query := kcat(t, "", "-b", b.Addr, "-Q", "-t", "kcat-topic:0:"+strconv.FormatInt(middle, 10))
	if !strings.Contains(query, "offset 3") {
		t.Fatalf("offset for time %d (first batch at %d): %s", middle, before, query)
	}
	query = kcat(t, "", "-b", b.Addr, "-Q", "-t", "kcat-topic:0:"+strconv.FormatInt(before-60_000, 10))
	if !strings.Contains(query, "offset 0") {
		t.Fatalf("offset for an early time: %s", query)
	}
	// -o s@ts: consume from a time.
	out = kcat(t, "", "-b", b.Addr, "-t", "kcat-topic", "-C", "-o", "s@"+strconv.FormatInt(middle, 10), "-e", "-f", "%s\n")
	if out != "delta\n" {
		t.Fatalf("consumed from time: %q", out)
	}
}
