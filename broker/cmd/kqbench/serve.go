package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kqstack/kqstack/broker/daemon"
)

// serve runs a broker in this process: "serve kqbroker <kqbroker flags>" is
// exactly the kqbroker command; "serve kfake" is franz-go's in-memory fake
// cluster with one broker. Both log a "ready" line with the address.
func serve(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "kqbench serve: name kqbroker or kfake")
		return 2
	}
	switch args[0] {
	case "kqbroker":
		return daemon.Run(args[1:], os.Stderr)
	case "kfake":
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1))
		if err != nil {
			fmt.Fprintln(os.Stderr, "kqbench serve kfake:", err)
			return 1
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
		logger.Info("kfake ready", "listen", cluster.ListenAddrs()[0])
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
		cluster.Close()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "kqbench serve: unknown broker %q: kqbroker or kfake\n", args[0])
		return 2
	}
}
