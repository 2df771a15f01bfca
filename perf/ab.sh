#!/usr/bin/env bash
# perf/ab.sh — A/B two builds of revurb in one sitting: build revurb at two
# git revisions (one loadgen, built from this tree, drives both), then run
# the given standard scenarios (perf/lib.sh) ROUNDS times, alternating the
# builds run by run (A, B, B, A, A, B, ...) so that drift on a shared
# machine falls on both, each run against a fresh server process. Writes
# perf/results/<date>-ab.md: one line per run with its figures, and each
# build's median.
#
#   perf/ab.sh REV_A REV_B [SCENARIO...]   # default: fanout-10k-closed fanout-1k-10ch-8pub client-events-1k
#
# Env: ROUNDS (3), REVURB_PORT/REVURB_API_PORT, SCENARIO_TIMEOUT (240 s a
# run), QUIET_WAIT/QUIET_IDLE (see perf/lib.sh), OUT_DIR (perf/results).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=$(mktemp -d /tmp/revurb-ab.XXXXXX)
# shellcheck source=perf/lib.sh
source "$ROOT/perf/lib.sh"
trap 'cleanup; git -C "$ROOT" worktree prune' EXIT
trap 'exit 130' INT TERM

(($# >= 2)) || { echo "usage: perf/ab.sh REV_A REV_B [SCENARIO...]" >&2; exit 2; }
REVS=("$(git rev-parse --short "$1")" "$(git rev-parse --short "$2")")
shift 2
RUN=("$@")
((${#RUN[@]} > 0)) || RUN=(fanout-10k-closed fanout-1k-10ch-8pub client-events-1k)
for s in "${RUN[@]}"; do
	scenario_args "$s" >/dev/null || { echo "unknown scenario $s; known: ${SCENARIOS[*]}" >&2; exit 2; }
done
ROUNDS=${ROUNDS:-3}
SCENARIO_TIMEOUT=${SCENARIO_TIMEOUT:-240}

# Each revision is built from a detached worktree of its own.
for rev in "${REVS[@]}"; do
	git worktree add --detach "$BIN/src-$rev" "$rev" >/dev/null 2>&1
	(cd "$BIN/src-$rev" && go build -ldflags "-X main.version=$rev" -o "$BIN/revurb-$rev" ./cmd/revurb)
	git worktree remove --force "$BIN/src-$rev"
done
go build -o "$BIN/loadgen" ./perf/loadgen
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

DATE=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT_DIR=${OUT_DIR:-$ROOT/perf/results}
RUN_DIR=$OUT_DIR/$DATE-ab
OUT=$OUT_DIR/$DATE-ab.md
mkdir -p "$RUN_DIR"

# figures FILE prints a run's deliveries/s, p50 and p99 latency (ms) and
# server CPU per delivery (µs), tab-separated.
figures() {
	jq -r 'def r2: . * 100 | round / 100;
		[(.msgs_per_sec|floor), (.latency.p50_ms|r2), (.latency.p99_ms|r2), (.server_cpu_per_delivery_us|r2),
		(if .lost == 0 and .duplicates == 0 and .out_of_order == 0 then "yes" else "NO" end)] | @tsv' "$1"
}

: >"$RUN_DIR/runs.tsv"
for ((round = 0; round < ROUNDS; round++)); do
	order=("${REVS[@]}")
	((round % 2 == 1)) && order=("${REVS[1]}" "${REVS[0]}")
	for name in "${RUN[@]}"; do
		for rev in "${order[@]}"; do
			idle=$(wait_quiet)
			cp "$BIN/revurb-$rev" "$BIN/revurb"
			start_revurb "$RUN_DIR/$name.$rev.$round.log"
			mapfile -t args < <(scenario_args "$name")
			mapfile -t srv < <(server_args)
			json=$RUN_DIR/$name.$rev.$round.json
			echo "== round $round: $name on $rev (CPU ${idle}% idle)" >&2
			timeout -k 10 "$SCENARIO_TIMEOUT" "$BIN/loadgen" "${srv[@]}" -pid "$SERVER_PID" "${args[@]}" \
				-quiet -json-file "$json" >"$RUN_DIR/$name.$rev.$round.txt" 2>&1 || true
			stop_server
			[[ -s $json ]] && printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rev" "$round" "$idle" "$(figures "$json")" >>"$RUN_DIR/runs.tsv"
		done
	done
done

{
	echo "# A/B: revurb ${REVS[0]} and ${REVS[1]}, alternating, $DATE"
	echo
	echo "Command: \`ROUNDS=$ROUNDS perf/ab.sh ${REVS[*]} ${RUN[*]}\` on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(go version | cut -d' ' -f3);"
	echo "each run a fresh server; one loadgen (this tree's) drives both; each scenario's loadgen arguments are perf/lib.sh's."
	echo
	echo "| scenario | build | round | CPU idle before | deliveries/s | p50 ms | p99 ms | server CPU µs/delivery | every event once, in order |"
	echo "|---|---|---|---|---|---|---|---|---|"
	sort -k1,1 -k2,2 -k3,3n "$RUN_DIR/runs.tsv" | awk -F'\t' '{printf "| %s | %s | %s | %s%% | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9}'
	echo
	echo "Medians:"
	echo
	echo "| scenario | build | deliveries/s | p50 ms | p99 ms | server CPU µs/delivery |"
	echo "|---|---|---|---|---|---|"
	for name in "${RUN[@]}"; do
		for rev in "${REVS[@]}"; do
			awk -F'\t' -v n="$name" -v r="$rev" '$1 == n && $2 == r' "$RUN_DIR/runs.tsv" |
				jq -R -s -r --arg n "$name" --arg r "$rev" '
					[split("\n")[] | select(length > 0) | split("\t")] as $rows
					| def med(i): ([$rows[] | .[i] | tonumber] | sort) as $v | if ($v|length) == 0 then "-" else $v[(($v|length) - 1) / 2 | floor] end;
					"| \($n) | \($r) | \(med(4)) | \(med(5)) | \(med(6)) | \(med(7)) |"'
		done
	done
} >"$OUT"
rm -f "$RUN_DIR"/*.log
strip_histograms "$RUN_DIR"
echo "results: $OUT" >&2
