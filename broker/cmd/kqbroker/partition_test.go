package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/kqstack/kqstack/internal/testport"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
)

// links are the broker-to-broker links of a cluster, each through a
// toxiproxy proxy in this process: controller[i][j] carries broker i's
// quorum traffic to broker j (each broker's controller_quorum_voters names
// the others at its own proxies), fetch[j] the follower fetches from
// broker j (its inter_broker_advertise). Clients reach the brokers
// directly: only the brokers are partitioned from each other.
type links struct {
	controller [][]*toxiproxy.Proxy
	fetch      []*toxiproxy.Proxy
}

// startProxiedCluster starts n kqbroker processes whose links go through
// proxies.
func startProxiedCluster(t *testing.T, bin string, n int) ([]*brokerProcess, []string, []string, *links) {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := func(name, upstream string) *toxiproxy.Proxy {
		p := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
		return p
	}
	all := testport.Addrs(t, 3*n) // clients, controllers, inter-broker listeners
	clients, controllers, inter := all[:n], all[n:2*n], all[2*n:]
	l := &links{controller: make([][]*toxiproxy.Proxy, n)}
	for j := range n {
		l.fetch = append(l.fetch, proxy(fmt.Sprintf("fetch-%d", j+1), inter[j]))
	}
	configs := make([]string, n)
	for i := range n {
		l.controller[i] = make([]*toxiproxy.Proxy, n)
		var voters []string
		for j := range n {
			address := controllers[j]
			if i != j {
				l.controller[i][j] = proxy(fmt.Sprintf("controller-%d-%d", i+1, j+1), controllers[j])
				address = l.controller[i][j].Listen
			}
			voters = append(voters, fmt.Sprintf("%d@%s", j+1, address))
		}
		configs[i] = filepath.Join(t.TempDir(), "kqbroker.yaml")
		text := fmt.Sprintf("node_id: %d\nlisten: %s\ninter_broker_listen: %s\ninter_broker_advertise: %s\ncontroller_listen: %s\ncontroller_quorum_voters: %s\n"+
			"data_dir: %s\nadmin_listen: \"\"\nbroker_heartbeat_interval_ms: 200\nbroker_session_timeout_ms: 1500\nreplica_lag_time_max_ms: 2000\n",
			i+1, clients[i], inter[i], l.fetch[i].Listen, controllers[i], strings.Join(voters, ","), t.TempDir())
		if err := os.WriteFile(configs[i], []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return startConfigured(t, bin, configs), clients, configs, l
}

// isolate cuts (or, heal, restores) every link to and from broker x
// (0-based): data stops flowing both ways and connections hang, as when a
// network partition drops packets.
func (l *links) isolate(t *testing.T, x int, heal bool) {
	t.Helper()
	var cut []*toxiproxy.Proxy
	for i := range l.controller {
		if i != x {
			cut = append(cut, l.controller[x][i], l.controller[i][x])
		}
	}
	cut = append(cut, l.fetch[x])
	for _, p := range cut {
		for _, stream := range []string{"upstream", "downstream"} {
			name := "partition-" + stream
			if heal {
				if err := p.Toxics.RemoveToxic(context.Background(), name); err != nil {
					t.Fatalf("healing %s: %v", p.Name, err)
				}
				continue
			}
			toxic := fmt.Sprintf(`{"name":%q,"type":"timeout","stream":%q,"attributes":{"timeout":0}}`, name, stream)
			if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
				t.Fatalf("cutting %s: %v", p.Name, err)
			}
		}
	}
}

// TestLeaderPartitionedAwayLosesNoAcknowledgedRecord is Jepsen's classic:
// the leader of a partition is cut off from the other brokers (quorum and
// followers) while producers can still reach every broker. The old leader
// cannot commit what it takes (its followers no longer fetch, its ISR
// change cannot reach the quorum), the controller fences it and elects a
// leader from the ISR, producers move there; when the partition heals, the
// old leader truncates what it wrote alone and catches up. The checker
// finds every acknowledged record where it was acknowledged, and the
// replicas are identical.
func TestLeaderPartitionedAwayLosesNoAcknowledgedRecord(t *testing.T) {
	bin := buildBroker(t)
	brokers, addrs, configs, l := startProxiedCluster(t, bin, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin := kadm.NewClient(mustClient(t, addrs...))
	if _, err := admin.CreateTopic(ctx, 3, 3, nil, "checked"); err != nil {
		t.Fatal(err)
	}
	for len(partitionLeaders(t, ctx, admin, "checked")) < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	w := startWrites(t, ctx, addrs, "checked")
	time.Sleep(time.Second)
	x := int(partitionLeaders(t, ctx, admin, "checked")[0]) - 1
	l.isolate(t, x, false)
	// Past the session timeout: the others fence x and elect new leaders.
	survivor := kadm.NewClient(mustClient(t, addrs[(x+1)%3]))
	for deadline := time.Now().Add(20 * time.Second); ; {
		if leader := partitionLeaders(t, ctx, survivor, "checked")[0]; leader != int32(x+1) && leader >= 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new leader of partition 0 while its leader was cut off")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // producers write to the new leaders
	l.isolate(t, x, true)
	time.Sleep(2 * time.Second)
	w.stopWrites()
	waitWholeISRs(t, ctx, admin, "checked", 3)
	w.check(t, ctx, admin, addrs)
	// What the old leader took alone was cut when it rejoined (the run
	// shows it; how much depends on the producers' timing).
	for _, line := range strings.Split(brokers[x].output.String(), "\n") {
		if strings.Contains(line, "diverged") {
			t.Logf("the isolated broker: %s", line[strings.Index(line, "msg="):])
		}
	}
	for _, b := range brokers {
		b.stop(t)
	}
	compareReplicas(t, configs, "checked", 3)
}
