// Command kqbench measures a Kafka-protocol broker with real clients, and
// kqbroker side by side with a peer.
//
//	kqbench produce  [-size 100] [-acks 1] [-partitions 1] [-records 500000]
//	kqbench consume  [-size 100] [-records 2000000]
//	kqbench latency  [-rate 20000] [-acks all] [-duration 5s]
//	kqbench pipeline [-events 20000]
//	kqbench partitions [-partitions 1000] [-records 200000]
//	kqbench idle
//	kqbench commits [-duration 5s] [-inflight 1] [-groups 0]
//	kqbench coordinator-failover
//	kqbench startup  [-retained-mib 2048] [-unclean]
//	kqbench suite    [-write doc/benchmarks.md]
//
// Every workload takes -bootstrap host:port to measure a running broker;
// without it kqbench starts a fresh kqbroker (a child process on a new data
// directory in $KQBENCH_DIR or the system's temporary directory). With
// -vs kfake it also starts franz-go's in-memory kfake broker (or with -vs
// kqbroker-interval a kqbroker that fsyncs on a timer) and runs the
// workload on each in turn, A B A B ..., -pairs times (default 3), then
// prints min / median / max for each and the median of the pairs' ratios.
//
// suite runs the standard set (about 5 minutes; make bench) and, with
// -write, rewrites the table between the kqbench markers in that file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zeromicro/go-zero/core/logx"
)

func main() {
	logx.DisableStat() // go-zero would log CPU and memory every minute
	os.Exit(run(os.Args[1:]))
}

const usage = `usage: kqbench <workload> [flags]

workloads: produce, capacity (pre-encoded pipelined produce: the broker's own limit),
           consume, latency, pipeline, partitions, idle, startup,
           failover (three kqbrokers: the acks=all stall when a leader is killed),
           catchup (three kqbrokers: a restarted follower copying -retained-mib)
           commits (one client's synchronous offset commits for -duration)
           coordinator-failover (three kqbrokers: a kq group across a kill -9 of its coordinator)
           suite (the standard set; -write FILE rewrites its table)
common flags: -bootstrap host:port | -vs kfake|kqbroker-interval|kqbroker-cluster, -pairs N
run "kqbench <workload> -h" for a workload's flags`

func run(args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "suite":
		return runSuite(args[1:])
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := runOne(ctx, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "kqbench:", err)
		return 1
	}
	return 0
}

// spec is a parsed workload command line.
type spec struct {
	args      []string
	work      workload
	metric    string
	bootstrap string
	vs        string
	pairs     int
	only      string // a workload that runs on one kind of broker only
}

// parseSpec parses "<workload> [flags]".
func parseSpec(args []string) (spec, error) {
	s := spec{args: args}
	flags := flag.NewFlagSet("kqbench "+args[0], flag.ContinueOnError)
	flags.StringVar(&s.bootstrap, "bootstrap", "", "measure the broker at host:port instead of starting a kqbroker")
	flags.StringVar(&s.vs, "vs", "", "kfake: also start franz-go's kfake and compare, A B A B ...; kqbroker-interval: a kqbroker that fsyncs every second instead of before acks=all answers; kqbroker-cluster: three kqbrokers, topics of three replicas")
	flags.IntVar(&s.pairs, "pairs", 3, "runs on each broker (alternating when comparing)")
	size := flags.Int("size", 100, "record value size in bytes")
	acks := flags.String("acks", "1", "0, 1 or all")
	partitions := flags.Int("partitions", 1, "partitions of the topic")
	records := flags.Int("records", 0, "records per run (default depends on the workload)")
	rate := flags.Int("rate", 20000, "records per second")
	duration := flags.Duration("duration", 5*time.Second, "how long to produce at the rate")
	events := flags.Int("events", 20000, "events per run")
	retainedMiB := flags.Int64("retained-mib", 2048, "data retained before the restart, MiB")
	unclean := flags.Bool("unclean", false, "restart after SIGKILL instead of a clean stop")
	graceful := flags.Bool("graceful", false, "failover: stop the leader with SIGTERM instead of SIGKILL")
	inflight := flags.Int("inflight", 1, "commits: commits the client keeps in flight")
	groupCount := flags.Int("groups", 0, "commits: groups the commits in flight are spread over (0: a group for each)")
	switch args[0] {
	case "latency":
		*acks = "all"
	case "partitions":
		*partitions = 1000
	}
	if err := flags.Parse(args[1:]); err != nil {
		return s, err
	}
	if flags.NArg() > 0 {
		return s, fmt.Errorf("unexpected argument %q", flags.Arg(0))
	}
	if s.vs != "" && s.vs != "kfake" && s.vs != "kqbroker-interval" && s.vs != "kqbroker-cluster" {
		return s, fmt.Errorf("-vs %q: the peers kqbench can start are kfake, kqbroker-interval and kqbroker-cluster", s.vs)
	}
	if s.vs != "" && s.bootstrap != "" {
		return s, errors.New("-vs and -bootstrap exclude each other: -vs starts both brokers itself")
	}
	if s.pairs < 1 {
		return s, fmt.Errorf("-pairs %d: at least 1", s.pairs)
	}
	orDefault := func(n, def int) int {
		if n > 0 {
			return n
		}
		return def
	}
	switch args[0] {
	case "produce":
		if *size < 1 || *partitions < 1 {
			return s, errors.New("-size and -partitions must be at least 1")
		}
		s.work, s.metric = produceWorkload(*size, *acks, int32(*partitions), orDefault(*records, 200_000_000 / *size)), "records/s"
	case "consume":
		s.work, s.metric = consumeWorkload(*size, orDefault(*records, 2_000_000)), "records/s"
	case "latency":
		s.work, s.metric = latencyWorkload(*rate, *acks, *duration), "p99 ms"
	case "pipeline":
		s.work, s.metric = pipelineWorkload(*events), "events/s"
	case "partitions":
		s.work, s.metric = partitionsWorkload(int32(*partitions), orDefault(*records, 200_000)), "rss MB"
	case "idle":
		s.work, s.metric = idleWorkload(), "rss MB"
	case "startup":
		s.work, s.metric, s.only = startupWorkload(*retainedMiB<<20, *unclean), "ms", "kqbroker"
	case "capacity":
		s.work, s.metric = capacityWorkload(*size, *acks, int32(*partitions), *duration), "records/s"
	case "catchup":
		s.work, s.metric, s.only = catchupWorkload(*retainedMiB<<20), "MB/s", "kqbroker-cluster"
	case "failover":
		s.work, s.metric, s.only = failoverWorkload(*graceful), "stall ms", "kqbroker-cluster"
	case "commits":
		if *inflight < 1 || *groupCount < 0 {
			return s, fmt.Errorf("-inflight %d -groups %d: at least 1 in flight, and 0 or more groups", *inflight, *groupCount)
		}
		s.work, s.metric = commitsWorkload(*duration, *inflight, *groupCount), "commits/s"
	case "coordinator-failover":
		s.work, s.metric, s.only = coordinatorFailoverWorkload(), "resume ms", "kqbroker-cluster"
	default:
		return s, fmt.Errorf("unknown workload %q\n%s", args[0], usage)
	}
	if s.only != "" && (s.vs != "" || s.bootstrap != "") {
		return s, fmt.Errorf("%s runs on a kqbroker it starts itself: no -vs or -bootstrap", args[0])
	}
	return s, nil
}

func runOne(ctx context.Context, args []string) error {
	s, err := parseSpec(args)
	if err != nil {
		return err
	}
	brokers := newBrokers()
	defer brokers.stop()
	r := row{metric: s.metric}
	if r.a, err = brokers.side(s, false); err != nil {
		return err
	}
	if s.vs != "" {
		if r.b, err = brokers.side(s, true); err != nil {
			return err
		}
	}
	res, err := runRow(ctx, r, s.pairs, os.Stderr)
	if err != nil {
		return err
	}
	printResult(os.Stdout, res)
	return nil
}

// brokers starts each kind of target once and shares it between rows.
type brokers struct{ started map[string]*target }

func newBrokers() *brokers { return &brokers{started: map[string]*target{}} }

func (b *brokers) get(kind string) (*target, error) {
	if t, ok := b.started[kind]; ok {
		return t, nil
	}
	var t *target
	var err error
	switch {
	case kind == "kqbroker":
		t, err = startKqbroker("")
	case kind == "kfake":
		t, err = startKfake()
	case kind == "kqbroker-interval":
		t, err = startKqbrokerInterval()
	case kind == "kqbroker-cluster":
		t, err = startKqbrokerCluster()
	default:
		t = &target{name: kind, addr: kind}
	}
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", kind, err)
	}
	b.started[kind] = t
	return t, nil
}

// side returns the target for a spec: its -bootstrap address, or kqbroker,
// or with peer set the -vs broker.
func (b *brokers) side(s spec, peer bool) (*side, error) {
	kind := "kqbroker"
	switch {
	case s.only != "" && !peer:
		kind = s.only
	case peer:
		kind = s.vs
	case s.bootstrap != "":
		kind = s.bootstrap
	}
	t, err := b.get(kind)
	if err != nil {
		return nil, err
	}
	return &side{target: t, work: s.work, args: s.args}, nil
}

func (b *brokers) stop() {
	for _, t := range b.started {
		_ = t.stop(false)
	}
}

func printResult(w *os.File, res result) {
	a := res.aStats()
	fmt.Fprintf(w, "%s (%s, %d runs each)\n", res.row.a.work.name, res.row.metric, len(res.a))
	fmt.Fprintf(w, "  %-10s min %s  median %s  max %s\n", res.row.a.target.name, formatValue(a.min), formatValue(a.median), formatValue(a.max))
	if res.row.b != nil {
		b := res.bStats()
		fmt.Fprintf(w, "  %-10s min %s  median %s  max %s\n", res.row.b.target.name, formatValue(b.min), formatValue(b.median), formatValue(b.max))
		fmt.Fprintf(w, "  median ratio %s/%s: %.2fx\n", res.row.a.target.name, res.row.b.target.name, res.medianRatio())
	}
}
