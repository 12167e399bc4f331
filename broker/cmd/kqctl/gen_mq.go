package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// mqData is what the mq templates see.
type mqData struct {
	Command    string     // the kqctl command line that made the consumer
	Service    string     // the goctl service's name: greet
	MQName     string     // the mq service's name: greet-mq
	Pkg        string     // the mq service's import path: greet/mq
	Common     string     // commonModule
	Consumer   mqConsumer // the consumer this run adds
	Consumers  []mqConsumer
	Topic      string
	Group      string
	DeadLetter string
	Brokers    []string
}

type mqConsumer struct {
	Name string // as given: payment-update-status
	Type string // PaymentUpdateStatus
	File string // paymentupdatestatus
}

func newConsumer(name string) mqConsumer {
	return mqConsumer{Name: name, Type: camel(name), File: fileName(name)}
}

// consumerHeader is the second line of a consumer's scaffold: the command
// that made it. The mq service's generated files list the consumers whose
// files carry it, so deleting a consumer's file removes it on the next run.
const consumerHeader = "// kqctl gen mq "

// genMQ adds a consumer to the service's mq service.
func genMQ(e *env, args []string) error {
	flags := newFlags(e, "gen mq")
	flags.Usage = func() { fmt.Fprint(e.stderr, genUsage) }
	topic := flags.String("topic", "", "the topic to consume (required)")
	group := flags.String("group", "", "the consumer group (required)")
	dir := flags.String("dir", ".", "the goctl service's directory; the mq service goes in DIR/mq")
	brokers := flags.String("brokers", strings.Join(e.client.Bootstrap, ","), "brokers written into the YAML")
	names, err := parseInterleaved(flags, args)
	if err != nil {
		return err
	}
	switch {
	case len(names) != 1:
		return genUsageError(e, "gen mq needs one NAME, the consumer's")
	case !nameRE.MatchString(names[0]):
		return genUsageError(e, fmt.Sprintf("gen mq %q: NAME is letters, digits, '-' and '_', starting with a letter", names[0]))
	case fileName(names[0]) == "queues":
		return genUsageError(e, "gen mq queues: the name is taken by the generated internal/mqs/queues.go")
	case *topic == "" || *group == "":
		return genUsageError(e, "gen mq needs --topic and --group")
	}
	brokerList, service, err := genTarget(e, *topic, *brokers, *dir)
	if err != nil {
		return err
	}
	consumer := newConsumer(names[0])
	mqDir := filepath.Join(service.Dir, "mq")
	consumers, err := scanConsumers(filepath.Join(mqDir, "internal", "mqs"))
	if err != nil {
		return err
	}
	byType := map[string]string{}
	for _, c := range append(consumers, consumer) {
		if other, ok := byType[c.Type]; ok && other != c.Name {
			return fmt.Errorf("consumers %q and %q would both be type %s: pick another NAME", other, c.Name, c.Type)
		}
		byType[c.Type] = c.Name
	}
	var all []string
	for _, c := range append(consumers, consumer) {
		all = append(all, c.Name)
	}
	data := mqData{
		Command:    fmt.Sprintf("kqctl gen mq %s --topic %s --group %s", consumer.Name, *topic, *group),
		Service:    service.Name,
		MQName:     service.Name + "-mq",
		Pkg:        service.ImportPath + "/mq",
		Common:     commonModule,
		Consumer:   consumer,
		Topic:      *topic,
		Group:      *group,
		DeadLetter: *topic + ".dlq",
		Brokers:    brokerList,
	}
	for _, name := range sortedUnique(all) {
		data.Consumers = append(data.Consumers, newConsumer(name))
	}
	yamlPath := "mq/etc/" + data.MQName + ".yaml"
	yamlExisted := fileExists(filepath.Join(service.Dir, filepath.FromSlash(yamlPath)))
	files := []genFile{
		{Path: "mq/" + service.Name + ".go", Template: "mq/main.go.tmpl"},
		{Path: yamlPath, Template: "mq/etc.yaml.tmpl"},
		{Path: "mq/internal/config/config.go", Template: "mq/config.go.tmpl"},
		{Path: "mq/internal/config/consumers.go", Template: "mq/consumers.go.tmpl", Generated: true},
		{Path: "mq/internal/svc/servicecontext.go", Template: "mq/servicecontext.go.tmpl"},
		{Path: "mq/internal/mqs/" + consumer.File + ".go", Template: "mq/consumer.go.tmpl"},
		{Path: "mq/internal/mqs/queues.go", Template: "mq/queues.go.tmpl", Generated: true},
	}
	content, err := render(append(files, genFile{Path: "block.yaml", Template: "mq/block.yaml.tmpl"}), data)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out.w, "%s: consumer %s of %s (group %s) in %s\n", service.Dir, consumer.Name, *topic, *group, mqDir)
	if err := writeFiles(e.out.w, service.Dir, files, content); err != nil {
		return err
	}
	yamlFile := filepath.Join(service.Dir, filepath.FromSlash(yamlPath))
	if yamlExisted && !fileContains(yamlFile, "\n"+consumer.Type+"Conf:") {
		fmt.Fprintf(e.out.w, "\n%s has no block for %s yet; add:\n\n%s", yamlPath, consumer.Name, content["block.yaml"])
	}
	fmt.Fprintf(e.out.w, "\nnext:\n")
	for _, step := range [][2]string{
		{"go mod tidy", "the mq service imports " + commonModule + "/common"},
		{"edit mq/internal/mqs/" + consumer.File + ".go", "Handle applies one event"},
		{"cd mq && go run . -f etc/" + data.MQName + ".yaml", ""},
	} {
		if step[1] == "" {
			fmt.Fprintf(e.out.w, "  %s\n", step[0])
		} else {
			fmt.Fprintf(e.out.w, "  %-42s # %s\n", step[0], step[1])
		}
	}
	return nil
}

// scanConsumers lists the consumers whose scaffolds are in dir.
func scanConsumers(dir string) ([]mqConsumer, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var consumers []mqConsumer
	for _, file := range files {
		name, err := consumerOf(file)
		if err != nil {
			return nil, err
		}
		if name != "" {
			consumers = append(consumers, newConsumer(name))
		}
	}
	return consumers, nil
}

// consumerOf reads NAME from a consumer scaffold's first two lines.
func consumerOf(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	if !scanner.Scan() || scanner.Text() != "// "+scaffoldedMarker || !scanner.Scan() {
		return "", scanner.Err()
	}
	rest, ok := strings.CutPrefix(scanner.Text(), consumerHeader)
	if !ok {
		return "", nil
	}
	name, _, _ := strings.Cut(rest, " ")
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("%s: %q is no consumer name", file, name)
	}
	return name, nil
}

func fileExists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}

// genUsageError prints gen's usage and returns an exit-2 error.
func genUsageError(e *env, msg string) error {
	fmt.Fprint(e.stderr, genUsage)
	return flagError{errors.New(msg)}
}
