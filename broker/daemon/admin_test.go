package daemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
)

// Until the logs are recovered, the admin port is up and says so: healthy,
// not ready, and no metrics yet.
func TestReadyOnlyOnceOpen(t *testing.T) {
	a, ln, err := startAdmin("127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.shutdown(context.Background())
	base := "http://" + ln.Addr().String()
	status := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz while starting: %d", got)
	}
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while starting: %d", got)
	}
	if got := status("/metrics"); got != http.StatusServiceUnavailable {
		t.Fatalf("/metrics while starting: %d", got)
	}
	a.open(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	if got := status("/readyz"); got != http.StatusOK {
		t.Fatalf("/readyz once open: %d", got)
	}
	if got := status("/metrics"); got != http.StatusOK {
		t.Fatalf("/metrics once open: %d", got)
	}
}
