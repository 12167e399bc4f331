# kqstack: the habits. CI runs `make test` through .ci/run.
GO        ?= go
PKGS      ?= ./...
# The suite must stay well under CI's limit; this bounds a hung test.
TEST_FLAGS ?= -count=1 -timeout 15m
BENCH     ?= .
BENCHTIME ?= 1s

.PHONY: run run-broker build test test-cluster test-race bench bench-go fuzz fmt lint vet tools screenshots chaos

# The local stack on embedded defaults: kqbroker, payment-api, order-api and
# order-mq, data in ./data (ignored by git); a demo walk-through, then it runs
# until Ctrl-C.
run: build
	./deploy/run-local.sh

# The same stack on three local kqbrokers, one metadata quorum: clients on
# 127.0.0.1:9092-9094, topics with three replicas, the services listing all
# three; data in ./data/cluster. Kill a broker and run bin/demo again.
.PHONY: run-cluster
run-cluster: build
	CLUSTER=1 ./deploy/run-local.sh

# Only the broker, on 127.0.0.1:9092.
run-broker: bin/kqbroker
	./bin/kqbroker -config deploy/kqbroker.yaml

build:
	$(GO) build -o bin/kqbroker ./broker/cmd/kqbroker
	$(GO) build -o bin/kqctl ./broker/cmd/kqctl
	$(GO) build -o bin/payment-api ./app/payment/cmd/api
	$(GO) build -o bin/order-api ./app/order/cmd/api
	$(GO) build -o bin/order-mq ./app/order/cmd/mq
	$(GO) build -o bin/demo ./app/demo

bin/kqbroker: $(shell find broker -name '*.go' -not -name '*_test.go') go.mod go.sum
	$(GO) build -o $@ ./broker/cmd/kqbroker

test: lint
	@command -v kcat >/dev/null 2>&1 || echo "note: kcat is not installed, so the kcat tests will skip; apt-get install kcat (.ci/run does)"
	@command -v redis-server >/dev/null 2>&1 || echo "note: redis-server is not installed, so the Redis tests will skip; apt-get install redis-server (.ci/run does)"
	@command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || echo "note: MariaDB is not installed, so the MySQL-protocol end-to-end test will skip; apt-get install mariadb-server (.ci/run does)"
	@command -v chromium >/dev/null 2>&1 || echo "note: chromium is not installed, so the web console's browser test will skip; apt-get install chromium (.ci/run does)"
	@command -v prometheus >/dev/null 2>&1 || echo "note: prometheus is not installed, so the dashboard-against-a-real-Prometheus test will skip; apt-get install prometheus (.ci/run does)"
	@command -v Burrow >/dev/null 2>&1 && [ -f /usr/share/java/zookeeper.jar ] || echo "note: Burrow or ZooKeeper is not installed, so the consumer-lag-by-Burrow test will skip; apt-get install burrow zookeeper (.ci/run does)"
	$(GO) test $(TEST_FLAGS) $(PKGS)
	$(MAKE) --no-print-directory test-cluster

# The suites written against one broker (brokertest.Start), again on a
# cluster of three with replicated topics (KQ_TEST_BROKERS=3): clients
# bootstrap from broker 1 and find the others; the few tests about one
# broker's data directory skip there, saying so.
CLUSTER_PKGS = ./broker/server/ ./broker/console/ ./broker/cmd/kqctl/ ./common/... ./app/...
test-cluster:
	KQ_TEST_BROKERS=3 $(GO) test $(TEST_FLAGS) $(CLUSTER_PKGS)

# Refreshes the web console's screenshots in doc/console/ (tests save theirs
# in a temporary directory). Needs chromium.
screenshots:
	@command -v chromium >/dev/null 2>&1 || { echo "screenshots need chromium: apt-get install chromium"; exit 1; }
	$(GO) test -count=1 -run '^(TestConsoleInChromium|TestClusterPageHighlightsUnderReplicatedPartitions)$$' ./broker/console/ -args -screenshots $(CURDIR)/doc/console

test-race:
	$(GO) test -race $(TEST_FLAGS) $(PKGS)

# The standard kqbench suite (about 3 minutes): kqbroker side by side with
# franz-go's kfake, alternating runs; it rewrites the table in
# doc/benchmarks.md. One workload: go run ./broker/cmd/kqbench produce -vs kfake
bench:
	$(GO) build -o bin/kqbench ./broker/cmd/kqbench
	./bin/kqbench suite -write doc/benchmarks.md

# The cluster's fault runs, CHAOS_RUNS times each (every run is also in
# make test once): SIGKILL and SIGSTOP of brokers under idempotent acks=all
# producers, a follower down while CHAOS_BYTES are written, a rolling
# restart, a leader cut off from the other brokers through toxiproxy,
# clients failing over; each ends with the checker (no acknowledged record
# lost, moved or duplicated) and replicas compared byte for byte.
CHAOS_RUNS ?= 5
# written while a follower is down (64 MiB in make test)
CHAOS_BYTES ?= 1073741824
chaos:
	@mkdir -p bin
	KQ_FAULT_BYTES=$(CHAOS_BYTES) $(GO) test -count=$(CHAOS_RUNS) -timeout 60m -v -run '^(TestFaultsLoseNoAcknowledgedRecord|TestKillFollowerAndControllerLosesNothing|TestFollowerDownWhileMuchIsWritten|TestRollingRestartLosesNothing|TestLeaderPartitionedAwayLosesNoAcknowledgedRecord|TestClientsFailOver|TestKilledBrokerIsFencedAndComesBack)$$' ./broker/cmd/kqbroker/ > bin/chaos.log 2>&1; \
	status=$$?; grep -E '^(--- |ok|FAIL)|_test.go:[0-9]+: (checker|acknowledged|broker|wrote)' bin/chaos.log; \
	echo "the whole output: bin/chaos.log"; exit $$status

# Go benchmarks for the hot paths; figures go into doc/benchmarks.md.
bench-go:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./broker/storage/ ./broker/server/

# Short fuzz runs of every fuzz target (go test -fuzz takes one target at a time).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzValidateBatches$$' -fuzztime $(FUZZTIME) ./broker/storage/
	$(GO) test -run '^$$' -fuzz '^FuzzRecoverTail$$' -fuzztime $(FUZZTIME) ./broker/storage/
	$(GO) test -run '^$$' -fuzz '^FuzzCleanedLogHoldsTheLastRecordOfEachKey$$' -fuzztime $(FUZZTIME) ./broker/storage/
	$(GO) test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) ./broker/server/
	$(GO) test -run '^$$' -fuzz '^FuzzApply$$' -fuzztime $(FUZZTIME) ./broker/metadata/
	$(GO) test -run '^$$' -fuzz '^FuzzLogStoreRecovery$$' -fuzztime $(FUZZTIME) ./broker/quorum/

fmt:
	find . -name '*.go' -not -path './.git/*' -not -path './data/*' | xargs -r gofmt -w

vet:
	$(GO) vet $(PKGS)

lint: vet
	@unformatted=$$(find . -name '*.go' -not -path './.git/*' -not -path './data/*' | xargs -r gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "not gofmt-formatted (run make fmt):"; echo "$$unformatted"; exit 1; fi
	@# the project's docs stand alone: nothing points at the workbench outside the repository
	@if grep -rn --exclude=Makefile -e '\.\./shared/' README.md doc app broker common deploy .ci; then echo "these lines point outside the repository; bring what they need into doc/"; exit 1; fi
