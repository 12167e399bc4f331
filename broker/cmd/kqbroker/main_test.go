package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
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
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-data-dir", dataDir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	addr, adminAddr := "", ""
	listen, admin := regexp.MustCompile(`listen=(\S+)`), regexp.MustCompile(`admin=(\S+)`)
	for addr == "" && lines.Scan() {
		if m := listen.FindStringSubmatch(lines.Text()); m != nil && strings.Contains(lines.Text(), "kqbroker ready") {
			addr = m[1]
			if a := admin.FindStringSubmatch(lines.Text()); a != nil {
				adminAddr = a[1]
			}
		}
	}
	if addr == "" {
		t.Fatal("kqbroker never said it was ready")
	}
	go func() {
		for lines.Scan() {
		}
	}()
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

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("kqbroker did not exit 0 on SIGTERM: %v", err)
	}
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
