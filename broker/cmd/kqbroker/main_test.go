package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// buildBroker compiles kqbroker once for the tests in this file.
func buildBroker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kqbroker")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestSIGTERMStopsCleanly(t *testing.T) {
	bin := buildBroker(t)
	dataDir := t.TempDir()
	broker := startProcess(t, bin, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-data-dir", dataDir)
	addr, adminAddr := broker.Addr, broker.AdminAddr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ProduceSync(ctx, &kgo.Record{Topic: "shutdown", Value: []byte("kept")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	client.Close()

	// The admin port: health, readiness, metrics and the console.
	for path, want := range map[string]string{
		"/healthz": "ok",
		"/readyz":  "ready",
		"/metrics": `kqbroker_topic_records_in_total{topic="shutdown"} 1`,
		"/":        "<title>kqbroker console</title>",
	} {
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Fatalf("GET %s: %d, want %q in:\n%.2000s", path, resp.StatusCode, want, body)
		}
	}

	broker.stop(t)
	markers, _ := filepath.Glob(filepath.Join(dataDir, "shutdown-*", "clean-shutdown"))
	partitions, _ := filepath.Glob(filepath.Join(dataDir, "shutdown-*"))
	if len(partitions) == 0 || len(markers) != len(partitions) {
		t.Fatalf("%d partitions, %d clean-shutdown markers", len(partitions), len(markers))
	}
}

func TestBadConfigNamesTheField(t *testing.T) {
	bin := buildBroker(t)
	badFile := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badFile, []byte("log:\n  flush_mode: sometimes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	unknownKey := filepath.Join(t.TempDir(), "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("listn: 127.0.0.1:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-listen", "not-an-address"}, "listen"},
		{[]string{"-advertise", "host-without-port"}, "advertise"},
		{[]string{"-config", badFile}, "log.flush_mode"},
		{[]string{"-config", unknownKey}, "listn"},
		{[]string{"-auto-create-topics", "maybe"}, "auto-create-topics"},
		{[]string{"-node-id", "4294967296"}, "-node-id = 4294967296: must be between 0 and 2147483647"},
	}
	for _, tt := range cases {
		out, err := exec.Command(bin, tt.args...).CombinedOutput()
		exit, ok := err.(*exec.ExitError)
		if !ok || exit.ExitCode() == 0 {
			t.Errorf("%v: exited %v, want non-zero", tt.args, err)
		}
		if !strings.Contains(string(out), tt.want) {
			t.Errorf("%v: output does not name %q:\n%s", tt.args, tt.want, out)
		}
	}
}

func TestHelpShowsEachDefaultOnce(t *testing.T) {
	out, err := exec.Command(buildBroker(t), "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("kqbroker -h: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Count(line, "(default") > 1 {
			t.Errorf("two defaults in %q", line)
		}
	}
	for _, want := range []string{`(default "127.0.0.1:9644")`, "broker id (default 1)", "(default true)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-h does not show %s:\n%s", want, out)
		}
	}
}

func TestADataDirHasOneOwner(t *testing.T) {
	bin := buildBroker(t)
	dataDir := t.TempDir()
	first := startProcess(t, bin, "-listen", "127.0.0.1:0", "-admin-listen", "", "-data-dir", dataDir)

	second := exec.Command(bin, "-listen", "127.0.0.1:0", "-admin-listen", "", "-data-dir", dataDir)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = second.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = second.Process.Kill()
		t.Fatal("a second kqbroker on a data directory in use did not exit")
	}
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() == 0 {
		t.Fatalf("a second kqbroker on the same data directory: %v, want a non-zero exit\n%s", err, out)
	}
	want := fmt.Sprintf("data directory %s is in use by another kqbroker (pid %d)", dataDir, first.cmd.Process.Pid)
	if !strings.Contains(string(out), want) {
		t.Fatalf("second kqbroker said:\n%s\nwant %q", out, want)
	}
	if strings.Contains(string(out), "kqbroker ready") {
		t.Fatal("the second kqbroker served before it gave up")
	}

	// kill -9 leaves the lock file behind; the next start is not blocked.
	first.kill()
	restarted := startProcess(t, bin, "-listen", "127.0.0.1:0", "-admin-listen", "", "-data-dir", dataDir)
	restarted.stop(t)
}
