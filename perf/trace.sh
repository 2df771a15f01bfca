#!/usr/bin/env bash
# perf/trace.sh — build revurb, start it with --pprof, run an open-loop
# scenario of perf/lib.sh against it, take a Go execution trace of the
# server in the middle of the load (/debug/pprof/trace?seconds=N) and print
# where its goroutines wait with perf/tracestat: scheduler latency of the
# event loops and of the HTTP API, the handoff from a trigger to a loop,
# each loop's batch, the time every P was busy, GC pauses and assists.
#
#   perf/trace.sh                                      # open-1k-10ch-600ev
#   SCENARIO=open-10k-1ch-5ev TRACE_SECONDS=8 perf/trace.sh
#   REVURB_BIN=/tmp/old/revurb TRACE_NAME=old perf/trace.sh   # another build
#   GOMAXPROCS=2 TRACE_NAME=gomaxprocs2 perf/trace.sh  # the server inherits the environment
#
# Writes to TRACE_DIR (perf/profiles): TRACE_NAME.out (the trace, for `go
# tool trace`; not committed), TRACE_NAME.txt (tracestat's tables),
# TRACE_NAME.load.txt (the load report) and TRACE_NAME.info.txt (commit,
# commands). TRACE_NAME is trace-SCENARIO by default.
#
# Env: SCENARIO (open-1k-10ch-600ev), TRACE_DELAY (4 s after loadgen starts:
# its sockets are in by then), TRACE_SECONDS (5), PPROF_PORT (28082),
# TRACE_DIR, TRACE_NAME, REVURB_BIN, REVURB_PORT, REVURB_API_PORT,
# SCENARIO_TIMEOUT (240). Bounded like perf/run.sh: timeout around loadgen
# and curl, the trap stops the server.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$(mktemp -d /tmp/revurb-trace.XXXXXX)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

SCENARIO=${SCENARIO:-open-1k-10ch-600ev}
PPROF_PORT=${PPROF_PORT:-28082}
TRACE_DELAY=${TRACE_DELAY:-4}
TRACE_SECONDS=${TRACE_SECONDS:-5}
TRACE_DIR=${TRACE_DIR:-$ROOT/perf/profiles}
TRACE_NAME=${TRACE_NAME:-trace-$SCENARIO}
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-240}
args=()
mapfile -t args < <(scenario_args "$SCENARIO") || true
((${#args[@]} > 0)) || { echo "unknown scenario $SCENARIO; known: ${SCENARIOS[*]}" >&2; exit 2; }

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build_tools
(cd "$ROOT" && go build -o "$BIN/tracestat" ./perf/tracestat)
mkdir -p "$TRACE_DIR"
out=$TRACE_DIR/$TRACE_NAME
rm -f "$out".{out,txt,load.txt,info.txt}
port_free "$PPROF_PORT" || { echo "port $PPROF_PORT is in use; set PPROF_PORT" >&2; exit 1; }

idle=$(wait_quiet)
start_revurb "$BIN/server.log" --pprof "127.0.0.1:$PPROF_PORT"
srv=()
mapfile -t srv < <(server_args)
echo "== $SCENARIO on revurb (pid $SERVER_PID, CPU ${idle}% idle); trace of ${TRACE_SECONDS}s from ${TRACE_DELAY}s in" >&2
timeout -k 10 "$SCENARIO_TIMEOUT" "$BIN/loadgen" "${srv[@]}" -pid "$SERVER_PID" "${args[@]}" -quiet \
	>"$out.load.txt" 2>&1 &
load=$!
sleep "$TRACE_DELAY"
trc=0
curl -sS --max-time $((TRACE_SECONDS + 20)) -o "$out.out" \
	"http://127.0.0.1:$PPROF_PORT/debug/pprof/trace?seconds=$TRACE_SECONDS" || trc=$?
rc=0
wait "$load" || rc=$?
cat "$out.load.txt" >&2
stop_server

{
	echo "commit: $(git describe --tags --always --dirty 2>/dev/null || echo unknown)"
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), CPU ${idle}% idle before the run"
	echo "server: ${GOMAXPROCS:+GOMAXPROCS=$GOMAXPROCS }revurb start --host 127.0.0.1 --port $REVURB_PORT --api-port $REVURB_API_PORT --pprof 127.0.0.1:$PPROF_PORT ($("$BIN/revurb" version))"
	echo "server start line: $(grep -m1 'connections:' "$BIN/server.log" | sed 's/.*msg="//; s/".*//')"
	echo "load: go run ./perf/loadgen ${srv[*]} -pid \$(pgrep -n revurb) ${args[*]}"
	echo "trace: curl http://127.0.0.1:$PPROF_PORT/debug/pprof/trace?seconds=$TRACE_SECONDS, ${TRACE_DELAY}s after loadgen started (curl exit status $trc)"
	echo "loadgen exit status: $rc"
} >"$out.info.txt"
if [[ $trc == 0 && -s $out.out ]]; then
	"$BIN/tracestat" "$out.out" | tee "$out.txt"
else
	echo "no trace (curl exit status $trc)" >&2
	rc=1
fi
echo "trace: $out.out (go tool trace $out.out); tables: $out.txt" >&2
exit "$rc"
