package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// brokerProcess is a kqbroker binary run by a test.
type brokerProcess struct {
	cmd       *exec.Cmd
	Addr      string // the Kafka listener
	AdminAddr string // "" when the admin server is off
	output    *lockedBuffer
	exited    chan struct{}
	exitErr   error
}

// startProcess runs bin with args and waits for its "kqbroker ready" line.
// The process is killed when the test ends if it is still running.
func startProcess(t *testing.T, bin string, args ...string) *brokerProcess {
	t.Helper()
	p := &brokerProcess{cmd: exec.Command(bin, args...), output: &lockedBuffer{}, exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	ready := make(chan struct{})
	go func() {
		listen, admin := regexp.MustCompile(`listen=(\S+)`), regexp.MustCompile(`admin=(\S+)`)
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			line := lines.Text()
			p.output.WriteString(line + "\n")
			if strings.Contains(line, "kqbroker ready") && p.Addr == "" {
				p.Addr = listen.FindStringSubmatch(line)[1]
				if m := admin.FindStringSubmatch(line); m != nil && m[1] != `""` {
					p.AdminAddr = m[1]
				}
				close(ready)
			}
		}
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("kqbroker %v exited before it was ready (%v):\n%s", args, p.exitErr, p.output.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("kqbroker %v not ready in 30 s:\n%s", args, p.output.String())
	}
	return p
}

// stop sends SIGTERM and waits for the exit; it fails the test unless the
// broker exits 0.
func (p *brokerProcess) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("kqbroker did not stop within 30 s of SIGTERM")
	}
	if p.exitErr != nil {
		t.Fatalf("kqbroker did not exit 0 on SIGTERM: %v\n%s", p.exitErr, p.output.String())
	}
}

// kill is kill -9, and waits for the exit.
func (p *brokerProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// lockedBuffer collects a process's output for the test to read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
