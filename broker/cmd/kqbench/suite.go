package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A suiteRow is a row of the standard suite: a kqbench command line (with
// -vs kfake when it is compared with kfake), or two command lines run on
// kqbroker and compared with each other.
type suiteRow struct {
	args    []string
	against []string // compared with this workload on kqbroker, instead of a peer
	metric  string   // the figure compared, when not the workload's own
	goal    goal
}

// standardSuite is what make bench runs: about 5 minutes on 2 cores.
var standardSuite = []suiteRow{
	{args: []string{"idle", "-vs", "kfake"}, goal: goal{valueAtMost: 30}},
	{args: []string{"produce", "-size", "100", "-acks", "1", "-partitions", "1", "-vs", "kfake"}, goal: goal{ratioAtLeast: 1.3}},
	{args: []string{"consume", "-size", "100", "-records", "2000000", "-vs", "kfake"}, goal: goal{ratioAtLeast: 1.2}},
	// The same runs: what each broker spent, per record, while the client set the pace.
	{args: []string{"produce", "-size", "100", "-acks", "1", "-partitions", "1", "-vs", "kfake"}, metric: "broker cpu µs/1k records"},
	{args: []string{"consume", "-size", "100", "-records", "2000000", "-vs", "kfake"}, metric: "broker cpu µs/1k records"},
	{args: []string{"produce", "-size", "100", "-acks", "all", "-partitions", "1"}, against: []string{"produce", "-size", "100", "-acks", "1", "-partitions", "1"}, goal: goal{ratioAtLeast: 0.7}},
	{args: []string{"produce", "-size", "100", "-acks", "all", "-partitions", "1", "-vs", "kfake"}},
	{args: []string{"produce", "-size", "100", "-acks", "0", "-partitions", "1", "-vs", "kfake"}},
	{args: []string{"produce", "-size", "1024", "-acks", "1", "-partitions", "6", "-vs", "kfake"}},
	{args: []string{"produce", "-size", "16384", "-acks", "1", "-partitions", "64", "-vs", "kfake"}},
	{args: []string{"latency", "-rate", "20000", "-acks", "all", "-duration", "5s", "-vs", "kfake"}, goal: goal{valueAtMost: 3}},
	// The same broker acknowledging before the fsync: how much of the
	// latency is the disk's.
	{args: []string{"latency", "-rate", "20000", "-acks", "all", "-duration", "5s", "-vs", "kqbroker-interval"}},
	{args: []string{"pipeline", "-events", "20000", "-vs", "kfake"}, goal: goal{ratioAtLeast: 1.0}},
	{args: []string{"partitions", "-partitions", "10", "-records", "200000", "-vs", "kfake"}, metric: "records/s"},
	{args: []string{"partitions", "-partitions", "100", "-records", "200000", "-vs", "kfake"}, metric: "records/s"},
	{args: []string{"partitions", "-partitions", "1000", "-records", "200000", "-vs", "kfake"}, metric: "records/s"},
	// The same runs, for the broker's memory with 1,000 partitions.
	{args: []string{"partitions", "-partitions", "1000", "-records", "200000", "-vs", "kfake"}, goal: goal{valueAtMost: 150}},
	{args: []string{"startup", "-retained-mib", "2048"}, goal: goal{valueAtMost: 1000}},
	{args: []string{"startup", "-retained-mib", "2048", "-unclean"}, goal: goal{valueAtMost: 1000}},
}

const (
	beginMarker = "<!-- kqbench:begin -->"
	endMarker   = "<!-- kqbench:end -->"
)

func runSuite(args []string) int {
	flags := flag.NewFlagSet("kqbench suite", flag.ContinueOnError)
	write := flags.String("write", "", "rewrite the table between the kqbench markers in this file (doc/benchmarks.md)")
	pairs := flags.Int("pairs", 3, "pairs of runs per row")
	only := flags.String("only", "", "run only the rows whose command contains this")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *write != "" {
		if _, err := markedSection(*write); err != nil {
			fmt.Fprintln(os.Stderr, "kqbench suite:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	results, err := suite(ctx, *pairs, *only, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kqbench suite:", err)
		return 1
	}
	var table bytes.Buffer
	writeTable(&table, results, *pairs, time.Since(begin))
	os.Stdout.Write(table.Bytes())
	if *write != "" {
		if err := replaceSection(*write, table.String()); err != nil {
			fmt.Fprintln(os.Stderr, "kqbench suite:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "wrote the table into %s\n", *write)
	}
	return 0
}

func suite(ctx context.Context, pairs int, only string, log io.Writer) ([]result, error) {
	brokers := newBrokers()
	defer brokers.stop()
	var results []result
	rows := slices.DeleteFunc(slices.Clone(standardSuite), func(r suiteRow) bool {
		return only != "" && !strings.Contains(strings.Join(r.args, " "), only)
	})
	measured := map[string]result{} // a row whose command ran already reuses its runs
	for i, sr := range rows {
		s, err := parseSpec(sr.args)
		if err != nil {
			return nil, err
		}
		s.pairs = pairs
		r := row{metric: s.metric, goal: sr.goal}
		if sr.metric != "" {
			r.metric = sr.metric
		}
		if r.a, err = brokers.side(s, false); err != nil {
			return nil, err
		}
		switch {
		case sr.against != nil:
			other, err := parseSpec(sr.against)
			if err != nil {
				return nil, err
			}
			if r.b, err = brokers.side(other, false); err != nil {
				return nil, err
			}
		case s.vs != "":
			if r.b, err = brokers.side(s, true); err != nil {
				return nil, err
			}
		}
		key := strings.Join(sr.args, " ") + " | " + strings.Join(sr.against, " ")
		if earlier, ok := measured[key]; ok {
			fmt.Fprintf(log, "[%d/%d] kqbench %s: the runs above, for %s\n", i+1, len(rows), strings.Join(sr.args, " "), r.metric)
			results = append(results, earlier.withRow(r))
			continue
		}
		fmt.Fprintf(log, "[%d/%d] kqbench %s\n", i+1, len(rows), strings.Join(sr.args, " "))
		res, err := runRow(ctx, r, pairs, log)
		if err != nil {
			return nil, err
		}
		measured[key] = res
		results = append(results, res)
	}
	return results, nil
}

// writeTable writes the suite's results as Markdown: the machine, then a
// row per comparison with the command that reproduces it.
func writeTable(w io.Writer, results []result, pairs int, elapsed time.Duration) {
	fmt.Fprintf(w, "Measured %s by `make bench` (`kqbench suite -pairs %d`, %s in all) on %d cores, %s memory, %s, Linux %s.\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), pairs, elapsed.Round(time.Second), runtime.NumCPU(), memTotal(), runtime.Version(), kernelRelease())
	fmt.Fprintf(w, "Each row ran %d times on each side, alternating; figures are min / **median** / max, and the ratio is the median of the pairs' ratios.\n\n", pairs)
	fmt.Fprintln(w, "| workload | command | kqbroker | compared with | ratio | target | met |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for _, res := range results {
		r := res.row
		command := "kqbench " + strings.Join(r.a.args, " ")
		name := r.a.work.name
		if r.b != nil && r.b.target == r.a.target {
			command += "` vs `kqbench " + strings.Join(r.b.args, " ")
			name += " vs " + r.b.work.name
		}
		peer, ratio := "—", "—"
		if r.b != nil {
			peer = r.b.target.name + ": " + formatStats(res.bStats(), r.metric, res.b)
			ratio = fmt.Sprintf("%.2fx", res.medianRatio())
			if lowerIsBetter(r.metric) {
				ratio += " (lower is better)"
			}
		}
		met, hasGoal := res.met()
		metText := "—"
		if hasGoal {
			metText = map[bool]string{true: "yes", false: "**no**"}[met]
		}
		fmt.Fprintf(w, "| %s | `%s` | %s | %s | %s | %s | %s |\n", name, command, formatStats(res.aStats(), r.metric, res.a), peer, ratio, r.goal, metText)
	}
}

// formatStats prints min / **median** / max and, for a latency or events
// row, the medians of the run's other figures.
func formatStats(s stats, metric string, runs []measurement) string {
	text := fmt.Sprintf("%s / **%s** / %s %s", formatValue(s.min), formatValue(s.median), formatValue(s.max), metric)
	if len(runs) == 0 {
		return text
	}
	var others []string
	for name := range runs[0] {
		if name != metric && (strings.HasSuffix(name, " ms") || name == "rss MB" || name == "peak rss MB" || name == "records/s" || strings.HasSuffix(name, "cpu %") || strings.HasPrefix(name, "fsyncs")) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range others {
		text += fmt.Sprintf("; %s %s", formatValue(summarize(runs, name).median), name)
	}
	return text
}

// lowerIsBetter: latencies, memory and times, as opposed to rates.
func lowerIsBetter(metric string) bool {
	return strings.HasSuffix(metric, " ms") || strings.HasSuffix(metric, "MB") || metric == "ms" || strings.Contains(metric, "cpu µs")
}

func memTotal() string {
	meminfo, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	var kb int64
	for _, line := range strings.Split(string(meminfo), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return fmt.Sprintf("%d GiB", (kb+(1<<19))>>20)
		}
	}
	return "?"
}

func kernelRelease() string {
	release, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(release))
}

// markedSection returns the text between the kqbench markers of a file.
func markedSection(path string) (string, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	_, rest, ok := strings.Cut(string(text), beginMarker)
	section, _, ok2 := strings.Cut(rest, endMarker)
	if !ok || !ok2 {
		return "", fmt.Errorf("%s has no %s ... %s section: add the two markers where the table goes", path, beginMarker, endMarker)
	}
	return section, nil
}

// replaceSection puts table between the markers, keeping the rest.
func replaceSection(path, table string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	before, rest, _ := strings.Cut(string(text), beginMarker)
	_, after, _ := strings.Cut(rest, endMarker)
	updated := before + beginMarker + "\n" + table + endMarker + after
	return os.WriteFile(path, []byte(updated), 0o644)
}
