#!/usr/bin/env bash
# make run: the local stack on embedded defaults. kqbroker, payment-api,
# order-api and order-mq, with SQLite files and the broker's data under
# ./data; a local redis-server when installed (else order-mq keeps its
# idempotency keys in SQL and says so). Walks through the demo, then keeps
# running until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data
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
	"$@" >"data/$name.log" 2>&1 &
	pids+=($!)
	echo "started $name (log: data/$name.log)"
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
	for _ in $(seq 1 200); do
		if http_ok "$2" "$3" "$4"; then return 0; fi
		sleep 0.05
	done
	echo "$1 did not become ready (http://$2:$3$4); see data/$1.log" >&2
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
	echo "redis did not start; see data/redis.log" >&2
	exit 1
}

start kqbroker ./bin/kqbroker -config deploy/kqbroker.yaml
wait_ready kqbroker 127.0.0.1 9644 /readyz

export KQSTACK_REDIS=""
if command -v redis-server >/dev/null 2>&1; then
	start redis redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir data
	wait_redis 127.0.0.1 6390
	export KQSTACK_REDIS=127.0.0.1:6390
else
	echo "redis-server is not installed: the services keep idempotency keys and unpaid orders in SQL (apt-get install redis-server to use Redis)"
fi

start payment-api ./bin/payment-api -f app/payment/cmd/api/etc/payment-api.yaml
start order-api ./bin/order-api -f app/order/cmd/api/etc/order-api.yaml
start order-mq ./bin/order-mq -f app/order/cmd/mq/etc/order-mq.yaml
wait_ready payment-api 127.0.0.1 6062 /healthz
wait_ready order-api 127.0.0.1 6061 /healthz
wait_ready order-mq 127.0.0.1 6063 /healthz

echo
./bin/demo
echo
echo "the stack is running: order-api http://127.0.0.1:8001/order/v1, payment-api http://127.0.0.1:8002/payment/v1, kqbroker 127.0.0.1:9092"
echo "kqbroker console and metrics: http://127.0.0.1:9644 (/metrics, /readyz); bin/kqctl group describe payment-update-paystatus-group"
echo "Ctrl-C stops it"
wait
