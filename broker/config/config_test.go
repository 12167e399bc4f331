package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestValidateNamesTheField(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cases := []struct {
		field  string
		change func(*Config)
	}{
		{"node_id", func(c *Config) { c.NodeID = -1 }},
		{"listen", func(c *Config) { c.Listen = "9092" }},
		{"advertise", func(c *Config) { c.Advertise = "host" }},
		{"advertise", func(c *Config) { c.Advertise = "host:0" }},
		{"data_dir", func(c *Config) { c.DataDir = "" }},
		{"controller_quorum_voters", func(c *Config) { c.ControllerQuorumVoters, c.ControllerListen = "1@a", "a:1" }},
		{"controller_listen", func(c *Config) { c.ControllerQuorumVoters, c.ControllerListen = "2@a:1,3@b:1", "0.0.0.0:9093" }},
		{"controller_listen", func(c *Config) { c.ControllerQuorumVoters, c.ControllerListen = "1@a:1", "" }},
		{"controller_listen", func(c *Config) { c.ControllerListen = "127.0.0.1:9093" }},
		{"default_partitions", func(c *Config) { c.DefaultPartitions = 0 }},
		{"max_request_bytes", func(c *Config) { c.MaxRequestBytes = 10 }},
		{"queued_max_request_bytes", func(c *Config) { c.QueuedMaxRequestBytes = int64(c.MaxRequestBytes) }},
		{"max_connections", func(c *Config) { c.MaxConnections = 0 }},
		{"max_connections_per_ip", func(c *Config) { c.MaxConnectionsPerIP = c.MaxConnections + 1 }},
		{"connections_max_idle_ms", func(c *Config) { c.ConnectionsMaxIdleMs = 1 << 62 }},
		{"log.retention_ms", func(c *Config) { c.Log.RetentionMs = 0 }},
		{"log.segment_bytes", func(c *Config) { c.Log.SegmentBytes = 1 << 40 }},
		{"log.flush_mode", func(c *Config) { c.Log.FlushMode = "never" }},
		{"log.check_interval_ms", func(c *Config) { c.Log.CheckIntervalMs = 0 }},
	}
	for _, tt := range cases {
		c := Default()
		tt.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "config field "+tt.field+" ") {
			t.Errorf("%s: got %v", tt.field, err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	c, err := Load(write("empty.yaml", ""))
	if err != nil || c != Default() {
		t.Fatalf("an empty file: %v, %+v", err, c)
	}
	c, err = Load(write("some.yaml", "listen: 0.0.0.0:19092\nlog:\n  retention_ms: -1\n"))
	if err != nil || c.Listen != "0.0.0.0:19092" || c.Log.RetentionMs != -1 || c.Log.SegmentBytes != Default().Log.SegmentBytes {
		t.Fatalf("partial file: %v, %+v", err, c)
	}
	if _, err := Load(write("typo.yaml", "log:\n  retension_ms: 5\n")); err == nil || !strings.Contains(err.Error(), "retension_ms") {
		t.Fatalf("unknown key: %v", err)
	}
	if c := (Config{Listen: "a:1"}); c.AdvertisedAddress() != "a:1" {
		t.Fatal("advertise defaults to listen")
	}
}

func TestLoadNamesTheFieldAndItsType(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ file, want string }{
		{"node_id: 1\nlisten: 127.0.0.1:9092\nmax_request_bytes: lots\n", `line 3: config field max_request_bytes = "lots": must be a whole number (32-bit, at most 2147483647)`},
		{"log:\n  flush_ms: soon\n", `line 2: config field log.flush_ms = "soon": must be a whole number (64-bit`},
		{"auto_create_topics: sometimes\n", `config field auto_create_topics = "sometimes": must be true or false`},
		{"log: 5\n", "config field log must be a mapping"},
		{"log:\n  retension_ms: 5\n", `line 2: unknown config key "log.retension_ms"; known keys here: retention_ms, retention_bytes`},
		{"node_id: 1\nnode_id: 2\n", `line 2: config key "node_id" is set again (first at line 1)`},
		{"log:\n  flush_ms: 1\nlog:\n  flush_ms: 2\n", `config key "log" is set again`},
		{"max_request_bytes: 99999999999\n", `config field max_request_bytes = "99999999999": must be a whole number (32-bit`},
	}
	for i, tt := range cases {
		path := filepath.Join(dir, strconv.Itoa(i)+".yaml")
		if err := os.WriteFile(path, []byte(tt.file), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.file, err, tt.want)
		}
	}
}

// TestDeployedConfigListsEveryKey keeps deploy/kqbroker.yaml, which says it
// shows every key, honest as keys are added.
func TestDeployedConfigListsEveryKey(t *testing.T) {
	text, err := os.ReadFile("../../deploy/kqbroker.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	var walk func(reflect.Type, string, string)
	walk = func(typ reflect.Type, prefix, indent string) {
		for i := range typ.NumField() {
			field := typ.Field(i)
			key, _, _ := strings.Cut(field.Tag.Get("yaml"), ",")
			// a key is listed when a line starts with it, set or commented out
			if !regexp.MustCompile(`(?m)^` + indent + `(# )?` + key + `:`).Match(text) {
				missing = append(missing, prefix+key)
			}
			if field.Type.Kind() == reflect.Struct {
				walk(field.Type, prefix+key+".", indent+"  ")
			}
		}
	}
	walk(reflect.TypeOf(Config{}), "", "")
	if len(missing) > 0 {
		t.Errorf("deploy/kqbroker.yaml does not list %v", missing)
	}
	if _, err := Load("../../deploy/kqbroker.yaml"); err != nil {
		t.Errorf("deploy/kqbroker.yaml: %v", err)
	}
}

func TestParseVoters(t *testing.T) {
	voters, err := ParseVoters("1@127.0.0.1:9093, 2@host-b:9093,3@[::1]:9093")
	if err != nil || len(voters) != 3 || voters[1] != (Voter{ID: 2, Addr: "host-b:9093"}) {
		t.Fatalf("%v %+v", err, voters)
	}
	for _, bad := range []string{"1", "x@h:1", "1@nohostport", "1@h:1,1@h:2", "-1@h:1"} {
		if _, err := ParseVoters(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if voters, err := ParseVoters(""); err != nil || voters != nil {
		t.Errorf("empty: %v %v", voters, err)
	}
}
