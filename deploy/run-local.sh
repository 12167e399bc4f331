#!/usr/bin/env bash
# make run: the local stack on embedded defaults. kqbroker, payment-api,
# order-api and order-mq, with SQLite files and the broker's data under
# ./data; a local redis-server when installed (else order-mq keeps its
# idempotency keys in SQL and says so). Walks through the demo, then keeps
# running until Ctrl-C.
#
# make run-cluster (CLUSTER=1): the same stack on three kqbrokers, one
# metadata quorum: clients on 127.0.0.1:9092, 9093 and 9094, the quorum on
# 9192, 9193 and 9194, admin HTTP on 9644, 9645 and 9646. The topics are
# created with three replicas and the services list the three brokers.
# Everything lives in ./data/cluster: a data directory per broker
# (broker-N), the logs, the SQLite files, and the services' configs, written
# from their etc/*.yaml with the three brokers in every Brokers list.
set -euo pipefail
cd "$(dirname "$0")/.."

cluster=
dir=data
if [ "${CLUSTER:-0}" != 0 ]; then
	cluster=1
	dir=data/cluster
fi
mkdir -p "$dir"

# The cluster's brokers: node id N has the Nth address of each list.
cluster_listen=(127.0.0.1:9092 127.0.0.1:9093 127.0.0.1:9094)
cluster_controller=(127.0.0.1:9192 127.0.0.1:9193 127.0.0.1:9194)
cluster_admin=(127.0.0.1:9644 127.0.0.1:9645 127.0.0.1:9646)
voters=
for i in "${!cluster_controller[@]}"; do
	voters+=${voters:+,}$((i + 1))@${cluster_controller[$i]}
done
bootstrap=$(IFS=,; echo "${cluster_listen[*]}")

pids=()
stop() {
	trap - EXIT INT TERM
	echo
	echo "stopping the stack..."
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
}
trap stop EXIT INT TERM

start() { # name, command...
	local name=$1
	shift
	"$@" >"$dir/$name.log" 2>&1 &
	pids+=($!)
	echo "started $name (log: $dir/$name.log)"
}

# http_ok host port path: the path answers 200 (bash's /dev/tcp: no curl needed).
http_ok() {
	local status
	{ exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
	read -r _ status _ <&3 || true
	exec 3<&- 3>&-
	[ "$status" = "200" ]
}

wait_ready() { # name host port path
	for _ in $(seq 1 400); do
		if http_ok "$2" "$3" "$4"; then return 0; fi
		sleep 0.05
	done
	echo "$1 did not become ready (http://$2:$3$4); see $dir/$1.log" >&2
	exit 1
}

wait_redis() { # host port: PING answers +PONG
	local reply
	for _ in $(seq 1 200); do
		if { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null; then
			printf 'PING\r\n' >&3
			read -r -t 1 reply <&3 || true
			exec 3<&- 3>&-
			if [ "${reply%$'\r'}" = "+PONG" ]; then return 0; fi
		fi
		sleep 0.05
	done
	echo "redis did not start; see $dir/redis.log" >&2
	exit 1
}

# broker_args N: sets args to the command line of the cluster's broker N.
args=()
broker_args() {
	local i=$(($1 - 1))
	args=(./bin/kqbroker -config deploy/kqbroker.yaml -node-id "$1"
		-listen "${cluster_listen[$i]}" -controller-listen "${cluster_controller[$i]}"
		-controller-quorum-voters "$voters" -admin-listen "${cluster_admin[$i]}"
		-data-dir "$dir/broker-$1")
}

# service_config etc/NAME.yaml: prints the config to start the service
# with. In a cluster, a copy in $dir that lists the three brokers wherever
# the original lists 127.0.0.1:9092, and keeps its SQLite files in $dir.
service_config() {
	local source=$1 target line address
	if [ -z "$cluster" ]; then
		echo "$source"
		return
	fi
	target=$dir/$(basename "$source")
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		*"- ${cluster_listen[0]}")
			for address in "${cluster_listen[@]}"; do
				printf '%s\n' "${line%"${cluster_listen[0]}"}$address"
			done
			;;
		*"DataSource: data/"*) printf '%s\n' "${line/DataSource: data\//DataSource: $dir/}" ;;
		*) printf '%s\n' "$line" ;;
		esac
	done <"$source" >"$target"
	if grep -q 'Brokers:' "$source" && ! grep -q -- "- ${cluster_listen[2]}" "$target"; then
		echo "$source lists its brokers other than one '- ${cluster_listen[0]}' line each; cannot point $target at the cluster" >&2
		exit 1
	fi
	echo "$target"
}

broker_pids=()
if [ -z "$cluster" ]; then
	start kqbroker ./bin/kqbroker -config deploy/kqbroker.yaml
	wait_ready kqbroker 127.0.0.1 9644 /readyz
else
	# all three at once: a broker is ready once a quorum (two) has formed
	for n in 1 2 3; do
		broker_args "$n"
		start "kqbroker-$n" "${args[@]}"
		broker_pids+=($!)
	done
	for n in 1 2 3; do
		address=${cluster_admin[$((n - 1))]}
		wait_ready "kqbroker-$n" "${address%:*}" "${address##*:}" /readyz
	done
	for topic in payment-update-paystatus-topic:3 payment-update-paystatus-topic.dlq:1; do
		./bin/kqctl --bootstrap-server "$bootstrap" topic create "${topic%:*}" -p "${topic##*:}" -r 3 --if-not-exists >/dev/null
	done
	echo "topics payment-update-paystatus-topic (3 partitions) and its .dlq (1): 3 replicas each, min.insync.replicas 2"
fi

export KQSTACK_REDIS=""
if command -v redis-server >/dev/null 2>&1; then
	start redis redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir"
	wait_redis 127.0.0.1 6390
	export KQSTACK_REDIS=127.0.0.1:6390
else
	echo "redis-server is not installed: the services keep idempotency keys and unpaid orders in SQL (apt-get install redis-server to use Redis)"
fi

start payment-api ./bin/payment-api -f "$(service_config app/payment/cmd/api/etc/payment-api.yaml)"
start order-api ./bin/order-api -f "$(service_config app/order/cmd/api/etc/order-api.yaml)"
start order-mq ./bin/order-mq -f "$(service_config app/order/cmd/mq/etc/order-mq.yaml)"
wait_ready payment-api 127.0.0.1 6062 /healthz
wait_ready order-api 127.0.0.1 6061 /healthz
wait_ready order-mq 127.0.0.1 6063 /healthz

echo
./bin/demo
echo
if [ -z "$cluster" ]; then
	echo "the stack is running: order-api http://127.0.0.1:8001/order/v1, payment-api http://127.0.0.1:8002/payment/v1, kqbroker 127.0.0.1:9092"
	echo "kqbroker console and metrics: http://127.0.0.1:9644 (/metrics, /readyz); bin/kqctl group describe payment-update-paystatus-group"
else
	echo "the stack is running: order-api http://127.0.0.1:8001/order/v1, payment-api http://127.0.0.1:8002/payment/v1, on three kqbrokers:"
	for n in 1 2 3; do
		echo "  broker $n: ${cluster_listen[$((n - 1))]}, console and metrics http://${cluster_admin[$((n - 1))]}, pid ${broker_pids[$((n - 1))]}, data $dir/broker-$n"
	done
	echo "bin/kqctl -b $bootstrap cluster describe (or topic describe payment-update-paystatus-topic)"
	broker_args 2
	echo "kill one (kill -9 ${broker_pids[1]}) and run bin/demo again: the order is still paid. Broker 2 comes back with"
	echo "  ${args[*]}"
fi
echo "Ctrl-C stops it"
wait
