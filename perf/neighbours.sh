#!/usr/bin/env bash
# perf/neighbours.sh — what one app's triggers wait while another app
# floods the HTTP API (BENCHMARKS.md, "One app floods, another triggers").
#
# Two apps on one revurb: "flood", with 1,000 subscribers and 64 keep-alive
# publishers triggering back to back (closed loop) for 25 s, and "quiet",
# with 100 subscribers and one publisher at 50 events/s (open loop) from the
# third second. Run without a cap, then with the flood app capped by
# max_backend_events_per_second: $LIMIT; RUNS pairs. Reports and the
# servers' logs go to perf/results/<date>-neighbours/.
#
#   perf/neighbours.sh                 # LIMIT=100 RUNS=3
#   LIMIT=500 RUNS=1 perf/neighbours.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIMIT=${LIMIT:-100}
RUNS=${RUNS:-3}
PORT=${PORT:-28380}
API_PORT=${API_PORT:-28381}
OUT=$ROOT/perf/results/$(date -u +%Y-%m-%dT%H%M%SZ)-neighbours
BIN=$(mktemp -d)
SERVER=
trap '[[ -n $SERVER ]] && kill "$SERVER" 2>/dev/null; rm -rf "$BIN"' EXIT
mkdir -p "$OUT"
cd "$ROOT"
go build -o "$BIN/revurb" ./cmd/revurb
go build -o "$BIN/loadgen" ./perf/loadgen

for cap in none "$LIMIT"; do
	{
		echo "api_connections_per_address: 0"
		echo "apps:"
		if [[ $cap == none ]]; then
			echo "  - {id: flood, key: flood-key, secret: flood-secret}"
		else
			echo "  - {id: flood, key: flood-key, secret: flood-secret, max_backend_events_per_second: $cap}"
		fi
		echo "  - {id: quiet, key: quiet-key, secret: quiet-secret}"
	} >"$OUT/cap-$cap.yaml"
done

for run in $(seq 1 "$RUNS"); do
	for cap in none "$LIMIT"; do
		name=cap-$cap.$run
		uptime >"$OUT/$name.uptime"
		"$BIN/revurb" start --host 127.0.0.1 --port "$PORT" --api-port "$API_PORT" --config "$OUT/cap-$cap.yaml" >"$OUT/$name.revurb.log" 2>&1 &
		SERVER=$!
		sleep 1
		"$BIN/loadgen" -mode fanout -ws 127.0.0.1:$PORT -api 127.0.0.1:$API_PORT -app-id flood -key flood-key -secret flood-secret \
			-conns 1000 -channel flood -closed -publishers 64 -events 400000 -duration 25s -drain 2s -quiet >"$OUT/$name.flood.txt" 2>&1 &
		flood=$!
		sleep 3
		"$BIN/loadgen" -mode fanout -ws 127.0.0.1:$PORT -api 127.0.0.1:$API_PORT -app-id quiet -key quiet-key -secret quiet-secret \
			-conns 100 -channel quiet -rate 50 -events 750 -drain 2s -quiet >"$OUT/$name.quiet.txt" 2>&1
		wait "$flood" || true
		kill "$SERVER"
		wait "$SERVER" || true
		SERVER=
		uptime >>"$OUT/$name.uptime"
		{
			printf '%-14s quiet: %s\n%-14s        %s\n' "$name" "$(grep 'API latency' "$OUT/$name.quiet.txt")" "" "$(grep 'trigger status' "$OUT/$name.quiet.txt")"
			printf '%-14s flood: %s\n' "" "$(grep 'trigger status' "$OUT/$name.flood.txt")"
		} | tee -a "$OUT/summary.txt"
	done
done
