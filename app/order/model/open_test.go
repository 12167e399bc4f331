package model

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// openerEnv names the database a child process of this test opens.
const openerEnv = "KQSTACK_TEST_OPEN_DB"

// order-api and order-mq open one SQLite file at the same moment, in two
// processes, and both create their tables: neither may fail with
// "database is locked" (file locks are per process, so it takes
// processes to show).
func TestOpenAtOnceFromSeveralProcesses(t *testing.T) {
	if path := os.Getenv(openerEnv); path != "" {
		db, err := Open("sqlite", path)
		if err == nil {
			err = ExecSchema(db, "CREATE TABLE IF NOT EXISTS processed_events (id VARCHAR(64) PRIMARY KEY)")
			db.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	const dsnOptions = "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	for round := 0; round < 10; round++ {
		path := filepath.Join(t.TempDir(), "order.db") + dsnOptions
		var children []*exec.Cmd
		outputs := make([]*lockedOutput, 4)
		for i := range outputs {
			cmd := exec.Command(os.Args[0], "-test.run=^TestOpenAtOnceFromSeveralProcesses$")
			cmd.Env = append(os.Environ(), openerEnv+"="+path)
			outputs[i] = &lockedOutput{}
			cmd.Stdout, cmd.Stderr = outputs[i], outputs[i]
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			children = append(children, cmd)
		}
		for i, cmd := range children {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("round %d, process %d: %v: %s", round, i, err, outputs[i].String())
			}
		}
	}
}

type lockedOutput struct{ data []byte }

func (o *lockedOutput) Write(p []byte) (int, error) {
	o.data = append(o.data, p...)
	return len(p), nil
}
func (o *lockedOutput) String() string { return string(o.data) }
