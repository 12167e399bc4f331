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

wait_port() { # host port name
	for _ in $(seq 1 200); do
		if (echo >"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "$3 did not start; see data/$3.log" >&2
	exit 1
}

start kqbroker ./bin/kqbroker -config deploy/kqbroker.yaml
wait_port 127.0.0.1 9092 kqbroker

export KQSTACK_REDIS=""
if command -v redis-server >/dev/null 2>&1; then
	start redis redis-server --port 6390 --bind 127.0.0.1 --save "" --appendonly no --dir data
	wait_port 127.0.0.1 6390 redis
	export KQSTACK_REDIS=127.0.0.1:6390
else
	echo "redis-server is not installed: the services keep idempotency keys and unpaid orders in SQL (apt-get install redis-server to use Redis)"
fi

start payment-api ./bin/payment-api -f app/payment/cmd/api/etc/payment-api.yaml
start order-api ./bin/order-api -f app/order/cmd/api/etc/order-api.yaml
start order-mq ./bin/order-mq -f app/order/cmd/mq/etc/order-mq.yaml
wait_port 127.0.0.1 8002 payment-api
wait_port 127.0.0.1 8001 order-api

echo
./bin/demo
echo
echo "the stack is running: order-api http://127.0.0.1:8001/order/v1, payment-api http://127.0.0.1:8002/payment/v1, kqbroker 127.0.0.1:9092"
echo "kqbroker console and metrics: http://127.0.0.1:9644 (/metrics, /readyz); bin/kqctl group describe payment-update-paystatus-group"
echo "Ctrl-C stops it"
wait
