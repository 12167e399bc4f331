package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildKqbench builds the command once per test: the tool runs its brokers
// as child processes of itself, so it is tested as a binary.
func buildKqbench(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kqbench")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runKqbench runs kqbench with its own data directory and returns what it
// printed to stdout (the summary) and stderr (the progress).
func runKqbench(t *testing.T, bin string, args ...string) (string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KQBENCH_DIR="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kqbench: %v\n%s", err, stderr.String())
	}
	return string(out), stderr.String()
}

func TestProduceAgainstKfake(t *testing.T) {
	bin := buildKqbench(t)
	out, progress := runKqbench(t, bin, "produce", "-records", "3000", "-vs", "kfake", "-pairs", "2")
	// Alternating runs, A B A B, then the summary with the ratio.
	first, second := strings.Index(progress, "1/2 kqbroker"), strings.Index(progress, "1/2 kfake")
	third := strings.Index(progress, "2/2 kqbroker")
	if first < 0 || second < first || third < second {
		t.Fatalf("runs not alternating:\n%s", progress)
	}
	for _, want := range []string{"kqbroker   min", "kfake      min", "median ratio kqbroker/kfake:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestCommitsAgainstKfake(t *testing.T) {
	bin := buildKqbench(t)
	out, progress := runKqbench(t, bin, "commits", "-duration", "300ms", "-vs", "kfake", "-pairs", "1")
	for _, want := range []string{"offset commits", "kqbroker   min", "kfake      min", "median ratio kqbroker/kfake:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(progress, "p99 ms") {
		t.Errorf("the runs report no commit latency:\n%s", progress)
	}
}

func TestResumedIsAfterTheLongestPause(t *testing.T) {
	from := time.Now()
	h := &handled{acked: map[string]time.Time{}}
	for _, ms := range []int{-500, 100, 200, 1700, 1750, 1800, 2100} {
		h.times = append(h.times, from.Add(time.Duration(ms)*time.Millisecond))
	}
	resumed, pause, last := h.resumedAfter(from)
	if got := resumed.Sub(from); got != 1700*time.Millisecond {
		t.Errorf("resumed %v after, want 1.7s", got)
	}
	if pause != 1500*time.Millisecond {
		t.Errorf("pause %v, want 1.5s", pause)
	}
	if got := last.Sub(from); got != 2100*time.Millisecond {
		t.Errorf("last %v after, want 2.1s", got)
	}
}

func TestSuiteRewritesTheMarkedTable(t *testing.T) {
	bin := buildKqbench(t)
	doc := filepath.Join(t.TempDir(), "benchmarks.md")
	before := "# Benchmarks\n\nintro\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\nanalysis stays\n"
	if err := os.WriteFile(doc, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "suite", "-pairs", "1", "-only", "idle", "-write", doc)
	cmd.Env = append(os.Environ(), "KQBENCH_DIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kqbench suite: %v\n%s", err, out)
	}
	after, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(after)
	if strings.Contains(text, "old table") || !strings.HasPrefix(text, "# Benchmarks\n\nintro\n\n") || !strings.HasSuffix(text, "\n\nanalysis stays\n") {
		t.Fatalf("the section was not replaced in place:\n%s", text)
	}
	for _, want := range []string{"| broker RSS idle | `kqbench idle -vs kfake` |", "cores", "kfake: "} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
}

func TestSuiteRefusesAFileWithoutMarkers(t *testing.T) {
	bin := buildKqbench(t)
	doc := filepath.Join(t.TempDir(), "benchmarks.md")
	if err := os.WriteFile(doc, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "suite", "-write", doc).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "add the two markers") {
		t.Fatalf("want a refusal naming the markers, got %v:\n%s", err, out)
	}
}

func TestMedianAndReadyLine(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 = %v", got)
	}
	if got := median([]float64{4, 1, 2, 3}); got != 2.5 {
		t.Errorf("median of 4 = %v", got)
	}
	addr, ok := readyAddress(`time=2026-11-22T01:00:00Z level=INFO msg="kqbroker ready" listen=127.0.0.1:40123 advertise=127.0.0.1:40123`)
	if !ok || addr != "127.0.0.1:40123" {
		t.Errorf("readyAddress = %q, %v", addr, ok)
	}
	if _, ok := readyAddress(`level=INFO msg="stopping" listen=1.2.3.4:5`); ok {
		t.Error("a line that is not the ready line was taken for it")
	}
}

func TestBadFlagsSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"produce", "-vs", "redpanda"}, "the peers kqbench can start are kfake, kqbroker-interval and kqbroker-cluster"},
		{[]string{"produce", "-vs", "kfake", "-bootstrap", "x:1"}, "exclude each other"},
		{[]string{"startup", "-vs", "kfake"}, "no -vs or -bootstrap"},
		{[]string{"coordinator-failover", "-vs", "kfake"}, "no -vs or -bootstrap"},
		{[]string{"frobnicate"}, "unknown workload"},
	} {
		if _, err := parseSpec(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error with %q", tc.args, err, tc.want)
		}
	}
}
