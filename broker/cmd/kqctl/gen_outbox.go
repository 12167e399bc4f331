package main

import (
	"fmt"
	"path/filepath"
	"strings"
)

// outboxData is what the outbox templates see.
type outboxData struct {
	Command    string
	Service    string // greet
	Pkg        string // the service's import path
	Common     string // commonModule
	Topic      string
	BrokersTag string // the default of OutboxConf.Brokers, go-zero's [a,b]
	DataSource string // the default SQLite file
	ConfigFile string // the service's YAML, relative to its directory
}

// The lines a user writes to wire the outbox in: each is looked for in its
// file, so a second run says which are still missing.
var outboxWiring = []struct{ file, where, line, present string }{
	{"internal/config/config.go", "in type Config", "Outbox OutboxConf", "OutboxConf"},
	{"internal/svc/servicecontext.go", "in type ServiceContext", "Outbox *Outbox", "*Outbox"},
	{"internal/svc/servicecontext.go", "in NewServiceContext's &ServiceContext{...}", "Outbox: MustNewOutbox(c.Outbox),", "MustNewOutbox("},
}

// genOutbox adds an outbox and its relay to a goctl api service.
func genOutbox(e *env, args []string) error {
	flags := newFlags(e, "gen outbox")
	flags.Usage = func() { fmt.Fprint(e.stderr, genUsage) }
	topic := flags.String("topic", "", "the topic the relay publishes to (required)")
	dir := flags.String("dir", ".", "the goctl service's directory")
	brokers := flags.String("brokers", strings.Join(e.client.Bootstrap, ","), "the default of OutboxConf.Brokers")
	rest, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) != 0:
		return genUsageError(e, fmt.Sprintf("gen outbox takes no arguments, got %q", rest))
	case *topic == "":
		return genUsageError(e, "gen outbox needs --topic")
	}
	brokerList, service, err := genTarget(e, *topic, *brokers, *dir)
	if err != nil {
		return err
	}
	for _, f := range []string{"internal/config/config.go", "internal/svc/servicecontext.go"} {
		if !fileExists(filepath.Join(service.Dir, f)) {
			return fmt.Errorf("%s has no %s: gen outbox adds to a service made by goctl api new (or goctl api go)", service.Dir, f)
		}
	}
	data := outboxData{
		Command:    fmt.Sprintf("kqctl gen outbox --topic %s", *topic),
		Service:    service.Name,
		Pkg:        service.ImportPath,
		Common:     commonModule,
		Topic:      *topic,
		BrokersTag: "[" + strings.Join(brokerList, ",") + "]",
		DataSource: service.Name + ".db",
		ConfigFile: apiConfigFile(service),
	}
	files := []genFile{
		{Path: "internal/config/outbox.go", Template: "outbox/config.go.tmpl", Generated: true},
		{Path: "internal/svc/outbox.go", Template: "outbox/outbox.go.tmpl", Generated: true},
		{Path: "relay/relay.go", Template: "outbox/relay.go.tmpl", Generated: true},
		{Path: "deploy/sql/outbox.sql", Template: "outbox/outbox.sql.tmpl", Generated: true},
	}
	content, err := render(files, data)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out.w, "%s: an outbox publishing to %s\n", service.Dir, *topic)
	if err := writeFiles(e.out.w, service.Dir, files, content); err != nil {
		return err
	}
	var missing []string
	for _, w := range outboxWiring {
		if !fileContains(filepath.Join(service.Dir, w.file), w.present) {
			missing = append(missing, fmt.Sprintf("  %s, %s:\n\t%s\n", w.file, w.where, w.line))
		}
	}
	if len(missing) == 0 {
		fmt.Fprintln(e.out.w, "\nthe outbox is wired into Config and ServiceContext.")
	} else {
		fmt.Fprintf(e.out.w, "\nwire it in: add these lines by hand (kqctl never edits your files)\n%s", strings.Join(missing, ""))
	}
	fmt.Fprintf(e.out.w, `
then record events in the transaction of the change they describe:
	err = l.svcCtx.Outbox.Transact(l.ctx, func(ctx context.Context, tx *svc.OutboxTx) error {
		// the change, through tx (database/sql) or tx.Session (goctl models' sqlx.Session)
		return tx.Add(ctx, key, e) // e from event.New(type, version, time.Now(), payload)
	})
The relay runs in the service and publishes them to %s (acks=all);
with several replicas set Outbox.Relay: false and run one relay: go run ./relay -f %s
Defaults: Outbox.DB is SQLite %s, Outbox.Brokers %s; MySQL: deploy/sql/outbox.sql.
next: go mod tidy   # the outbox imports %s/common
`, *topic, data.ConfigFile, data.DataSource, data.BrokersTag, commonModule)
	return nil
}

// apiConfigFile is the service's one etc/*.yaml, or goctl's name for it.
func apiConfigFile(service genService) string {
	yamls, _ := filepath.Glob(filepath.Join(service.Dir, "etc", "*.yaml"))
	if len(yamls) == 1 {
		return "etc/" + filepath.Base(yamls[0])
	}
	return "etc/" + service.Name + "-api.yaml"
}
