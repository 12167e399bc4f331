package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// listener is the part of a go-zero config block that opens a port.
type listener struct {
	Enabled *bool  `yaml:"Enabled"`
	Host    string `yaml:"Host"`
	Port    int    `yaml:"Port"`
}

// TestLocalStackListensOnLoopbackAndSaysWhere: every port `make run` opens
// (the services' etc/*.yaml, kqbroker's deploy/kqbroker.yaml, the Redis
// of run-local.sh) and every address of the three brokers of `make
// run-cluster` (run-local.sh with CLUSTER=1) is bound to 127.0.0.1 and
// listed in the README.
func TestLocalStackListensOnLoopbackAndSaysWhere(t *testing.T) {
	root := filepath.Join("..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := func(port int) bool {
		return regexp.MustCompile(`\b` + strconv.Itoa(port) + `\b`).Match(readme)
	}
	configs, _ := filepath.Glob(filepath.Join(root, "app", "*", "cmd", "*", "etc", "*.yaml"))
	if len(configs) < 3 {
		t.Fatalf("found %d service configs, want the three of make run", len(configs))
	}
	for _, path := range configs {
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var blocks struct {
			listener   `yaml:",inline"`
			Prometheus listener  `yaml:"Prometheus"`
			DevServer  *listener `yaml:"DevServer"`
		}
		if err := yaml.Unmarshal(text, &blocks); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		name := filepath.Base(path)
		if blocks.DevServer == nil {
			// go-zero starts its dev server when the block is missing too,
			// on every interface
			t.Errorf("%s: no DevServer block; go-zero then serves pprof on 0.0.0.0:6060", name)
			continue
		}
		for block, l := range map[string]listener{"the service": blocks.listener, "Prometheus": blocks.Prometheus, "DevServer": *blocks.DevServer} {
			if l.Port == 0 || l.Enabled != nil && !*l.Enabled {
				continue
			}
			if l.Host != "127.0.0.1" {
				t.Errorf("%s: %s listens on %q:%d, want 127.0.0.1", name, block, l.Host, l.Port)
			}
			if !listed(l.Port) {
				t.Errorf("%s: %s's port %d is not in the README's list of ports", name, block, l.Port)
			}
		}
	}

	broker, err := os.ReadFile(filepath.Join(root, "deploy", "kqbroker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"listen", "admin_listen"} {
		m := regexp.MustCompile(`(?m)^` + key + `: (\S+)`).FindSubmatch(broker)
		if m == nil {
			t.Fatalf("deploy/kqbroker.yaml sets no %s", key)
		}
		host, port, _ := strings.Cut(string(m[1]), ":")
		n, _ := strconv.Atoi(port)
		if host != "127.0.0.1" || !listed(n) {
			t.Errorf("kqbroker %s %s: want 127.0.0.1 and the port in the README", key, m[1])
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "deploy", "run-local.sh"))
	if err != nil {
		t.Fatal(err)
	}
	redis := regexp.MustCompile(`redis-server --port (\d+) --bind (\S+)`).FindSubmatch(script)
	if redis == nil {
		t.Fatal("run-local.sh starts no redis-server with --port and --bind")
	}
	if port, _ := strconv.Atoi(string(redis[1])); string(redis[2]) != "127.0.0.1" || !listed(port) {
		t.Errorf("redis-server on %s:%s: want 127.0.0.1 and the port in the README", redis[2], redis[1])
	}
	// make run-cluster: the brokers' client, quorum and admin addresses
	addresses := regexp.MustCompile(`\b(\d+\.\d+\.\d+\.\d+):(\d+)\b`).FindAllSubmatch(script, -1)
	if len(addresses) < 9 {
		t.Errorf("run-local.sh names %d host:port addresses, want at least the nine of the cluster's three brokers", len(addresses))
	}
	for _, m := range addresses {
		if port, _ := strconv.Atoi(string(m[2])); string(m[1]) != "127.0.0.1" || !listed(port) {
			t.Errorf("run-local.sh: %s: want 127.0.0.1 and the port in the README", m[0])
		}
	}
}
