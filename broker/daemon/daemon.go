// Package daemon runs kqbroker: it parses the flags and config file, opens
// the data directory, serves the Kafka protocol and stops cleanly on SIGTERM
// or SIGINT. The kqbroker command is this package's Run; kqbench runs the
// same code as a child process to measure it.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/kqstack/kqstack/broker/clock"
	"github.com/kqstack/kqstack/broker/cluster"
	"github.com/kqstack/kqstack/broker/config"
	"github.com/kqstack/kqstack/broker/console"
	"github.com/kqstack/kqstack/broker/metrics"
	"github.com/kqstack/kqstack/broker/server"
)

// Run runs the broker until a signal stops it and returns the exit code:
// 0 after a clean stop, 1 when the broker could not start or failed, 2 for
// bad flags or config.
func Run(args []string, stderr io.Writer) int {
	cfg, logLevel, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "kqbroker:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel}))
	// Caught from the start: a SIGTERM during recovery, or just after
	// "ready", is a clean stop, not the default death.
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(signals)

	started := time.Now()
	var adminServer *admin
	adminAddr := ""
	if cfg.AdminListen != "" {
		var adminLn net.Listener
		var err error
		if adminServer, adminLn, err = startAdmin(cfg.AdminListen, logger); err != nil {
			logger.Error("cannot listen for the admin server; choose a free -admin-listen address, or -admin-listen '' to turn it off", "admin_listen", cfg.AdminListen, "err", err)
			return 1
		}
		adminAddr = adminLn.Addr().String()
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		logger.Error("cannot listen", "listen", cfg.Listen, "err", err)
		adminServer.shutdown(context.Background())
		return 1
	}
	// With port 0 the system picks one: clients must be told that one.
	cfg.Listen = ln.Addr().String()
	var interBrokerLn net.Listener
	if cfg.InterBrokerListen != "" {
		if interBrokerLn, err = net.Listen("tcp", cfg.InterBrokerListen); err != nil {
			logger.Error("cannot listen for the other brokers", "inter_broker_listen", cfg.InterBrokerListen, "err", err)
			_ = ln.Close()
			adminServer.shutdown(context.Background())
			return 1
		}
		cfg.InterBrokerListen = interBrokerLn.Addr().String()
	}
	cl, err := cluster.Open(cfg, clock.System{}, logger)
	if err != nil {
		logger.Error("cannot open the data directory", "data_dir", cfg.DataDir, "err", err)
		_ = ln.Close()
		if interBrokerLn != nil {
			_ = interBrokerLn.Close()
		}
		adminServer.shutdown(context.Background())
		return 1
	}
	srv := server.New(cl, logger)
	brokerMetrics := metrics.New(cl)
	srv.SetMetrics(brokerMetrics)
	serveErr := make(chan error, 2)
	go func() { serveErr <- srv.Serve(ln) }()
	if interBrokerLn != nil {
		go func() { serveErr <- srv.Serve(interBrokerLn) }()
	}
	var web *console.Console
	if adminServer != nil {
		if web, err = console.New(ln.Addr().String(), 5*time.Second); err != nil {
			logger.Error("cannot start the web console", "err", err)
			return 1
		}
	}
	adminServer.open(adminHandler(brokerMetrics, web))
	logger.Info("kqbroker ready", "listen", ln.Addr().String(), "admin", adminAddr, "advertise", cfg.AdvertisedAddress(),
		"data_dir", cfg.DataDir, "topics", len(cl.Topics()), "cluster_id", cl.ClusterID(), "startup", time.Since(started).Round(time.Millisecond))

	code := 0
	select {
	case sig := <-signals:
		logger.Info("stopping", "signal", sig.String())
	case err := <-serveErr:
		logger.Error("listener failed", "err", err)
		code = 1
	}
	// Controlled shutdown: leaderships move before connections close.
	cl.Leave()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adminServer.shutdown(ctx)
	if web != nil {
		web.Close() // its client's connections close before the server waits for connections
	}
	if err := srv.Shutdown(ctx); err != nil {
		logger.Warn("connections still open at the shutdown deadline were closed", "err", err)
	}
	if err := cl.Close(); err != nil {
		logger.Error("closing the logs", "err", err)
		return 1
	}
	logger.Info("stopped cleanly")
	return code
}

// parseConfig reads the config file, if any, then applies the flags given.
// Each flag shows the built-in default; only flags on the command line
// override the file.
func parseConfig(args []string, stderr io.Writer) (config.Config, slog.Level, error) {
	defaults := config.Default()
	flags := flag.NewFlagSet("kqbroker", flag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "", "YAML config file (see deploy/kqbroker.yaml)")
	listen := flags.String("listen", defaults.Listen, "host:port to listen on")
	adminListen := flags.String("admin-listen", defaults.AdminListen, "host:port of the admin HTTP server: /metrics, /healthz, /readyz, console; '' turns it off")
	advertise := flags.String("advertise", "", "host:port clients are told to connect to (default: the listen address)")
	dataDir := flags.String("data-dir", defaults.DataDir, "directory for the logs and metadata")
	nodeID := flags.Int("node-id", int(defaults.NodeID), "broker id")
	voters := flags.String("controller-quorum-voters", "", "the metadata quorum's voters, id@host:port,... (default: this broker alone)")
	controllerListen := flags.String("controller-listen", "", "host:port of this broker's quorum member, its address in the voters list")
	interBrokerListen := flags.String("inter-broker-listen", "", "an extra host:port for the other brokers' follower fetches (default: they use -listen)")
	interBrokerAdvertise := flags.String("inter-broker-advertise", "", "host:port the other brokers fetch from (default: -inter-broker-listen, else -advertise)")
	autoCreate := booleanFlag(defaults.AutoCreateTopics)
	flags.Var(&autoCreate, "auto-create-topics", "true or false: create the topics that producers and metadata requests name")
	logLevel := flags.String("log-level", "info", "debug, info, warn or error")
	if err := flags.Parse(args); err != nil {
		return config.Config{}, 0, err
	}
	if flags.NArg() > 0 {
		return config.Config{}, 0, fmt.Errorf("unexpected argument %q; settings are flags (-listen ...) or the -config file", flags.Arg(0))
	}
	cfg := defaults
	if *configPath != "" {
		var err error
		if cfg, err = config.Load(*configPath); err != nil {
			return cfg, 0, err
		}
	}
	var flagErr error
	flags.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "admin-listen":
			cfg.AdminListen = *adminListen
		case "advertise":
			cfg.Advertise = *advertise
		case "data-dir":
			cfg.DataDir = *dataDir
		case "node-id":
			if *nodeID < 0 || *nodeID > math.MaxInt32 {
				flagErr = fmt.Errorf("flag -node-id = %d: must be between 0 and %d", *nodeID, math.MaxInt32)
			}
			cfg.NodeID = int32(*nodeID)
		case "controller-quorum-voters":
			cfg.ControllerQuorumVoters = *voters
		case "controller-listen":
			cfg.ControllerListen = *controllerListen
		case "inter-broker-listen":
			cfg.InterBrokerListen = *interBrokerListen
		case "inter-broker-advertise":
			cfg.InterBrokerAdvertise = *interBrokerAdvertise
		case "auto-create-topics":
			cfg.AutoCreateTopics = bool(autoCreate)
		}
	})
	if flagErr != nil {
		return cfg, 0, flagErr
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, 0, fmt.Errorf("flag -log-level = %q: must be debug, info, warn or error", *logLevel)
	}
	return cfg, level, cfg.Validate()
}

// booleanFlag is a flag written "-name true" or "-name false", as a YAML
// key is, rather than Go's "-name=false".
type booleanFlag bool

func (b *booleanFlag) String() string { return strconv.FormatBool(bool(*b)) }

func (b *booleanFlag) Set(v string) error {
	switch v {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return errors.New("must be true or false")
	}
	return nil
}

// adminHandler serves what needs the open cluster: /metrics and, at /, the
// web console.
func adminHandler(m *metrics.Metrics, web *console.Console) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("/", web)
	return mux
}
