// Command kqctl administers a Kafka-compatible cluster (kqbroker or Apache
// Kafka), with the verbs of kafka-topics.sh, kafka-consumer-groups.sh and
// kafka-console-producer/consumer.sh:
//
//	kqctl topic create NAME [-p partitions] [-r replication] [--config k=v ...] [--if-not-exists]
//	kqctl topic list
//	kqctl topic describe NAME
//	kqctl topic delete NAME...
//	kqctl topic alter-config NAME [--set k=v ...] [--delete k ...]
//	kqctl produce TOPIC [-f file] [-k key | -K sep] [-H k=v ...] [--acks all|1|0] [-p partition]
//	kqctl consume TOPIC [--from earliest|latest|OFFSET|TIME] [-p partition] [-g group] [-n count] [-e] [--format plain|json]
//	kqctl group list
//	kqctl group describe GROUP
//	kqctl group reset-offsets GROUP --topic T --to earliest|latest|offset:N|shift:N|TIME [--execute]
//	kqctl group delete GROUP...
//	kqctl cluster describe
//	kqctl partition elect-leaders [--topic TOPIC [-p N,...]] [--unclean]
//	kqctl partition reassign TOPIC -p N --replicas 1,2,3 | --file PLAN.json [--cancel]
//	kqctl partition reassignments
//	kqctl gen mq NAME --topic T --group G [--dir DIR] [--brokers host:port,...]
//	kqctl gen outbox --topic T [--dir DIR] [--brokers host:port,...]
//
// Everywhere: --bootstrap-server host:port[,host:port] (default $KQ_BROKERS,
// then 127.0.0.1:9092) and -o table|json (default table).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/kqstack/kqstack/broker/ops"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: kqctl [--bootstrap-server host:port] [-o table|json] <command>

topics:
  topic create NAME [-p partitions] [-r replication] [--config key=value ...] [--if-not-exists]
  topic list
  topic describe NAME
  topic delete NAME...
  topic alter-config NAME [--set key=value ...] [--delete key ...]
records:
  produce TOPIC [-f file] [-k key | -K separator] [-H key=value ...] [--acks all|1|0] [-p partition]
          (one record per line of stdin or the file)
  consume TOPIC [--from earliest|latest|OFFSET|TIME] [-p partition] [-g group] [-n count] [-e] [--format plain|json]
consumer groups:
  group list
  group describe GROUP
  group reset-offsets GROUP --topic TOPIC --to earliest|latest|offset:N|shift:N|TIME [--execute]
  group delete GROUP...
cluster:
  cluster describe
  partition elect-leaders [--topic TOPIC [-p N,...]] [--unclean]
  partition reassign TOPIC -p N --replicas 1,2,3 | --file PLAN.json  [--cancel]
  partition reassignments
code for a goctl service (doc/adopting.md):
  gen mq NAME --topic T --group G [--dir DIR] [--brokers host:port,...]
          (a consumer service on common/consume in DIR/mq)
  gen outbox --topic T [--dir DIR] [--brokers host:port,...]
          (an outbox and its relay on common/outbox and common/push)

The bootstrap address defaults to $KQ_BROKERS, then 127.0.0.1:9092.
`

// env is what a command runs with.
type env struct {
	ctx    context.Context
	client *ops.Client
	out    *output
	stdin  io.Reader
	stderr io.Writer
}

type command func(e *env, args []string) error

var commands = map[string]map[string]command{
	"topic":     {"create": topicCreate, "list": topicList, "describe": topicDescribe, "delete": topicDelete, "alter-config": topicAlterConfig},
	"group":     {"list": groupList, "describe": groupDescribe, "reset-offsets": groupResetOffsets, "delete": groupDelete},
	"cluster":   {"describe": clusterDescribe},
	"partition": {"elect-leaders": partitionElectLeaders, "reassign": partitionReassign, "reassignments": partitionReassignments},
	"produce":   {"": produce},
	"consume":   {"": consume},
	"gen":       {"mq": genMQ, "outbox": genOutbox},
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	args, bootstrap, format, err := globalFlags(args)
	if err != nil {
		fmt.Fprintln(stderr, "kqctl:", err)
		return 2
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	verbs, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "kqctl: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var cmd command
	rest := args[1:]
	if c, ok := verbs[""]; ok {
		cmd = c
	} else if len(rest) > 0 && verbs[rest[0]] != nil {
		cmd, rest = verbs[rest[0]], rest[1:]
	} else {
		fmt.Fprintf(stderr, "kqctl: %s needs a verb\n%s", args[0], usage)
		return 2
	}
	client, err := ops.Dial(bootstrap)
	if err != nil {
		fmt.Fprintln(stderr, "kqctl:", err)
		return 1
	}
	defer client.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{ctx: ctx, client: client, out: &output{w: stdout, json: format == "json"}, stdin: stdin, stderr: stderr}
	if err := cmd(e, rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var usageErr usageError
		if errors.As(err, &usageErr) {
			fmt.Fprintf(stderr, "kqctl: %v\n%s", err, usage)
			return 2
		}
		var badFlag flagError
		if errors.As(err, &badFlag) {
			// the verb's usage is printed; the error goes last, where it is seen
			fmt.Fprintln(stderr, "kqctl:", err)
			return 2
		}
		fmt.Fprintln(stderr, "kqctl:", err)
		return 1
	}
	return 0
}

// usageError is a command line that cannot be run as given.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

// globalFlags takes --bootstrap-server and -o/--output from anywhere in
// the command line, as kafka-*.sh users write them after the verb.
func globalFlags(args []string) (rest []string, bootstrap, format string, err error) {
	bootstrap, format = defaultBootstrap(), "table"
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		switch name {
		case "--bootstrap-server", "-bootstrap-server", "-b", "-o", "--output", "-output":
		default:
			rest = append(rest, args[i])
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, "", "", fmt.Errorf("%s needs a value", name)
			}
			i++
			value = args[i]
		}
		switch name {
		case "-o", "--output", "-output":
			if value != "table" && value != "json" {
				return nil, "", "", fmt.Errorf("-o %q: table or json", value)
			}
			format = value
		default:
			bootstrap = value
		}
	}
	return rest, bootstrap, format, nil
}

func defaultBootstrap() string {
	if brokers := os.Getenv("KQ_BROKERS"); brokers != "" {
		return brokers
	}
	return "127.0.0.1:9092"
}

// newFlags is a flag set for a verb. A bad flag is reported once, by run
// (the flag package would print it too), followed by the verb's flags.
func newFlags(e *env, name string) *flag.FlagSet {
	flags := flag.NewFlagSet("kqctl "+name, flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.Usage = func() {
		fmt.Fprintf(e.stderr, "usage of kqctl %s:\n", name)
		flags.SetOutput(e.stderr)
		flags.PrintDefaults()
		flags.SetOutput(io.Discard)
	}
	return flags
}

// flagError is a flag the verb could not parse; its usage is printed.
type flagError struct{ err error }

func (f flagError) Error() string { return f.err.Error() }

// parseInterleaved parses flags that may come before or after the
// positional arguments, and returns the positionals.
func parseInterleaved(flags *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := flags.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, err
		} else if err != nil {
			return nil, flagError{err}
		}
		if flags.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, flags.Arg(0))
		args = flags.Args()[1:]
	}
}

// repeated is a flag that may be given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// keyValues splits key=value flags.
func keyValues(flagName string, values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		key, value, ok := strings.Cut(v, "=")
		if !ok || key == "" {
			return nil, usageError{fmt.Sprintf("%s %q: want key=value, e.g. retention.ms=86400000", flagName, v)}
		}
		out[key] = value
	}
	return out, nil
}
