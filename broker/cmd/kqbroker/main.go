// Command kqbroker is a message broker that speaks the Kafka wire protocol.
//
//	kqbroker [-config kqbroker.yaml] [-listen 127.0.0.1:9092] [-advertise host:port] [-data-dir data]
//
// Flags override the file. SIGTERM or SIGINT stops it cleanly: it stops
// accepting, finishes the requests under way, flushes every log, marks it
// clean, and exits 0.
package main

import (
	"os"

	"github.com/kqstack/kqstack/broker/daemon"
)

func main() {
	os.Exit(daemon.Run(os.Args[1:], os.Stderr))
}
