#!/usr/bin/env bash
# perf/run.sh — build revurb and perf/loadgen, run the fixed load scenarios
# (fanout 1k × 200 events; fanout 10k × 50 events over 2 processes; connect
# 10k; client events between 1k pairs)
# against a fresh server each, and write perf/results/<date>.md (plus one
# JSON report per scenario beside it).
#
#   perf/run.sh            # from the repository root or anywhere inside it
#   PORT=9080 API_PORT=9081 SCENARIO_TIMEOUT=180 perf/run.sh
#
# Everything is bounded: each scenario runs under `timeout`, loadgen caps
# itself with -duration, and the trap kills the server on any exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
PORT=${PORT:-8080}
API_PORT=${API_PORT:-8081}
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-150}
BIN=$(mktemp -d /tmp/revurb-perf.XXXXXX)
DATE=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT_DIR=$ROOT/perf/results
OUT=$OUT_DIR/$DATE.md
SERVER_PID=

cleanup() {
	if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$BIN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The load generator holds up to ~10k sockets per process.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

echo "building revurb and loadgen into $BIN" >&2
go build -o "$BIN/revurb" ./cmd/revurb
go build -o "$BIN/loadgen" ./perf/loadgen

start_server() {
	stop_server
	( ulimit -n 20000 2>/dev/null || true
	  exec "$BIN/revurb" start --host 127.0.0.1 --port "$PORT" --api-port "$API_PORT" ) \
		>"$BIN/server.log" 2>&1 &
	SERVER_PID=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null &&
			(exec 3<>"/dev/tcp/127.0.0.1/$API_PORT") 2>/dev/null; then
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "server did not start:" >&2
	cat "$BIN/server.log" >&2
	exit 1
}

stop_server() {
	if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID=
}

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mkdir -p "$OUT_DIR"
{
	echo "# revurb load run $DATE"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "- machine: $(nproc) CPUs ($CPU), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
	echo "- $(go version)"
	echo "- revurb: $(git describe --tags --always --dirty 2>/dev/null || echo unknown)"
	echo "- server: \`revurb start --host 127.0.0.1 --port $PORT --api-port $API_PORT\` (ulimit -n 20000), restarted for every scenario;"
	echo "  server and load generator share the machine, so latencies include the client's own CPU time."
	echo
} >"$OUT"

# scenario NAME ARGS... runs loadgen against a fresh server and appends its
# table to the results.
scenario() {
	local name=$1
	shift
	start_server
	local args=(-ws "127.0.0.1:$PORT" -api "127.0.0.1:$API_PORT" -pid "$SERVER_PID" "$@")
	local json="$OUT_DIR/$DATE-$name.json"
	echo "== $name: loadgen ${args[*]}" >&2
	local rc=0
	timeout -k 10 "$SCENARIO_TIMEOUT" "$BIN/loadgen" "${args[@]}" -quiet -json-file "$json" >"$BIN/$name.txt" 2>&1 || rc=$?
	cat "$BIN/$name.txt" >&2
	{
		echo "## $name"
		echo
		echo '```'
		echo "go run ./perf/loadgen -ws 127.0.0.1:$PORT -api 127.0.0.1:$API_PORT -pid \$(pidof revurb) $*"
		echo '```'
		echo
		echo '```'
		cat "$BIN/$name.txt"
		echo '```'
		if [[ $rc -ne 0 ]]; then
			echo
			echo "loadgen exit status $rc."
		fi
		if ! kill -0 "$SERVER_PID" 2>/dev/null; then
			echo
			echo "**The server died during this scenario.** Its log:"
			echo
			echo '```'
			tail -40 "$BIN/server.log"
			echo '```'
		fi
		echo
		echo "JSON: \`perf/results/$DATE-$name.json\`"
		echo
	} >>"$OUT"
	stop_server
}

scenario fanout-1k   -mode fanout  -conns 1000  -events 200 -rate 100 -duration 60s
scenario fanout-10k  -mode fanout  -conns 10000 -events 50  -rate 10  -procs 2 -source-first 10 -duration 90s
scenario connect-10k -mode connect -conns 10000 -hold 5s -source-first 20 -duration 90s
scenario client-events-2k -mode client-events -conns 2000 -events 20 -rate 5 -source-first 30 -duration 60s

echo "results: $OUT" >&2
