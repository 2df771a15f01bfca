# perf/lib.sh — shared by perf/run.sh and perf/profile.sh (source it; it is
# not a command): the standard scenarios, building revurb and loadgen,
# starting and stopping one server at a time, and waiting for a quiet
# machine.
#
# The caller sets ROOT (the repository) and BIN (a scratch directory), and
# calls cleanup from its EXIT trap.

REVURB_PORT=${REVURB_PORT:-28080}
REVURB_API_PORT=${REVURB_API_PORT:-28081}
SOKETI_PORT=${SOKETI_PORT:-26001}
SOKETI_DIR=${SOKETI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pusher-peers/soketi}
PEERS=${PEERS:-/work/shared/peers}
# Soketi's start script turns user authentication on, and Soketi then
# closes every socket that has not signed in within 30 s (4009).
export SOKETI_DEFAULT_APP_USER_AUTHENTICATION=false

SERVER_PID=
SERVER_NAME=

# The standard scenarios, in the order they run. Each has its loadgen
# arguments (without -ws, -api and -pid) and the figures it is about
# (metric names of perf/compare). -source-first differs per scenario, so no
# run reuses another's source ports.
SCENARIOS=(idle-5k idle-10k idle-19.5k fanout-10k-closed fanout-10k-closed-syscalls fanout-1k-10ch-8pub flood-2k-8ch client-events-1k
	open-10k-1ch-5ev open-1k-10ch-600ev)

# The latency–throughput curve: open-loop fan-out to 1k subscribers over 10
# channels (the fanout-1k-10ch-8pub load) at CURVE_PCTS percent of
# CURVE_CAPACITY deliveries/s, Soketi's closed-loop capacity in that
# scenario (71,885/s in BENCHMARKS.md's standard run; set it from a fresh
# fanout-1k-10ch-8pub). Each point offers its rate for CURVE_SECONDS.
CURVE_CAPACITY=${CURVE_CAPACITY:-72000}
CURVE_PCTS=(${CURVE_PCTS:-25 50 75 100 125 150 200 250})
CURVE_SECONDS=${CURVE_SECONDS:-12}
for pct in "${CURVE_PCTS[@]}"; do
	SCENARIOS+=("curve-1k-10ch-$pct")
done

# scenario_args NAME prints NAME's loadgen arguments, one a line.
scenario_args() {
	case $1 in
	idle-5k) printf '%s\n' -mode idle -conns 5000 -settle 20s -samples 5 -source-first 2 -duration 120s ;;
	idle-10k) printf '%s\n' -mode idle -conns 10000 -procs 2 -settle 20s -samples 5 -source-first 10 -duration 120s ;;
	idle-19.5k) printf '%s\n' -mode idle -conns 19500 -procs 2 -settle 20s -samples 5 -source-first 20 -duration 150s ;;
	fanout-10k-closed)
		printf '%s\n' -mode fanout -conns 10000 -procs 2 -closed -publishers 1 -events 100 -size 64 \
			-source-first 30 -drain 60s -duration 150s ;;
	# The same load again with the server's system calls counted by perf
	# stat, which slows a server down: its throughput is not the figure.
	fanout-10k-closed-syscalls)
		printf '%s\n' -mode fanout -conns 10000 -procs 2 -closed -publishers 1 -events 100 -size 64 \
			-source-first 70 -drain 60s -duration 150s -syscalls ;;
	fanout-1k-10ch-8pub)
		printf '%s\n' -mode fanout -conns 1000 -channels 10 -closed -publishers 8 -events 6000 -size 64 \
			-source-first 40 -drain 60s -duration 150s ;;
	flood-2k-8ch)
		printf '%s\n' -mode fanout -conns 2000 -channels 8 -closed -publishers 8 -events 5000 -size 1024 \
			-source-first 50 -drain 60s -duration 150s ;;
	client-events-1k) printf '%s\n' -mode client-events -conns 2000 -events 50 -rate 5 -source-first 60 -duration 90s ;;
	# Open loop at a moderate rate (issue 16): the tail where the box is
	# not saturated. 50k deliveries/s for 20 s.
	open-10k-1ch-5ev)
		printf '%s\n' -mode fanout -conns 10000 -procs 2 -publishers 1 -events 100 -rate 5 -size 64 \
			-source-first 80 -drain 30s -duration 90s ;;
	# 60k deliveries/s for 20 s, eight publishers with one trigger in
	# flight each.
	open-1k-10ch-600ev)
		printf '%s\n' -mode fanout -conns 1000 -channels 10 -publishers 8 -events 12000 -rate 600 -size 64 \
			-source-first 90 -drain 30s -duration 90s ;;
	curve-1k-10ch-*)
		local pct=${1#curve-1k-10ch-}
		[[ $pct =~ ^[0-9]+$ ]] || return 1
		# 100 subscribers a channel: events/s = deliveries/s / 100.
		local rate=$((CURVE_CAPACITY * pct / 10000))
		printf '%s\n' -mode fanout -conns 1000 -channels 10 -publishers 16 -events $((rate * CURVE_SECONDS)) -rate "$rate" \
			-size 64 -source-first $((100 + pct % 97)) -drain 20s -duration 60s ;;
	*) return 1 ;;
	esac
}

# scenario_metrics NAME prints the figures NAME is about, comma-separated.
scenario_metrics() {
	case $1 in
	idle-*) echo bytes_idle,bytes_ramp,bytes_settled ;;
	fanout-10k-closed) echo msgs_per_sec,latency_p99,cpu_per_deliv,syscw_per_deliv,exact ;;
	fanout-10k-closed-syscalls) echo writes_per_deliv,syscalls_per_deliv,syscw_per_deliv ;;
	fanout-1k-10ch-8pub) echo msgs_per_sec,latency_p99,exact ;;
	flood-2k-8ch) echo exact,latency_p99,rss_growth,trigger_status,msgs_per_sec ;;
	client-events-1k) echo latency_p99,exact ;;
	open-* | curve-*) echo latency_p50,latency_p99,api_p99,cpu_per_deliv,msgs_per_sec,exact ;;
	esac
}

# build_tools builds revurb (with its version) and loadgen into BIN;
# REVURB_BIN=FILE takes that revurb binary instead of building one (an A/B
# of two builds: perf/README.md).
build_tools() {
	local version
	version=$(git -C "$ROOT" describe --tags --always --dirty 2>/dev/null || echo dev)
	if [[ -n ${REVURB_BIN:-} ]]; then
		echo "revurb: $REVURB_BIN ($("$REVURB_BIN" version)); building loadgen into $BIN" >&2
		cp "$REVURB_BIN" "$BIN/revurb"
		(cd "$ROOT" && go build -o "$BIN/loadgen" ./perf/loadgen)
		return
	fi
	echo "building revurb ($version) and loadgen into $BIN" >&2
	(cd "$ROOT" && go build -ldflags "-X main.version=$version" -o "$BIN/revurb" ./cmd/revurb &&
		go build -o "$BIN/loadgen" ./perf/loadgen)
}

# port_free PORT succeeds when nothing accepts on 127.0.0.1:PORT.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_revurb LOG [ARGS...] starts a fresh revurb (ulimit -n 20000) and
# waits until both ports accept.
start_revurb() {
	local log=$1
	shift
	stop_server
	local p
	for p in "$REVURB_PORT" "$REVURB_API_PORT"; do
		port_free "$p" || { echo "port $p is in use; set REVURB_PORT/REVURB_API_PORT" >&2; return 1; }
	done
	(ulimit -n 20000 && exec "$BIN/revurb" start --host 127.0.0.1 --port "$REVURB_PORT" --api-port "$REVURB_API_PORT" "$@") \
		>"$log" 2>&1 &
	SERVER_PID=$! SERVER_NAME=revurb
	for _ in $(seq 100); do
		if ! port_free "$REVURB_PORT" && ! port_free "$REVURB_API_PORT"; then
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "revurb did not start:" >&2
	cat "$log" >&2
	return 1
}

# start_soketi LOG starts a fresh Soketi through the peers' script (the only
# way it may be started: it pins node discovery to loopback), with
# ulimit -n 20000; the script prints the PID on its last line once ready.
start_soketi() {
	local log=$1
	stop_server
	port_free "$SOKETI_PORT" || { echo "port $SOKETI_PORT is in use; set SOKETI_PORT" >&2; return 1; }
	local out
	out=$( (ulimit -n 20000 && SOKETI_DIR=$SOKETI_DIR SOKETI_LOG=$log "$PEERS/soketi-start.sh" "$SOKETI_PORT") 2>>"$log.start") ||
		{ echo "soketi did not start:" >&2; cat "$log.start" >&2; return 1; }
	SERVER_PID=$(tail -1 <<<"$out") SERVER_NAME=soketi
	[[ $SERVER_PID =~ ^[0-9]+$ ]] || { echo "soketi-start.sh printed no PID: $out" >&2; SERVER_PID=; return 1; }
}

# soketi_ready installs Soketi when it is missing (npm registry only).
soketi_ready() {
	[[ -f $SOKETI_DIR/node_modules/@soketi/soketi/package.json ]] ||
		SOKETI_DIR=$SOKETI_DIR "$PEERS/soketi-setup.sh" >&2
}

soketi_version() {
	node -p "require('$SOKETI_DIR/node_modules/@soketi/soketi/package.json').version" 2>/dev/null || echo unknown
}

# server_args prints loadgen's -ws and -api for the running server.
server_args() {
	case $SERVER_NAME in
	revurb) printf '%s\n' -ws "127.0.0.1:$REVURB_PORT" -api "127.0.0.1:$REVURB_API_PORT" ;;
	soketi) printf '%s\n' -ws "127.0.0.1:$SOKETI_PORT" -api "127.0.0.1:$SOKETI_PORT" ;;
	esac
}

# stop_server stops the running server (TERM, then KILL after 5 s).
stop_server() {
	if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$SERVER_PID" 2>/dev/null || true
	fi
	SERVER_PID= SERVER_NAME=
}

# cpu_idle prints the machine's idle CPU percentage over one second.
cpu_idle() {
	local a b
	read -ra a < <(grep '^cpu ' /proc/stat)
	sleep 1
	read -ra b < <(grep '^cpu ' /proc/stat)
	local total=0 i
	for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
	local idle=$((b[4] - a[4] + b[5] - a[5]))
	echo $((total > 0 ? 100 * idle / total : 0))
}

# wait_quiet waits (up to QUIET_WAIT seconds, 60 by default) until the
# machine is at least QUIET_IDLE % idle (90 by default): the load runs
# share two cores with whatever else runs here. It prints the last idle
# figure.
wait_quiet() {
	local until=$((SECONDS + ${QUIET_WAIT:-60})) idle
	while :; do
		idle=$(cpu_idle)
		((idle >= ${QUIET_IDLE:-90} || SECONDS >= until)) && break
		echo "machine only ${idle}% idle; waiting" >&2
		sleep 4
	done
	echo "$idle"
}

cleanup() {
	stop_server
	[[ -n ${BIN:-} && -d $BIN ]] && rm -rf "$BIN"
	return 0
}
