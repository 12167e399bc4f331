// Package testport hands out loopback addresses for tests that start
// servers in other processes (kqbroker, redis-server, mariadbd), which must
// be told their port before they bind it.
//
// Taking a port with "127.0.0.1:0" and giving it back races with the rest
// of the machine: the kernel hands the same ephemeral port to the next
// listener on :0 (a toxiproxy proxy, a broker started by another test
// package) or to an outgoing connection. The ports here come from below the
// kernel's ephemeral range, where neither happens, and each is reserved for
// the life of the test with a lock file, so parallel test processes of this
// module never get the same one:
//
//	$TMPDIR/kqstack-testports/<port>.lock   flock(2)-held while in use
//
// A lock dies with its process, so a killed test leaves nothing reserved.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Addrs returns n loopback addresses ("127.0.0.1:port") that nothing
// listens on, reserved until the test ends.
func Addrs(t testing.TB, n int) []string {
	t.Helper()
	addrs, release, err := Reserve(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return addrs
}

// Port returns one free loopback port, reserved until the test ends.
func Port(t testing.TB) int {
	t.Helper()
	_, port, _ := strings.Cut(Addrs(t, 1)[0], ":")
	n, _ := strconv.Atoi(port)
	return n
}

// Reserve returns n free loopback addresses and the function that gives
// them back, for programs (benchmarks) that are not tests.
func Reserve(n int) ([]string, func(), error) {
	low, high := window()
	dir := filepath.Join(os.TempDir(), "kqstack-testports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, nil, err
	}
	var addrs []string
	var locks []*os.File
	release := func() {
		for _, f := range locks {
			f.Close() // closing drops the flock
		}
	}
	for tries := 0; len(addrs) < n; tries++ {
		if tries > 100*n {
			release()
			return nil, nil, fmt.Errorf("no free loopback port in %d-%d after %d tries", low, high, tries)
		}
		port := low + rand.IntN(high-low)
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another test process has it
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			f.Close() // something outside this module has it
			continue
		}
		ln.Close()
		locks = append(locks, f)
		addrs = append(addrs, addr)
	}
	return addrs, release, nil
}

// window is the range ports are drawn from: below the kernel's ephemeral
// range when there is room, above it otherwise.
func window() (low, high int) {
	ephemeralLow, ephemeralHigh := 32768, 60999
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if fields := strings.Fields(string(data)); len(fields) == 2 {
			if l, err := strconv.Atoi(fields[0]); err == nil {
				ephemeralLow = l
			}
			if h, err := strconv.Atoi(fields[1]); err == nil {
				ephemeralHigh = h
			}
		}
	}
	if ephemeralLow-1 >= 20000 {
		return 10000, ephemeralLow - 1
	}
	return ephemeralHigh + 1, 65535
}
