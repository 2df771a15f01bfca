#!/usr/bin/env bash
# perf/cluster.sh — revurb as a cluster at scale: one redis-server on a free
# loopback port, NODES revurb nodes meeting at it (`revurb start --redis
# ... --redis-prefix ...`, each on its own ports with ulimit -n 20000),
# and perf/loadgen spreading CONNS WebSockets over all of them, round
# robin, on one public channel; EVENTS events are triggered on the HTTP
# API of the first node (API_NODES=all: publishers round robin over every
# node's API), each goes through Redis to every node and from there to
# every socket. Writes perf/results/<date>-cluster.md (and the run's
# files in perf/results/<date>-cluster/).
#
#   perf/cluster.sh                          # 6 nodes, 102,000 sockets, 30 events at 0.5/s
#   NODES=7 CONNS=105000 perf/cluster.sh
#   CONNS=30000 EVENTS=20 CLOSED=1 perf/cluster.sh
#   TOPOLOGY=cluster perf/cluster.sh         # the same on a Redis Cluster of 3 primaries
#
# TOPOLOGY=cluster runs MASTERS primaries (REPLICAS replicas each) built
# by redis-cli --cluster create instead of one redis-server; the nodes
# find it from the addresses of the first three (redis://h1?addr=h2&addr=h3),
# and Redis's CPU is summed over the primaries.
#
# MODE=join measures instead how long a node takes to join: one
# redis-server holding JOIN_KEYS keys of other software (DEBUG POPULATE),
# and nodes serving JOIN_APPS apps each; the first node joins an empty
# cluster, the second one with the first in it. Writes
# perf/results/<date>-join.md.
#
#   MODE=join perf/cluster.sh                # 2,000 apps, 200,000 other keys
#   MODE=join JOIN_APPS=500 JOIN_KEYS=1000000 perf/cluster.sh
#
# Everything is bounded: loadgen caps itself with -duration and runs under
# `timeout`, node start-up waits are bounded, and the EXIT trap stops every
# node and Redis (TERM, then KILL) whatever happens.
set -euo pipefail

# The scenario's knobs (environment overrides each).
NODES=${NODES:-6}                 # revurb nodes
CONNS=${CONNS:-102000}            # WebSockets in all, round robin over the nodes
PER_PROC=${PER_PROC:-17000}       # at most this many sockets per loadgen process (the fd limit is 20,000)
PROCS=${PROCS:-$(((CONNS + PER_PROC - 1) / PER_PROC))} # loadgen processes
SOURCES=${SOURCES:-0}             # source addresses per loadgen process; 0: one per 10,000 sockets
SOURCE_FIRST=${SOURCE_FIRST:-100} # the first is 127.0.0.SOURCE_FIRST
EVENTS=${EVENTS:-30}              # events triggered in all
RATE=${RATE:-0.5}                 # events per second (open loop; 0.5 × 102,000 sockets is about half what the box delivers); ignored with CLOSED=1
CLOSED=${CLOSED:-0}               # 1: closed loop, each publisher's next trigger once the last is answered
PUBLISHERS=${PUBLISHERS:-1}
API_NODES=${API_NODES:-first}     # first: trigger on node 0's API; all: publishers round robin over every node's
SIZE=${SIZE:-64}                  # bytes of event data
CHANNEL=${CHANNEL:-cluster}       # the one public channel
CONCURRENCY=${CONCURRENCY:-256}   # connection attempts in flight per loadgen process
DRAIN=${DRAIN:-60s}               # longest wait for deliveries after the last trigger
DURATION=${DURATION:-240s}        # loadgen's cap on the whole run, ramp included
TIMEOUT=${TIMEOUT:-330}           # seconds; `timeout` around loadgen
BASE_PORT=${BASE_PORT:-28100}     # node i: WebSockets BASE_PORT+2i, HTTP API BASE_PORT+2i+1
REDIS_PORT=${REDIS_PORT:-28190}   # the first free port from here
PREFIX=${PREFIX:-revurb-bench-$$} # Redis key prefix of this cluster
QUIET_WAIT=${QUIET_WAIT:-120}     # wait up to this many seconds for the machine to be QUIET_IDLE % idle
QUIET_IDLE=${QUIET_IDLE:-85}
TOPOLOGY=${TOPOLOGY:-single}      # single: one redis-server; cluster: a Redis Cluster
MASTERS=${MASTERS:-3}             # TOPOLOGY=cluster: its primaries
REPLICAS=${REPLICAS:-0}           # TOPOLOGY=cluster: replicas per primary
MODE=${MODE:-load}                # load: the fan-out; join: a node's join time
JOIN_APPS=${JOIN_APPS:-2000}      # MODE=join: apps each node serves
JOIN_KEYS=${JOIN_KEYS:-200000}    # MODE=join: keys of other software in Redis

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$(mktemp -d /tmp/revurb-cluster.XXXXXX)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"

NODE_PIDS=()
REDIS_PIDS=()

# stop_pid PID [GRACE] sends TERM, waits up to GRACE (10) seconds, then KILL.
stop_pid() {
	local pid=$1 grace=${2:-10}
	kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq $((grace * 10))); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	echo "pid $pid still there after ${grace}s: KILL" >&2
	kill -9 "$pid" 2>/dev/null || true
}

# stop_cluster stops the nodes (in parallel, each drains its sockets), then
# Redis: the nodes leave the cluster cleanly while Redis is still there.
stop_cluster() {
	local pid stoppers=()
	for pid in "${NODE_PIDS[@]}"; do
		stop_pid "$pid" 15 &
		stoppers+=($!)
	done
	# Not a bare wait: Redis is a child of this shell too.
	for pid in "${stoppers[@]}"; do wait "$pid" || true; done
	NODE_PIDS=()
	for pid in "${REDIS_PIDS[@]}"; do stop_pid "$pid" 5; done
	REDIS_PIDS=()
}

cluster_cleanup() {
	stop_cluster
	cleanup
}
trap cluster_cleanup EXIT
trap 'exit 130' INT TERM

case $API_NODES in first | all) ;; *) echo "API_NODES must be first or all" >&2; exit 2 ;; esac
case $TOPOLOGY in single | cluster) ;; *) echo "TOPOLOGY must be single or cluster" >&2; exit 2 ;; esac
case $MODE in load | join) ;; *) echo "MODE must be load or join" >&2; exit 2 ;; esac
((NODES >= 1 && NODES <= 40)) || { echo "NODES must be in 1..40" >&2; exit 2; }
per_node=$(((CONNS + NODES - 1) / NODES))
((per_node <= 19000)) || { echo "$per_node sockets per node: more than a node's 20,000 descriptors allow; add NODES" >&2; exit 2; }

DATE=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT_DIR=${OUT_DIR:-$ROOT/perf/results}
SUFFIX=cluster
[[ $TOPOLOGY == cluster ]] && SUFFIX=rediscluster
[[ $MODE == join ]] && SUFFIX=join
RUN_DIR=$OUT_DIR/$DATE-$SUFFIX
OUT=$OUT_DIR/$DATE-$SUFFIX.md
mkdir -p "$RUN_DIR"

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build_tools

# start_redis PORT [ARGS...] starts a redis-server on PORT and waits until
# it answers.
REDIS_BASE=(redis-server --bind 127.0.0.1 --save "" --appendonly no --protected-mode yes)
REDIS_PORTS=()
start_redis() {
	local port=$1 pid
	shift
	"${REDIS_BASE[@]}" --port "$port" "$@" >"$RUN_DIR/redis-$port.log" 2>&1 &
	pid=$!
	REDIS_PIDS+=("$pid") REDIS_PORTS+=("$port")
	for _ in $(seq 50); do
		redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$RUN_DIR/redis-$port.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "redis-server on $port did not answer" >&2
	exit 1
}

# next_port P [PLUS] prints the first port from P that is free, with
# P+PLUS free too when PLUS is given (a Cluster node's bus port).
next_port() {
	local p=$1 plus=${2:-0}
	while ! port_free "$p" || { ((plus)) && ! port_free $((p + plus)); }; do p=$((p + 1)); done
	echo "$p"
}

# start_topology starts the Redis of TOPOLOGY and sets REDIS_URL and
# REDIS_DESC.
start_topology() {
	if [[ $TOPOLOGY == single ]]; then
		REDIS_PORT=$(next_port "$REDIS_PORT")
		start_redis "$REDIS_PORT" "$@"
		REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
		REDIS_DESC="one redis-server: \`$(printf "%q " "${REDIS_BASE[@]}" --port "$REDIS_PORT" "$@" | sed "s/ $//")\`"
		return
	fi
	local p=$REDIS_PORT addrs=() n=$((MASTERS * (1 + REPLICAS)))
	for _ in $(seq "$n"); do
		p=$(next_port "$p" 10000)
		start_redis "$p" --cluster-enabled yes --cluster-config-file "$RUN_DIR/nodes-$p.conf" --cluster-node-timeout 5000 \
			--repl-diskless-sync-delay 0 "$@"
		addrs+=("127.0.0.1:$p")
		p=$((p + 1))
	done
	redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >"$RUN_DIR/cluster-create.log" 2>&1 ||
		{ cat "$RUN_DIR/cluster-create.log" >&2; exit 1; }
	for port in "${REDIS_PORTS[@]}"; do
		for _ in $(seq 100); do
			redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' && break
			sleep 0.1
		done
		redis-cli -p "$port" cluster info | grep -q '^cluster_state:ok' || { echo "the Redis Cluster is not ok on $port" >&2; exit 1; }
	done
	REDIS_URL="redis://${addrs[0]}?addr=${addrs[1]}&addr=${addrs[2]}"
	REDIS_DESC="a Redis Cluster of $MASTERS primaries ($REPLICAS replicas each), \`redis-cli --cluster create\` over \`$(printf "%q " "${REDIS_BASE[@]}" --port P --cluster-enabled yes --cluster-node-timeout 5000 "$@" | sed "s/ $//")\` on ports ${REDIS_PORTS[*]}"
}

# start_node I [ARGS...] starts node I on its ports, meeting at REDIS_URL.
WS=() APIS=()
start_node() {
	local i=$1 ws=$((BASE_PORT + 2 * $1)) api=$((BASE_PORT + 2 * $1 + 1))
	shift
	(ulimit -n 20000 && exec "$BIN/revurb" start --host 127.0.0.1 --port "$ws" --api-port "$api" \
		--redis "$REDIS_URL" --redis-prefix "$PREFIX" "$@") >"$RUN_DIR/node-$i.log" 2>&1 &
	NODE_PIDS+=($!)
	WS+=("127.0.0.1:$ws") APIS+=("127.0.0.1:$api")
}

# wait_joined I [SECONDS] waits until node I says it has joined the
# cluster (every app's members loaded), 60 s at most.
wait_joined() {
	local i=$1 limit=${2:-600}
	for _ in $(seq "$limit"); do
		grep -q 'joined the cluster' "$RUN_DIR/node-$i.log" && return 0
		kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "node $i did not join:" >&2
	tail -20 "$RUN_DIR/node-$i.log" >&2
	exit 1
}

for i in $(seq 0 $((NODES - 1))); do
	for p in $((BASE_PORT + 2 * i)) $((BASE_PORT + 2 * i + 1)); do
		port_free "$p" || { echo "port $p is in use; set BASE_PORT" >&2; exit 1; }
	done
done

if [[ $MODE == join ]]; then
	TOPOLOGY=single
	start_topology --enable-debug-command local
	redis-cli -p "$REDIS_PORT" debug populate "$JOIN_KEYS" other >/dev/null
	CONFIG=$RUN_DIR/apps.yaml
	{
		echo "apps:"
		for a in $(seq 0 $((JOIN_APPS - 1))); do echo "  - {id: app-$a, key: key-$a, secret: secret-$a}"; done
	} >"$CONFIG"
	keys=$(redis-cli -p "$REDIS_PORT" dbsize)
	rows=()
	for i in 0 1; do
		redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
		start=$(date +%s%N)
		start_node "$i" --config "$CONFIG"
		wait_joined "$i"
		wall=$((($(date +%s%N) - start) / 1000000))
		took=$(grep -o 'took=[^ ]*' "$RUN_DIR/node-$i.log" | head -1 | cut -d= -f2)
		stats=$(redis-cli -p "$REDIS_PORT" info commandstats | tr -d '\r')
		calls=$(awk -F'[=,:]' '/^cmdstat_/ {s += $3} END {print s}' <<<"$stats")
		scans=$(awk -F'[=,:]' '/^cmdstat_(scan|keys):/ {s += $3} END {print s + 0}' <<<"$stats")
		top=$(awk -F'[_=,:]' '/^cmdstat_/ {print $4, $2}' <<<"$stats" | sort -rn | head -6 | awk '{printf "%s%s %s", sep, $2, $1; sep = ", "}')
		cpu=$(redis-cli -p "$REDIS_PORT" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.2f", s}')
		rows+=("| $((i + 1)) | $([[ $i == 0 ]] && echo "an empty cluster" || echo "node 1 in it") | $took | $wall ms | $calls ($top) | $scans |")
		echo "node $i joined in $took (wall $wall ms), $calls commands, $scans scans; Redis CPU so far ${cpu}s" >&2
	done
	RUN_REDIS_PIDS=("${REDIS_PIDS[@]}")
	stop_cluster
	COMMIT=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
	{
		echo "# revurb: a node's join time, $JOIN_APPS apps, on a Redis with $keys keys — $DATE"
		echo
		echo "Made by \`MODE=join JOIN_APPS=$JOIN_APPS JOIN_KEYS=$JOIN_KEYS perf/cluster.sh\` at $COMMIT on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(redis-server --version | cut -d' ' -f1-3)."
		echo
		echo "Redis: $REDIS_DESC, then \`DEBUG POPULATE $JOIN_KEYS other\` (keys of other software). Each node: \`revurb start --config apps.yaml --redis $REDIS_URL --redis-prefix $PREFIX\` with $JOIN_APPS apps; the second starts once the first has joined. Join time is the node's own (\`took=\` on its \"joined the cluster\" line: from the broker's start to every app subscribed and its members loaded), and from launching the process to that line. Commands are Redis's \`INFO commandstats\` over the join (reset before each node), the heartbeats included."
		echo
		echo "| node | joins | join time | launch to joined | commands to Redis (most called) | SCAN and KEYS |"
		echo "|---|---|---|---|---|---|"
		printf '%s\n' "${rows[@]}"
	} >"$OUT"
	strip_histograms "$RUN_DIR"
	echo "results: $OUT" >&2
	exit 0
fi

start_topology
# The nodes; each says when it has joined (every app's bus subscribed and
# its members loaded) — before the first trigger.
for i in $(seq 0 $((NODES - 1))); do
	start_node "$i"
done
for i in "${!NODE_PIDS[@]}"; do
	wait_joined "$i"
done
echo "redis pids ${REDIS_PIDS[*]} on ${REDIS_PORTS[*]}; $NODES nodes: pids ${NODE_PIDS[*]}, WebSockets ${WS[*]}" >&2

commas() { local IFS=,; echo "$*"; }
api=${APIS[0]}
[[ $API_NODES == all ]] && api=$(commas "${APIS[@]}")
ARGS=(-mode fanout -conns "$CONNS" -procs "$PROCS" -ws "$(commas "${WS[@]}")" -api "$api"
	-pid "$(commas "${NODE_PIDS[@]}")" -redis-pid "$(commas "${REDIS_PIDS[@]:0:MASTERS}")"
	-channel "$CHANNEL" -events "$EVENTS" -publishers "$PUBLISHERS" -size "$SIZE"
	-source-first "$SOURCE_FIRST" -concurrency "$CONCURRENCY" -drain "$DRAIN" -duration "$DURATION")
if ((CLOSED)); then ARGS+=(-closed); else ARGS+=(-rate "$RATE"); fi
((SOURCES > 0)) && ARGS+=(-sources "$SOURCES")

per_proc=$(((CONNS + PROCS - 1) / PROCS))
src_per_proc=$SOURCES
((src_per_proc > 0)) || src_per_proc=$(((per_proc + 9999) / 10000))
per_addr=$(((per_proc + src_per_proc - 1) / src_per_proc))
idle=$(QUIET_WAIT=$QUIET_WAIT QUIET_IDLE=$QUIET_IDLE wait_quiet)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
MEM_BEFORE=$(awk '/MemAvailable/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
echo "== machine ${idle}% idle, load average $LOAD_BEFORE: loadgen ${ARGS[*]}" >&2
# The kernel's TCP counters that tell a refused or dropped connection
# (accept queue overflows, SYN queue drops, resets, retransmissions),
# before and after the run; the machine is shared, so other work counts in.
TCP_COUNTERS=(TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop TcpExtSyncookiesSent TcpAttemptFails TcpEstabResets TcpRetransSegs TcpExtTCPAbortOnMemory TcpExtTCPMemoryPressures)
tcp_counters() { nstat -asz "${TCP_COUNTERS[@]}" 2>/dev/null | awk '!/^#/ {print $1, $2}'; }
TCP_BEFORE=$(tcp_counters || true)
rc=0
timeout -k 10 "$TIMEOUT" "$BIN/loadgen" "${ARGS[@]}" -json-file "$RUN_DIR/report.json" \
	>"$RUN_DIR/report.txt" 2> >(tee "$RUN_DIR/loadgen.stderr" >&2) || rc=$?
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
TCP_AFTER=$(tcp_counters || true)
TCP_DELTA=$(join -a 2 <(sort <<<"$TCP_BEFORE") <(sort <<<"$TCP_AFTER") | awk 'NF == 3 {printf "%s%s +%d", sep, $1, $3 - $2; sep = ", "} NF == 2 {printf "%s%s %d", sep, $1, $2; sep = ", "}')
cat "$RUN_DIR/report.txt" >&2

alive=()
for i in "${!NODE_PIDS[@]}"; do
	if kill -0 "${NODE_PIDS[$i]}" 2>/dev/null; then alive+=(yes); else alive+=(no); fi
done
redis_alive=yes
for pid in "${REDIS_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || redis_alive=no; done
REDIS_INFO=
for port in "${REDIS_PORTS[@]:0:MASTERS}"; do
	REDIS_INFO+="$port: $( (redis-cli -p "$port" info stats; redis-cli -p "$port" info clients) 2>/dev/null | tr -d '\r' |
		grep -E '^(total_commands_processed|pubsub_channels|pubsubshard_channels|total_net_input_bytes|total_net_output_bytes|connected_clients):' | paste -sd' ' || true); "
done
RUN_PIDS=("${NODE_PIDS[@]}")
RUN_REDIS_PIDS=("${REDIS_PIDS[@]}")
stop_cluster
# What the nodes logged beyond their start lines (and the drain at stop).
for i in $(seq 0 $((NODES - 1))); do
	grep -v -E ' connections: at most | cluster: node | listening: |^  app id=|terminated: draining|stopped|joined the cluster' "$RUN_DIR/node-$i.log" >"$RUN_DIR/node-$i.extra" || true
done

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
COMMIT=$(git describe --tags --always --dirty 2>/dev/null || echo unknown)
BRANCH=$(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
knobs="TOPOLOGY=$TOPOLOGY NODES=$NODES CONNS=$CONNS PROCS=$PROCS EVENTS=$EVENTS RATE=$RATE CLOSED=$CLOSED PUBLISHERS=$PUBLISHERS API_NODES=$API_NODES SIZE=$SIZE DRAIN=$DRAIN DURATION=$DURATION"
J=$RUN_DIR/report.json
[[ -s $J ]] || echo '{}' >"$J"
ms() { jq -r "$1 // 0 | . * 1000 | round / 1000" "$J"; }
mib() { jq -r "($1 // 0) / 1048576 | . * 10 | round / 10" "$J"; }

{
	echo "# revurb cluster at scale: $NODES nodes, $CONNS sockets, one channel, $([[ $TOPOLOGY == cluster ]] && echo "a Redis Cluster of $MASTERS primaries" || echo "one Redis") — $DATE"
	echo
	echo "Made by \`$knobs perf/cluster.sh\` (perf/cluster.sh; the knobs are at its top)."
	echo
	echo "| | |"
	echo "|---|---|"
	echo "| date | $(date -u '+%Y-%m-%d %H:%M:%S UTC') |"
	echo "| commit | $COMMIT (branch $BRANCH) |"
	echo "| machine | $(nproc) CPUs ($CPU), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM ($MEM_BEFORE available before), $(uname -sr) |"
	echo "| go | $(go version) |"
	echo "| redis | $(redis-server --version) |"
	echo "| machine before | ${idle}% idle over 1 s, load average $LOAD_BEFORE (after: $LOAD_AFTER) |"
	echo "| loadgen exit | $rc |"
	echo
	echo "## How"
	echo
	echo "- Redis: $REDIS_DESC (pids ${RUN_REDIS_PIDS[*]}; Redis CPU below is the primaries')."
	echo "- $NODES nodes, each \`revurb start --host 127.0.0.1 --port WS --api-port API --redis $REDIS_URL --redis-prefix $PREFIX\` with \`ulimit -n 20000\`, built from this tree; node i on WS $BASE_PORT+2i, API $BASE_PORT+2i+1; each said it had joined the cluster (its app's bus subscribed, members loaded) before the load."
	echo "- The load, on the same machine (its CPU is in the figures):"
	echo
	echo '```'
	echo "loadgen ${ARGS[*]} -json-file $(basename "$RUN_DIR")/report.json"
	echo '```'
	echo
	echo "  Socket g of the run goes to node g mod $NODES ($per_node at most per node); $PROCS loadgen process(es) hold at most $per_proc sockets each from $src_per_proc source addresses of their own ($(jq -r '.source_addrs // "?"' "$J") in all from $(jq -r '.source_first // "?"' "$J")): at most $per_addr sockets per source address, spread over the $NODES ports. Triggers: \`POST /apps/app-id/events\` on $api; each event goes through Redis pub/sub to every node, the triggering node included."
	echo
	echo "## Figures"
	echo
	echo "| figure | value |"
	echo "|---|---|"
	jq -r '"| connections held | \(.connected) established, \(.subscribed) subscribed of \(.conns) requested, on \(.targets // [] | length) nodes |"' "$J"
	jq -r '"| connect rate | \(.connects_per_sec | round) conn/s (\(.connect_sec * 100 | round / 100) s from first dial to the last connection_established) |"' "$J"
	jq -r '"| events | \(.published) of \(.events) triggers answered 200 (\(.publish_status // {} | to_entries | map("\(.value) × \(.key)") | join(", "))), \(.event_size) bytes of data, \(if .closed then "closed loop" else "open loop at \(.rate)/s" end), \(.publishers) publisher(s) |"' "$J"
	jq -r '"| delivered | \(.delivered) of \(.expected) expected; lost \(.lost), duplicates \(.duplicates), reordered \(.out_of_order), unexpected \(.unexpected) |"' "$J"
	jq -r '"| sockets exact | \(.sockets_exact // 0) of \(.subscribed) sockets got every event once and in order |"' "$J"
	echo "| deliveries/s | $(jq -r '.msgs_per_sec | round' "$J") over $(ms .delivery_sec) s (first trigger → last delivery) |"
	echo "| delivery latency | p50 $(ms .latency.p50_ms) ms, p90 $(ms .latency.p90_ms) ms, p99 $(ms .latency.p99_ms) ms, max $(ms .latency.max_ms) ms |"
	echo "| API trigger latency | p50 $(ms .publish_latency.p50_ms) ms, p99 $(ms .publish_latency.p99_ms) ms, max $(ms .publish_latency.max_ms) ms |"
	jq -r '"| server CPU (sum over nodes) | \(.server_cpu_load_sec * 100 | round / 100) s during the load, \(.server_cpu_per_delivery_us // 0 | . * 100 | round / 100) µs per delivery (\(.server_cpu_sec * 100 | round / 100) s over the whole run, ramp included) |"' "$J"
	jq -r '"| server write syscalls | \(.server_syscw_per_delivery // 0 | . * 1000 | round / 1000) syscw per delivery |"' "$J"
	echo "| server RSS (sum) | $(mib .server_rss_before) MiB before, $(mib .server_rss_connected) MiB with the sockets in, $(mib .server_rss_peak) MiB peak during the load; $(jq -r '.server_bytes_per_conn // 0 | round' "$J") bytes per connection |"
	jq -r '"| Redis | \(.redis_cpu_load_sec // 0 | . * 100 | round / 100) CPU-s during the load (\(.redis_cpu_per_event_us // 0 | round) µs per event published, heartbeats of the nodes included; /proc counts in 10 ms ticks), \(.redis_cpu_sec // 0 | . * 100 | round / 100) CPU-s over the whole run, ramp included; RSS \((.redis_rss_end // 0) / 1048576 | . * 10 | round / 10) MiB at the end |"' "$J"
	echo "| Redis stats at the end | ${REDIS_INFO:-?} |"
	echo "| loadgen | $(mib .loadgen_rss_peak) MiB peak RSS (sum of its processes), $(jq -r '.loadgen_cpu_load_sec // 0 | . * 100 | round / 100' "$J") CPU-s during the load |"
	jq -r '"| machine CPU during the load | \(.machine_cpu_load_sec // 0 | . * 100 | round / 100) s busy, \(.other_cpu_load_sec // 0 | . * 100 | round / 100) s of it other work (neither the nodes, Redis nor loadgen) |"' "$J"
	echo "| Redis alive at the end | $redis_alive |"
	echo "| kernel TCP counters over the run (whole machine; loadgen closes its sockets with RST, so EstabResets is about twice the sockets) | ${TCP_DELTA:-?} |"
	echo
	echo "Per node (sockets and deliveries as loadgen saw them through that node; RSS and CPU from /proc):"
	echo
	echo "| node | WebSocket | pid | alive at the end | sockets (established / subscribed) | delivered of expected, lost | sockets exact | latency p50 / p99 / max (ms) | RSS before / connected / peak / end (MiB) | CPU-s during the load | log lines beyond start and stop |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|"
	for i in $(seq 0 $((NODES - 1))); do
		jq -r --argjson i "$i" --arg alive "${alive[$i]}" --arg pid "${RUN_PIDS[$i]}" --arg extra "$(wc -l <"$RUN_DIR/node-$i.extra")" '
			def m: . / 1048576 | . * 10 | round / 10;
			def r: . * 1000 | round / 1000;
			(.targets // [])[$i] as $t | (.servers // [])[$i] as $s |
			"| \($i) | \($t.addr // "?") | \($s.pid // $pid) | \($alive) | \($t.conns // 0) (\($t.connected // 0) / \($t.subscribed // 0)) | \($t.delivered // 0) of \($t.expected // 0), \($t.lost // 0) | \($t.sockets_exact // 0) | \($t.latency.p50_ms // 0 | r) / \($t.latency.p99_ms // 0 | r) / \($t.latency.max_ms // 0 | r) | \($s.rss_before // 0 | m) / \($s.rss_connected // 0 | m) / \($s.rss_peak // 0 | m) / \($s.rss_end // 0 | m) | \($s.cpu_load_sec // 0 | . * 100 | round / 100) | \($extra) |"' "$J"
	done
	echo
	echo "## What the nodes logged"
	echo
	echo "Beyond the start lines and the drain at the end (full logs in \`$(basename "$RUN_DIR")/node-*.log\`):"
	echo
	any=0
	for i in $(seq 0 $((NODES - 1))); do
		if [[ -s $RUN_DIR/node-$i.extra ]]; then
			any=1
			echo "node $i ($(wc -l <"$RUN_DIR/node-$i.extra") lines; distinct messages, timestamps and numbers stripped, with counts):"
			echo
			echo '```'
			sed -E 's/^revurb: [0-9\/]+ [0-9:.]+ //; s/[0-9]+/N/g' "$RUN_DIR/node-$i.extra" | sort | uniq -c | sort -rn | head -20
			echo '```'
			echo
		fi
	done
	((any)) || echo "nothing."
	echo
	echo "## loadgen's report"
	echo
	echo '```'
	cat "$RUN_DIR/report.txt"
	echo '```'
	if grep -qv '^loadgen: ' "$RUN_DIR/loadgen.stderr" 2>/dev/null; then
		echo
		echo "loadgen's stderr beyond its progress lines:"
		echo
		echo '```'
		grep -v '^loadgen: ' "$RUN_DIR/loadgen.stderr" | head -40
		echo '```'
	fi
} >"$OUT"
rm -f "$RUN_DIR"/node-*.extra
strip_histograms "$RUN_DIR"
echo "results: $OUT" >&2
exit "$rc"
