package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/format"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kqstack/kqstack/common/outbox"
)

// kqctlIn runs kqctl in-process and fails the test unless it exits 0.
func kqctlIn(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("kqctl %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// treeHash hashes every file's path and content under dir.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s\x00%d\x00", rel, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkGenerated checks each file kqctl wrote: its marker, and that Go
// files are gofmt'd.
func checkGenerated(t *testing.T, dir string, generated, scaffolded []string) {
	t.Helper()
	for _, list := range []struct {
		files  []string
		marker string
	}{{generated, generatedMarker}, {scaffolded, scaffoldedMarker}} {
		for _, f := range list.files {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(string(data), "\n")
			if !strings.HasSuffix(first, list.marker) {
				t.Errorf("%s starts with %q, want the marker %q", f, first, list.marker)
			}
			if strings.HasSuffix(f, ".go") {
				if formatted, err := format.Source(data); err != nil || !bytes.Equal(formatted, data) {
					t.Errorf("%s is not gofmt'd (%v)", f, err)
				}
			}
		}
	}
}

var (
	mqGenerated  = []string{"mq/internal/config/consumers.go", "mq/internal/mqs/queues.go"}
	mqScaffolded = []string{"mq/greet.go", "mq/etc/greet-mq.yaml", "mq/internal/config/config.go", "mq/internal/svc/servicecontext.go", "mq/internal/mqs/greet.go"}
	outboxFiles  = []string{"internal/config/outbox.go", "internal/svc/outbox.go", "relay/relay.go", "deploy/sql/outbox.sql"}
)

// TestGeneratedFilesAreMarkedAndIdempotent runs the generators on the
// files `goctl api new greet` writes that they read (no goctl needed): a
// second run changes nothing, a second consumer joins the generated
// wiring, and the outbox's MySQL DDL is common/outbox's.
func TestGeneratedFilesAreMarkedAndIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "greet")
	for name, content := range map[string]string{
		"go.mod":                         "module greet\n\ngo 1.22\n",
		"greet.api":                      "syntax = \"v1\"\n",
		"etc/greet-api.yaml":             "Name: greet-api\nHost: 0.0.0.0\nPort: 8888\n",
		"internal/config/config.go":      "package config\n",
		"internal/svc/servicecontext.go": "package svc\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gen := func() {
		kqctlIn(t, "gen", "mq", "greet", "--topic", "greet-events", "--group", "greet-mq", "--dir", dir, "--brokers", "127.0.0.1:9092,127.0.0.1:9093")
		kqctlIn(t, "gen", "outbox", "--topic", "greet-events", "--dir", dir)
	}
	gen()
	checkGenerated(t, dir, append(mqGenerated, outboxFiles...), mqScaffolded)
	first := treeHash(t, dir)
	gen()
	if again := treeHash(t, dir); again != first {
		t.Fatal("a second run of gen mq and gen outbox changed the tree")
	}
	yaml, _ := os.ReadFile(filepath.Join(dir, "mq/etc/greet-mq.yaml"))
	if !strings.Contains(string(yaml), "GreetConf:\n  Name: greet\n  Brokers:\n    - 127.0.0.1:9092\n    - 127.0.0.1:9093\n  Group: greet-mq\n  Topic: greet-events\n") ||
		!strings.Contains(string(yaml), "DeadLetterTopic: greet-events.dlq") {
		t.Errorf("mq YAML:\n%s", yaml)
	}
	config, _ := os.ReadFile(filepath.Join(dir, "internal/config/outbox.go"))
	if !strings.Contains(string(config), "`json:\",default=[127.0.0.1:9092]\"`") || !strings.Contains(string(config), "`json:\",default=greet-events\"`") {
		t.Errorf("outbox config's defaults:\n%s", config)
	}
	ddl, _ := os.ReadFile(filepath.Join(dir, "deploy/sql/outbox.sql"))
	if !strings.Contains(string(ddl), outbox.Schema(outbox.MySQL)+";\n") {
		t.Errorf("deploy/sql/outbox.sql is not common/outbox's MySQL schema:\n%s\nwant:\n%s", ddl, outbox.Schema(outbox.MySQL))
	}

	// A second consumer: its scaffold, both in the generated wiring, and
	// its YAML block printed (the YAML is the user's).
	out := kqctlIn(t, "gen", "mq", "audit-log", "--topic", "audit", "--group", "greet-audit", "--dir", dir)
	if !strings.Contains(out, "has no block for audit-log yet") || !strings.Contains(out, "AuditLogConf:\n  Name: audit-log\n") {
		t.Errorf("a second consumer's output:\n%s", out)
	}
	queues, _ := os.ReadFile(filepath.Join(dir, "mq/internal/mqs/queues.go"))
	if !strings.Contains(string(queues), "svcCtx.Config.AuditLogConf, svcCtx.Dedup, NewAuditLog(svcCtx).Handle") ||
		!strings.Contains(string(queues), "svcCtx.Config.GreetConf, svcCtx.Dedup, NewGreet(svcCtx).Handle") {
		t.Errorf("queues.go:\n%s", queues)
	}
	checkGenerated(t, dir, mqGenerated, append(mqScaffolded, "mq/internal/mqs/auditlog.go"))
	if yamlNow, _ := os.ReadFile(filepath.Join(dir, "mq/etc/greet-mq.yaml")); !bytes.Equal(yamlNow, yaml) {
		t.Error("gen mq changed the scaffolded YAML")
	}
	// Deleting a consumer's file removes it from the wiring.
	if err := os.Remove(filepath.Join(dir, "mq/internal/mqs/auditlog.go")); err != nil {
		t.Fatal(err)
	}
	gen()
	if treeHash(t, dir) != first {
		t.Error("after the second consumer's file was deleted, gen did not restore the tree of one consumer")
	}

	// What the user must add is printed until it is there.
	if out := kqctlIn(t, "gen", "outbox", "--topic", "greet-events", "--dir", dir); !strings.Contains(out, "Outbox: MustNewOutbox(c.Outbox),") {
		t.Errorf("gen outbox does not print the wiring:\n%s", out)
	}

	for _, bad := range [][]string{
		{"gen", "mq", "greet", "--topic", "t", "--dir", dir},
		{"gen", "mq", "9lives", "--topic", "t", "--group", "g", "--dir", dir},
		{"gen", "mq", "greet", "--topic", "bad topic", "--group", "g", "--dir", dir},
		{"gen", "outbox", "--dir", dir},
	} {
		var stderr strings.Builder
		if code := run(bad, strings.NewReader(""), &strings.Builder{}, &stderr); code != 2 {
			t.Errorf("kqctl %s: exit %d, want 2\n%s", strings.Join(bad, " "), code, stderr.String())
		}
	}
}
