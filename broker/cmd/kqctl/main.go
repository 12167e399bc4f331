// Command kqctl administers a Kafka-compatible cluster (kqbroker or Apache
// Kafka). This first cut has the topic verbs the stack needs at start-up:
//
//	kqctl [--bootstrap-server host:port] topic create NAME [-p partitions] [-r replication] [--if-not-exists] [--config k=v ...]
//	kqctl [--bootstrap-server host:port] topic list
//
// The bootstrap address defaults to $KQ_BROKERS, then 127.0.0.1:9092.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  kqctl [--bootstrap-server host:port] topic create NAME [-p partitions] [-r replication] [--if-not-exists] [--config key=value ...]
  kqctl [--bootstrap-server host:port] topic list
`

func run(args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet("kqctl", flag.ContinueOnError)
	global.SetOutput(stderr)
	bootstrap := global.String("bootstrap-server", defaultBootstrap(), "broker address (or $KQ_BROKERS)")
	if err := global.Parse(args); err != nil {
		return 2
	}
	rest := global.Args()
	if len(rest) < 2 || rest[0] != "topic" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	client, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*bootstrap, ",")...), kgo.DialTimeout(5*time.Second))
	if err != nil {
		fmt.Fprintln(stderr, "kqctl:", err)
		return 1
	}
	defer client.Close()
	admin := kadm.NewClient(client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch rest[1] {
	case "create":
		err = createTopic(ctx, admin, rest[2:], stdout, stderr)
	case "list":
		err = listTopics(ctx, admin, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "kqctl: %v (broker %s)\n", err, *bootstrap)
		return 1
	}
	return 0
}

func defaultBootstrap() string {
	if brokers := os.Getenv("KQ_BROKERS"); brokers != "" {
		return brokers
	}
	return "127.0.0.1:9092"
}

type configFlags map[string]*string

func (c configFlags) String() string { return "" }

func (c configFlags) Set(v string) error {
	key, value, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("--config %q: want key=value, e.g. retention.ms=86400000", v)
	}
	c[key] = &value
	return nil
}

func createTopic(ctx context.Context, admin *kadm.Client, args []string, stdout, stderr io.Writer) error {
	flags := flag.NewFlagSet("topic create", flag.ContinueOnError)
	flags.SetOutput(stderr)
	partitions := flags.Int("p", -1, "partitions (-1: the broker default)")
	replication := flags.Int("r", -1, "replication factor (-1: the broker default)")
	ifNotExists := flags.Bool("if-not-exists", false, "succeed if the topic exists")
	configs := configFlags{}
	flags.Var(configs, "config", "topic config key=value (repeatable)")
	// The topic name may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := flags.Parse(args); err != nil {
		return err
	}
	if name == "" && flags.NArg() > 0 {
		name = flags.Arg(0)
	}
	if name == "" {
		return errors.New("topic create needs a topic name")
	}
	resp, err := admin.CreateTopic(ctx, int32(*partitions), int16(*replication), configs, name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists) && *ifNotExists:
		fmt.Fprintf(stdout, "topic %s exists\n", name)
		return nil
	case err != nil:
		if resp.ErrMessage != "" {
			return fmt.Errorf("creating topic %s: %w: %s", name, err, resp.ErrMessage)
		}
		return fmt.Errorf("creating topic %s: %w", name, err)
	}
	fmt.Fprintf(stdout, "created topic %s with %d partitions\n", name, resp.NumPartitions)
	return nil
}

func listTopics(ctx context.Context, admin *kadm.Client, stdout io.Writer) error {
	topics, err := admin.ListTopics(ctx)
	if err != nil {
		return err
	}
	names := topics.Names()
	sort.Strings(names)
	fmt.Fprintf(stdout, "%-40s %10s\n", "TOPIC", "PARTITIONS")
	for _, name := range names {
		fmt.Fprintf(stdout, "%-40s %10d\n", name, len(topics[name].Partitions))
	}
	return nil
}
