package main

import (
	"strings"
	"testing"

	"github.com/kqstack/kqstack/broker/brokertest"
	"github.com/kqstack/kqstack/broker/config"
)

func TestTopicCreateAndList(t *testing.T) {
	b := brokertest.Start(t, func(c *config.Config) { c.AutoCreateTopics = false })
	kqctl := func(args ...string) (int, string, string) {
		var stdout, stderr strings.Builder
		code := run(append([]string{"--bootstrap-server", b.Addr}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, out, errOut := kqctl("topic", "create", "orders", "-p", "6", "--config", "retention.ms=3600000"); code != 0 || !strings.Contains(out, "created topic orders with 6 partitions") {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := kqctl("topic", "create", "orders"); code != 1 || !strings.Contains(errOut, "TOPIC_ALREADY_EXISTS") {
		t.Fatalf("create again: %d %q", code, errOut)
	}
	if code, out, _ := kqctl("topic", "create", "orders", "--if-not-exists"); code != 0 || !strings.Contains(out, "exists") {
		t.Fatalf("create --if-not-exists: %d %q", code, out)
	}
	if code, _, errOut := kqctl("topic", "create", "bad name"); code != 1 || !strings.Contains(errOut, "may contain only") {
		t.Fatalf("bad name: %d %q", code, errOut)
	}
	if code, out, _ := kqctl("topic", "list"); code != 0 || !strings.Contains(out, "orders") || !strings.Contains(out, " 6\n") {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _, errOut := kqctl("topic", "frobnicate"); code != 2 || !strings.Contains(errOut, "usage") {
		t.Fatalf("unknown verb: %d %q", code, errOut)
	}
}
