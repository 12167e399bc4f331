// Package mysqltest starts a private MariaDB (or MySQL) server for a test,
// on a free loopback port with a temporary data directory, creates a
// database and applies schema files to it. The server is stopped when the
// test ends.
package mysqltest

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/kqstack/kqstack/internal/testport"
)

// Start returns the DSN of a fresh database with the given schema files
// applied. The test is skipped, with the install command, when MariaDB is
// not installed.
func Start(t testing.TB, database string, schemaFiles ...string) string {
	t.Helper()
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		t.Skip("MariaDB is not installed (apt-get install mariadb-server; .ci/run installs it)")
	}
	server, err := exec.LookPath("mariadbd")
	if err != nil {
		t.Skip("mariadbd is not installed (apt-get install mariadb-server)")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--user=root", "--auth-root-authentication-method=normal",
		"--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := testport.Port(t)
	cmd := exec.Command(server, "--no-defaults", "--datadir="+data, "--user=root", "--bind-address=127.0.0.1",
		"--port="+strconv.Itoa(port), "--socket="+filepath.Join(dir, "mysqld.sock"), "--skip-grant-tables",
		"--innodb-buffer-pool-size=32M", "--pid-file="+filepath.Join(dir, "mysqld.pid"))
	logFile, err := os.Create(filepath.Join(dir, "mysqld.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logFile.Close() })

	root := fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port)
	db, err := sql.Open("mysql", root)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(30 * time.Second); db.Ping() != nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "mysqld.log"))
			t.Fatalf("MariaDB did not start:\n%s", log)
		}
	}
	if _, err := db.Exec("CREATE DATABASE " + database); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("USE " + database); err != nil {
		t.Fatal(err)
	}
	dsn := root + database + "?parseTime=true"
	target, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	for _, file := range schemaFiles {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, statement := range strings.Split(string(text), ";") {
			if strings.TrimSpace(stripComments(statement)) == "" {
				continue
			}
			if _, err := target.Exec(statement); err != nil {
				t.Fatalf("%s: %v\n%s", file, err, statement)
			}
		}
	}
	return dsn
}

func stripComments(s string) string {
	var kept []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}
