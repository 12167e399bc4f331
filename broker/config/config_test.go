package config

import (
	"os"
	"path/filepath"
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
		{"default_partitions", func(c *Config) { c.DefaultPartitions = 0 }},
		{"max_request_bytes", func(c *Config) { c.MaxRequestBytes = 10 }},
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
