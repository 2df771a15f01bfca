#!/usr/bin/env bash
# perf/profile.sh — build revurb, start it with --pprof, run the standard
# fan-out load (fanout-10k-closed of perf/lib.sh) and capture the server's
# profiles into perf/profiles/: cpu.pprof (over the load), heap.pprof and
# allocs.pprof (right after it, sockets still open), a `go tool pprof -top`
# summary of each beside it (*.top.txt), the load report (load.txt) and the
# binary the profiles belong to (revurb, for -list and -disasm).
#
#   perf/profile.sh
#   SCENARIO=flood-2k-8ch PROFILE_SECONDS=20 perf/profile.sh
#
# Env: SCENARIO (fanout-10k-closed), PPROF_PORT (28082), PROFILE_SECONDS
# (15: the CPU profile starts with the load; make it cover it), PROFILE_DIR
# (perf/profiles), REVURB_PORT, REVURB_API_PORT, SCENARIO_TIMEOUT (240).
# Bounded like perf/run.sh: timeout around loadgen, the trap stops the
# server.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$(mktemp -d /tmp/revurb-profile.XXXXXX)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

SCENARIO=${SCENARIO:-fanout-10k-closed}
PPROF_PORT=${PPROF_PORT:-28082}
PROFILE_SECONDS=${PROFILE_SECONDS:-15}
PROFILE_DIR=${PROFILE_DIR:-$ROOT/perf/profiles}
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-240}
args=()
mapfile -t args < <(scenario_args "$SCENARIO") || true
((${#args[@]} > 0)) || { echo "unknown scenario $SCENARIO; known: ${SCENARIOS[*]}" >&2; exit 2; }

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build_tools
mkdir -p "$PROFILE_DIR"
rm -f "$PROFILE_DIR"/{cpu,heap,allocs}.pprof "$PROFILE_DIR"/*.top.txt
port_free "$PPROF_PORT" || { echo "port $PPROF_PORT is in use; set PPROF_PORT" >&2; exit 1; }

idle=$(wait_quiet)
start_revurb "$BIN/server.log" --pprof "127.0.0.1:$PPROF_PORT"
srv=()
mapfile -t srv < <(server_args)
echo "== $SCENARIO on revurb (pid $SERVER_PID, CPU ${idle}% idle), profiles from 127.0.0.1:$PPROF_PORT" >&2
rc=0
timeout -k 10 "$SCENARIO_TIMEOUT" "$BIN/loadgen" "${srv[@]}" -pid "$SERVER_PID" "${args[@]}" \
	-pprof "127.0.0.1:$PPROF_PORT" -profile-dir "$PROFILE_DIR" -profile-seconds "$PROFILE_SECONDS" \
	-quiet >"$PROFILE_DIR/load.txt" 2>&1 || rc=$?
cat "$PROFILE_DIR/load.txt" >&2
stop_server
cp "$BIN/revurb" "$PROFILE_DIR/revurb"

{
	echo "commit: $(git describe --tags --always --dirty 2>/dev/null || echo unknown)"
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), CPU ${idle}% idle before the run"
	echo "server: revurb start --host 127.0.0.1 --port $REVURB_PORT --api-port $REVURB_API_PORT --pprof 127.0.0.1:$PPROF_PORT"
	echo "load: go run ./perf/loadgen ${srv[*]} -pid \$(pgrep -n revurb) ${args[*]} -pprof 127.0.0.1:$PPROF_PORT -profile-dir ${PROFILE_DIR#"$ROOT/"} -profile-seconds $PROFILE_SECONDS"
	echo "loadgen exit status: $rc"
} >"$PROFILE_DIR/info.txt"

# A summary per profile: cpu by CPU time, heap by live bytes after a GC,
# allocs by bytes allocated since the start.
declare -A index=([cpu]=cpu [heap]=inuse_space [allocs]=alloc_space)
for p in cpu heap allocs; do
	if [[ -s $PROFILE_DIR/$p.pprof ]]; then
		go tool pprof -top -nodecount=40 -sample_index="${index[$p]}" "$PROFILE_DIR/revurb" "$PROFILE_DIR/$p.pprof" \
			>"$PROFILE_DIR/$p.top.txt" 2>&1 || echo "go tool pprof failed on $p.pprof" >&2
	else
		echo "no $p profile" >&2
	fi
done
echo "profiles: $PROFILE_DIR (info.txt, load.txt, cpu/heap/allocs .pprof and .top.txt)" >&2
exit "$rc"
