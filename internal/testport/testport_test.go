package testport

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestAddrsAreDistinctBindableAndOutsideTheEphemeralRange(t *testing.T) {
	low, high := window()
	seen := map[string]bool{}
	for _, addr := range Addrs(t, 20) {
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
		_, port, _ := net.SplitHostPort(addr)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("cannot bind %s (%s not in %d-%d?): %v", addr, port, low, high, err)
		}
		ln.Close()
	}
}

func TestAReservedPortIsLockedUntilReleased(t *testing.T) {
	addrs, release, err := Reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	path := filepath.Join(os.TempDir(), "kqstack-testports", port+".lock")
	tryLock := func() error {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err := tryLock(); err == nil {
		t.Fatalf("%s could be locked while reserved", path)
	}
	release()
	if err := tryLock(); err != nil {
		t.Fatalf("%s still locked after release: %v", path, err)
	}
}
