#!/usr/bin/env bash
# perf/run.sh — the standard load scenarios against a freshly built revurb
# and against Soketi 1.6, one after the other in one run, each scenario
# against a fresh server process, and the side-by-side results file
# perf/results/<date>.md (the loadgen reports, tables and server logs in
# perf/results/<date>/). The wss-* scenarios run over wss:// and https://
# against three servers, each terminating TLS with a certificate made for
# the run: revurb itself, Soketi itself, and nginx in front of a plain
# revurb (the README's recipe).
#
#   perf/run.sh                               # every scenario, every server
#   SERVER=revurb perf/run.sh                 # one side only: revurb, soketi or nginx (wss only)
#   perf/run.sh fanout-10k-closed idle-5k     # some scenarios (see perf/lib.sh)
#   perf/run.sh wss-idle-19.5k wss-fanout-10k-closed wss-handshakes-1core wss-storm-19.5k
#
# Env: REVURB_PORT (28080) and REVURB_API_PORT (28081); SOKETI_PORT (26001,
# WebSockets and API); NGINX_PORT (28443), NGINX_WORKERS (4);
# SCENARIO_TIMEOUT (240 s per loadgen run); QUIET_WAIT
# and QUIET_IDLE (wait up to 60 s for the machine to be 90% idle before each
# run); OUT_DIR (perf/results); REVURB_BIN (a revurb binary to run instead
# of building one); CURVE_CAPACITY, CURVE_PCTS, CURVE_SECONDS (the curve,
# perf/lib.sh).
#
# Everything is bounded: each run is under `timeout`, loadgen caps itself
# with -duration, and the trap stops the server on any exit.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$(mktemp -d /tmp/revurb-perf.XXXXXX)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

SERVER=${SERVER:-both}
case $SERVER in
both | all) SERVERS=(revurb soketi nginx) ;;
revurb | soketi | nginx) SERVERS=("$SERVER") ;;
*) echo "SERVER must be revurb, soketi, nginx or both" >&2; exit 2 ;;
esac
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-240}
if (($# > 0)); then
	for s in "$@"; do
		scenario_args "$s" >/dev/null || { echo "unknown scenario $s; known: ${SCENARIOS[*]}" >&2; exit 2; }
	done
	RUN=("$@")
else
	RUN=("${SCENARIOS[@]}")
fi

DATE=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT_DIR=${OUT_DIR:-$ROOT/perf/results}
RUN_DIR=$OUT_DIR/$DATE
OUT=$OUT_DIR/$DATE.md
mkdir -p "$RUN_DIR"

# The load generator holds up to ~10k sockets per process.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build_tools
go build -o "$BIN/compare" ./perf/compare
[[ " ${SERVERS[*]} " == *" soketi "* ]] && soketi_ready
WSS=
for name in "${RUN[@]}"; do is_wss "$name" && WSS=1; done
[[ -n $WSS ]] && make_tls "$BIN/tls"

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
	printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf 'commit\t%s (branch %s)\n' "$(git describe --tags --always --dirty 2>/dev/null || echo unknown)" "$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)"
	printf 'machine\t%s CPUs (%s), %s RAM, %s\n' "$(nproc)" "$CPU" "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)" "$(uname -sr)"
	printf 'go\t%s\n' "$(go version)"
	printf 'soketi\t%s on node %s (uWebSockets.js aliased by soketi-setup.sh), started by `soketi-start.sh %s` with SOKETI_DEFAULT_APP_USER_AUTHENTICATION=false and ulimit -n 20000; WebSockets and API on that port\n' \
		"$(soketi_version)" "$(node --version 2>/dev/null || echo '?')" "$SOKETI_PORT"
	printf 'revurb\t`revurb start --host 127.0.0.1 --port %s --api-port %s` with ulimit -n 20000, %s\n' "$REVURB_PORT" "$REVURB_API_PORT" \
		"$(if [[ -n ${REVURB_BIN:-} ]]; then echo "the binary $REVURB_BIN ($("$BIN/revurb" version))"; else echo "built from this tree"; fi)"
	printf 'method\teach scenario runs against a fresh server process, revurb then Soketi; server and load generator share the machine (and its other users: the CPU idle before each run is listed with its report), so latencies include the client'"'"'s own CPU time; the server'"'"'s CPU, syscalls and RSS come from /proc and perf for its PID only\n'
	if [[ -n $WSS ]]; then
		printf 'wss\t%s\n' "the wss-* scenarios: loadgen -tls (crypto/tls client, full handshake per socket, no session resumption, ALPN http/1.1, Go's default key exchange offer) verifying a test CA made for the run; server certificate ECDSA P-256 for 127.0.0.1 (openssl). revurb: \`--tls-cert --tls-key\` (wss:// and https://). Soketi: SOKETI_SSL_CERT/SOKETI_SSL_KEY (wss:// and https:// on its one port). nginx + revurb: $("$NGINX_BIN" -v 2>&1 | sed 's/^nginx version: //') with OpenSSL $(openssl version | cut -d' ' -f2), the README's nginx block as written except its listen (127.0.0.1:$NGINX_PORT ssl), certificate paths and upstream ports, in a main context of worker_processes $NGINX_WORKERS, worker_rlimit_nofile 20000, worker_connections 16000, in front of a plain revurb; its figures are nginx's master and workers and revurb together (loadgen -pid with every PID). wss-handshakes-1core pins the server side to CPU 1 with \`taskset -c 1\` (revurb then runs GOMAXPROCS 1 and one event loop) and loadgen to CPU 0"
	fi
	printf 'servers\t%s\n' "${SERVERS[*]}"
	if [[ " ${RUN[*]}" == *" curve-"* ]]; then
		printf 'curve\topen-loop fan-out to 1,000 subscribers over 10 channels at %s%% of %s deliveries/s (CURVE_CAPACITY: Soketi'"'"'s closed-loop capacity in fanout-1k-10ch-8pub), %s s a point, 16 publishers\n' \
			"${CURVE_PCTS[*]}" "$CURVE_CAPACITY" "$CURVE_SECONDS"
	fi
	printf 'files\t`%s/` (loadgen JSON reports and tables, server logs)\n' "${RUN_DIR#"$ROOT/"}"
} >"$RUN_DIR/meta.tsv"
: >"$RUN_DIR/runs.tsv"

# run_one SCENARIO SERVER runs loadgen against a fresh SERVER and appends
# the run to runs.tsv.
run_one() {
	local name=$1 server=$2
	local base=$name.$server
	local idle
	idle=$(wait_quiet)
	local cpus pin=() lpin=() tls=
	read -r -a cpus <<<"$(scenario_cpus "$name")"
	if ((${#cpus[@]} == 2)); then
		pin=(taskset -c "${cpus[0]}") lpin=(taskset -c "${cpus[1]}")
	fi
	is_wss "$name" && tls=_tls
	PIN=("${pin[@]}")
	case $server in
	revurb | soketi) "start_$server$tls" "$RUN_DIR/$base.log" ;;
	nginx) start_nginx "$RUN_DIR/$base.log" ;;
	esac
	PIN=()
	local args=()
	mapfile -t args < <(scenario_args "$name")
	local srv=()
	if [[ -n $tls ]]; then
		mapfile -t srv < <(server_args)
	else
		mapfile -t srv < <(TLS_DIR='' server_args)
	fi
	echo "== $name on $server (pids $SERVER_PIDS, CPU ${idle}% idle): ${lpin[*]} loadgen ${args[*]}" >&2
	local rc=0
	timeout -k 10 "$SCENARIO_TIMEOUT" "${lpin[@]}" "$BIN/loadgen" "${srv[@]}" -pid "$SERVER_PIDS" "${args[@]}" \
		-quiet -json-file "$RUN_DIR/$base.json" >"$RUN_DIR/$base.txt" 2>&1 || rc=$?
	cat "$RUN_DIR/$base.txt" >&2
	local alive=yes p
	for p in ${SERVER_PIDS//,/ }; do kill -0 "$p" 2>/dev/null || alive=no; done
	stop_server
	local pids="\$(pgrep -n ${server/soketi/node})"
	[[ $server == nginx ]] && pids="NGINX_MASTER,NGINX_WORKERS...,REVURB_PID"
	local cmd="go run ./perf/loadgen ${srv[*]} -pid $pids ${args[*]}"
	if ((${#pin[@]} > 0)); then
		cmd="(server under ${pin[*]}) ${lpin[*]} $cmd"
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$server" "$rc" "$alive" "$idle" \
		"$(scenario_metrics "$name")" "$base.json" "$base.txt" "$base.log" "$cmd" >>"$RUN_DIR/runs.tsv"
}

for name in "${RUN[@]}"; do
	for server in "${SERVERS[@]}"; do
		# nginx in front of revurb is a wss scenario's third server only.
		[[ $server == nginx ]] && ! is_wss "$name" && continue
		run_one "$name" "$server"
	done
done

"$BIN/compare" -dir "$RUN_DIR" -out "$OUT" -title "revurb and Soketi side by side, load run $DATE"
strip_histograms "$RUN_DIR"
echo "results: $OUT" >&2
[[ -f ${OUT%.md}-curve.svg ]] && echo "curve: ${OUT%.md}-curve.svg" >&2
exit 0
