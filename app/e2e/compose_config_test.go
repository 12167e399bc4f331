package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kqstack/kqstack/broker/config"
)

// composeService is the part of a docker compose service these checks read.
type composeService struct {
	Command     []string          `yaml:"command"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   dependsOn         `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// dependsOn is a service's depends_on, in either form compose takes: a map
// of name to condition, or a list of names (condition service_started).
type dependsOn map[string]dependency

type dependency struct {
	Condition string `yaml:"condition"`
}

func (d *dependsOn) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind != yaml.SequenceNode {
		return node.Decode((*map[string]dependency)(d))
	}
	var names []string
	if err := node.Decode(&names); err != nil {
		return err
	}
	*d = dependsOn{}
	for _, name := range names {
		(*d)[name] = dependency{Condition: "service_started"}
	}
	return nil
}

// TestComposeStackIsOneClusterOfThree reads docker-compose-env.yml and the
// files it mounts as compose would (no Docker needed): three kqbrokers with
// their own config and volume form one quorum, each advertises a name and
// port the other containers reach and the host has published; kqbroker-init
// waits for the three and creates every topic the services use with three
// replicas; every Brokers list of the services and Prometheus's kqbroker
// job name all three.
func TestComposeStackIsOneClusterOfThree(t *testing.T) {
	root := filepath.Join("..", "..")
	var compose struct {
		Services map[string]composeService `yaml:"services"`
		Volumes  map[string]any            `yaml:"volumes"`
	}
	readYAML(t, filepath.Join(root, "docker-compose-env.yml"), &compose)
	// inContainer is the repository file behind a path in the image (the
	// Dockerfile copies deploy/ to /app/deploy/).
	inContainer := func(path string) string {
		rest, ok := strings.CutPrefix(path, "/app/deploy/")
		if !ok {
			t.Fatalf("%s is not under /app/deploy/, where the image has the repository's deploy/", path)
		}
		return filepath.Join(root, "deploy", rest)
	}

	published := map[string]string{} // host port -> service
	for name, service := range compose.Services {
		for _, mapping := range service.Ports {
			host, _, _ := strings.Cut(mapping, ":")
			if other, ok := published[host]; ok {
				t.Errorf("host port %s is published by both %s and %s", host, other, name)
			}
			published[host] = name
		}
	}

	var brokers []string // advertised addresses, by node id
	var adminTargets []string
	voters := ""
	volumes := map[string]string{}
	for n := 1; n <= 3; n++ {
		name := fmt.Sprintf("kqbroker-%d", n)
		service, ok := compose.Services[name]
		if !ok {
			t.Fatalf("docker-compose-env.yml has no service %s; want kqbroker-1, kqbroker-2 and kqbroker-3", name)
		}
		if len(service.Command) != 3 || service.Command[0] != "/app/kqbroker" || service.Command[1] != "-config" {
			t.Fatalf("%s: command %q, want /app/kqbroker -config FILE", name, service.Command)
		}
		path := inContainer(service.Command[2])
		cfg, err := config.Load(path)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if cfg.NodeID != int32(n) {
			t.Errorf("%s: node_id %d, want %d", path, cfg.NodeID, n)
		}
		if voters == "" {
			voters = cfg.ControllerQuorumVoters
		} else if cfg.ControllerQuorumVoters != voters {
			t.Errorf("%s: controller_quorum_voters %q, but kqbroker-1 has %q: one quorum needs one list", path, cfg.ControllerQuorumVoters, voters)
		}
		parsed, err := config.ParseVoters(cfg.ControllerQuorumVoters)
		if err != nil || len(parsed) != 3 {
			t.Fatalf("%s: controller_quorum_voters %q: want the three brokers (%v)", path, cfg.ControllerQuorumVoters, err)
		}
		i := slices.IndexFunc(parsed, func(v config.Voter) bool { return v.ID == int32(n) })
		if i < 0 {
			t.Fatalf("%s: controller_quorum_voters %q does not list this broker, node %d", path, cfg.ControllerQuorumVoters, n)
		}
		self := parsed[i]
		voterHost, voterPort, _ := net.SplitHostPort(self.Addr)
		_, controllerPort, _ := net.SplitHostPort(cfg.ControllerListen)
		if voterHost != name || voterPort != controllerPort {
			t.Errorf("%s: voter %d is %s, want %s:%s (the service name, controller_listen's port)", path, n, self.Addr, name, controllerPort)
		}
		advertised := cfg.AdvertisedAddress()
		host, port, _ := net.SplitHostPort(advertised)
		_, listenPort, _ := net.SplitHostPort(cfg.Listen)
		if host != name || port != listenPort {
			t.Errorf("%s: advertises %s, want %s:%s (the service name, the listen port)", path, advertised, name, listenPort)
		}
		if !slices.Contains(service.Ports, port+":"+port) {
			t.Errorf("%s: publishes %q, want %s:%s (the advertised port, so the host can use it too)", name, service.Ports, port, port)
		}
		brokers = append(brokers, advertised)
		_, adminPort, _ := net.SplitHostPort(cfg.AdminListen)
		adminTargets = append(adminTargets, name+":"+adminPort)
		if service.Healthcheck == nil || !strings.Contains(strings.Join(service.Healthcheck.Test, " "), "/dev/tcp/127.0.0.1/"+adminPort) {
			t.Errorf("%s: no healthcheck on its admin port %s (kqbroker-init waits for it)", name, adminPort)
		}
		volume := ""
		for _, mount := range service.Volumes {
			if source, target, _ := strings.Cut(mount, ":"); target == cfg.DataDir {
				volume = source
			}
		}
		if _, declared := compose.Volumes[volume]; volume == "" || !declared {
			t.Errorf("%s: data_dir %s is not on a volume declared in docker-compose-env.yml (mounts %q)", name, cfg.DataDir, service.Volumes)
		} else if other, ok := volumes[volume]; ok {
			t.Errorf("%s and %s share the volume %s: each broker needs its own data directory", other, name, volume)
		}
		volumes[volume] = name
	}
	initService, ok := compose.Services["kqbroker-init"]
	if !ok {
		t.Fatal("docker-compose-env.yml has no kqbroker-init service to create the topics")
	}
	if got := initService.Environment["KQ_BROKERS"]; got != strings.Join(brokers, ",") {
		t.Errorf("kqbroker-init: KQ_BROKERS %q, want %q", got, strings.Join(brokers, ","))
	}
	for n := 1; n <= 3; n++ {
		name := fmt.Sprintf("kqbroker-%d", n)
		if initService.DependsOn[name].Condition != "service_healthy" {
			t.Errorf("kqbroker-init does not wait for %s to be healthy: a topic with three replicas needs the three brokers", name)
		}
	}
	script := strings.Join(initService.Command, " ")

	services := 0
	for name, service := range compose.Services {
		if len(service.Command) != 3 || service.Command[1] != "-f" {
			continue // not a go-zero service
		}
		services++
		path := inContainer(service.Command[2])
		var document any
		readYAML(t, path, &document)
		for _, block := range kqBlocks(document) {
			if !slices.Equal(block.brokers, brokers) {
				t.Errorf("%s (%s): Brokers %q, want the three brokers %q", name, filepath.Base(path), block.brokers, brokers)
			}
			created := regexp.MustCompile(`topic create ` + regexp.QuoteMeta(block.topic) + ` [^&]*-r 3\b`)
			if !created.MatchString(script) {
				t.Errorf("%s uses topic %s, which kqbroker-init does not create with -r 3", name, block.topic)
			}
			if service.DependsOn["kqbroker-init"].Condition != "service_completed_successfully" {
				t.Errorf("%s uses topic %s but does not wait for kqbroker-init to create it", name, block.topic)
			}
		}
	}
	if services < 3 {
		t.Errorf("found %d go-zero services in docker-compose-env.yml, want payment-api, order-api and order-mq", services)
	}

	var prometheus struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(root, "deploy", "prometheus", "prometheus.yml"), &prometheus)
	var scraped []string
	for _, job := range prometheus.ScrapeConfigs {
		if job.JobName == "kqbroker" {
			for _, static := range job.StaticConfigs {
				scraped = append(scraped, static.Targets...)
			}
		}
	}
	if !slices.Equal(scraped, adminTargets) {
		t.Errorf("prometheus.yml's kqbroker job scrapes %q, want each broker's admin port %q", scraped, adminTargets)
	}
}

// kqBlock is a go-zero config block that names brokers and a topic (a kq
// consumer, a pusher, a dead-letter topic).
type kqBlock struct {
	brokers []string
	topic   string
}

// kqBlocks finds every mapping with a Brokers list in a YAML document.
func kqBlocks(node any) []kqBlock {
	var blocks []kqBlock
	switch v := node.(type) {
	case map[string]any:
		if list, ok := v["Brokers"].([]any); ok {
			block := kqBlock{topic: fmt.Sprint(v["Topic"])}
			for _, b := range list {
				block.brokers = append(block.brokers, fmt.Sprint(b))
			}
			blocks = append(blocks, block)
		}
		for _, child := range v {
			blocks = append(blocks, kqBlocks(child)...)
		}
	case []any:
		for _, child := range v {
			blocks = append(blocks, kqBlocks(child)...)
		}
	}
	return blocks
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(text, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
