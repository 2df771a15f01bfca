# perf/lib.sh — shared by perf/run.sh and perf/profile.sh (source it; it is
# not a command): the standard scenarios, building revurb and loadgen,
# starting and stopping one server at a time, and waiting for a quiet
# machine. The wss scenarios run three servers, each terminating TLS with
# a certificate made for the run (make_tls): revurb itself, Soketi itself,
# and nginx in front of a plain revurb (the README's recipe).
#
# The caller sets ROOT (the repository) and BIN (a scratch directory), and
# calls cleanup from its EXIT trap.

REVURB_PORT=${REVURB_PORT:-28080}
REVURB_API_PORT=${REVURB_API_PORT:-28081}
SOKETI_PORT=${SOKETI_PORT:-26001}
NGINX_PORT=${NGINX_PORT:-28443}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
# nginx's workers: each may hold 20,000 descriptors (as every process of
# these runs), and every socket through nginx takes two (the client's and
# the upstream one), so 19,500 sockets need more than two workers.
NGINX_WORKERS=${NGINX_WORKERS:-4}
SOKETI_DIR=${SOKETI_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pusher-peers/soketi}
PEERS=${PEERS:-/work/shared/peers}
# Soketi's start script turns user authentication on, and Soketi then
# closes every socket that has not signed in within 30 s (4009).
export SOKETI_DEFAULT_APP_USER_AUTHENTICATION=false

SERVER_PID=
SERVER_NAME=
SERVER_PIDS=  # every process of the server side, comma-separated (loadgen -pid)
BEHIND_PID=   # the plain revurb behind nginx
NGINX_DIR=
NGINX_LOG=
TLS_DIR=      # make_tls: ca.pem, server.pem, server.key
# PIN: a command prefix the next start_* runs the server under, e.g.
# (taskset -c 1); empty: no pinning.
PIN=()

# The standard scenarios, in the order they run. Each has its loadgen
# arguments (without -ws, -api and -pid) and the figures it is about
# (metric names of perf/compare). -source-first differs per scenario, so no
# run reuses another's source ports.
SCENARIOS=(idle-5k idle-10k idle-19.5k fanout-10k-closed fanout-10k-closed-syscalls fanout-1k-10ch-8pub flood-2k-8ch client-events-1k
	wss-idle-19.5k wss-fanout-10k-closed wss-handshakes-1core wss-handshakes-1core-x25519 wss-storm-19.5k
	open-10k-1ch-5ev open-1k-10ch-600ev)

# The wss scenarios bind their sockets with -bind-no-port: nginx on this
# machine connects to revurb from 127.0.0.1's ephemeral ports, and
# loadgen's bound ports (whatever their address) would leave it only
# ~16,800 of them.
#
# is_wss NAME succeeds for the scenarios over wss:// (servers: revurb,
# soketi and nginx, each with TLS; loadgen -tls).
is_wss() { [[ $1 == wss-* ]]; }

# scenario_cpus NAME prints the CPUs the server and loadgen are pinned to
# (taskset -c), or nothing when they share the machine as they like.
scenario_cpus() {
	case $1 in
	wss-handshakes-1core*) echo "1 0" ;;
	esac
}

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
	wss-idle-19.5k) printf '%s\n' -mode idle -conns 19500 -procs 2 -settle 20s -samples 5 -source-first 80 -bind-no-port -duration 150s ;;
	wss-fanout-10k-closed)
		printf '%s\n' -mode fanout -conns 10000 -procs 2 -closed -publishers 1 -events 100 -size 64 \
			-source-first 84 -bind-no-port -drain 60s -duration 150s ;;
	# The server on one core (taskset -c 1: revurb's Go runtime then runs
	# one event loop and GOMAXPROCS 2: the loop and a spare P), loadgen on the other.
	# Go's default offer puts X25519MLKEM768 first, and a server that has
	# it (revurb's crypto/tls) takes it; the -x25519 run offers X25519 only,
	# the same key exchange for every server.
	wss-handshakes-1core) printf '%s\n' -mode connect -conns 10000 -concurrency 256 -hold 1s -source-first 88 -bind-no-port -duration 120s ;;
	wss-handshakes-1core-x25519)
		printf '%s\n' -mode connect -conns 10000 -concurrency 256 -hold 1s -tls-groups X25519 -source-first 90 -bind-no-port -duration 120s ;;
	# Every socket dials at once, and one refused or failed dials again
	# after about a second, as a browser's client does: the time until all
	# are established.
	wss-storm-19.5k)
		printf '%s\n' -mode connect -conns 19500 -procs 2 -concurrency 9750 -retry 1s -hold 2s -source-first 92 -bind-no-port -duration 120s ;;
	# Open loop at a moderate rate (issue 16): the tail where the box is
	# not saturated. 50k deliveries/s for 20 s.
	open-10k-1ch-5ev)
		printf '%s\n' -mode fanout -conns 10000 -procs 2 -publishers 1 -events 100 -rate 5 -size 64 \
			-source-first 94 -drain 30s -duration 90s ;;
	# 60k deliveries/s for 20 s, eight publishers with one trigger in
	# flight each.
	open-1k-10ch-600ev)
		printf '%s\n' -mode fanout -conns 1000 -channels 10 -publishers 8 -events 12000 -rate 600 -size 64 \
			-source-first 97 -drain 30s -duration 90s ;;
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
	wss-idle-19.5k) echo connected,bytes_idle,bytes_ramp,bytes_settled ;;
	wss-fanout-10k-closed) echo msgs_per_sec,cpu_per_deliv,latency_p99,exact,rss_connected ;;
	wss-handshakes-1core*) echo conns_per_cpu_sec,cpu_per_conn,connect_per_sec,connect_p99,failures ;;
	wss-storm-19.5k) echo connect_sec,connect_p99,failures,retries,cpu_per_conn ;;
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

# start_revurb LOG [ARGS...] starts a fresh revurb (ulimit -n 20000, under
# PIN) and waits until both ports accept.
start_revurb() {
	local log=$1
	shift
	stop_server
	launch_revurb "$log" "$@" || return 1
	SERVER_PID=$BEHIND_PID SERVER_PIDS=$BEHIND_PID SERVER_NAME=revurb BEHIND_PID=
}

# launch_revurb LOG [ARGS...] starts revurb into BEHIND_PID and waits until
# both its ports accept.
launch_revurb() {
	local log=$1
	shift
	local p
	for p in "$REVURB_PORT" "$REVURB_API_PORT"; do
		port_free "$p" || { echo "port $p is in use; set REVURB_PORT/REVURB_API_PORT" >&2; return 1; }
	done
	(ulimit -n 20000 && exec "${PIN[@]}" "$BIN/revurb" start --host 127.0.0.1 --port "$REVURB_PORT" --api-port "$REVURB_API_PORT" "$@") \
		>"$log" 2>&1 &
	BEHIND_PID=$!
	for _ in $(seq 100); do
		if ! port_free "$REVURB_PORT" && ! port_free "$REVURB_API_PORT"; then
			return 0
		fi
		kill -0 "$BEHIND_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "revurb did not start:" >&2
	cat "$log" >&2
	return 1
}

# start_revurb_tls LOG [ARGS...] starts revurb serving wss:// and https://
# itself with make_tls's certificate.
start_revurb_tls() {
	local log=$1
	shift
	start_revurb "$log" --tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server.key" "$@"
}

# start_soketi LOG starts a fresh Soketi through the peers' script (the only
# way it may be started: it pins node discovery to loopback), with
# ulimit -n 20000 and under PIN; the script prints the PID on its last line
# once ready.
start_soketi() {
	local log=$1
	stop_server
	port_free "$SOKETI_PORT" || { echo "port $SOKETI_PORT is in use; set SOKETI_PORT" >&2; return 1; }
	local out
	out=$( (ulimit -n 20000 && SOKETI_DIR=$SOKETI_DIR SOKETI_LOG=$log exec "${PIN[@]}" "$PEERS/soketi-start.sh" "$SOKETI_PORT") 2>>"$log.start") ||
		{ echo "soketi did not start:" >&2; cat "$log.start" >&2; return 1; }
	SERVER_PID=$(tail -1 <<<"$out") SERVER_NAME=soketi
	[[ $SERVER_PID =~ ^[0-9]+$ ]] || { echo "soketi-start.sh printed no PID: $out" >&2; SERVER_PID=; return 1; }
	SERVER_PIDS=$SERVER_PID
}

# start_soketi_tls LOG starts Soketi serving wss:// and https:// itself
# (uWebSockets.js's SSLApp) with make_tls's certificate.
start_soketi_tls() {
	SOKETI_SSL_CERT=$TLS_DIR/server.pem SOKETI_SSL_KEY=$TLS_DIR/server.key start_soketi "$1"
}

# soketi_ready installs Soketi when it is missing (npm registry only).
soketi_ready() {
	[[ -f $SOKETI_DIR/node_modules/@soketi/soketi/package.json ]] ||
		SOKETI_DIR=$SOKETI_DIR "$PEERS/soketi-setup.sh" >&2
}

soketi_version() {
	node -p "require('$SOKETI_DIR/node_modules/@soketi/soketi/package.json').version" 2>/dev/null || echo unknown
}

# make_tls DIR makes a test CA and a server certificate it signs for
# 127.0.0.1 and localhost, ECDSA P-256 (Let's Encrypt's default key type),
# into DIR: ca.pem, server.pem, server.key; TLS_DIR names it.
make_tls() {
	local d=$1
	mkdir -p "$d"
	chmod 755 "$d"
	{
		openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/ca.key" &&
			openssl req -x509 -new -key "$d/ca.key" -subj "/CN=revurb perf CA" -days 2 -out "$d/ca.pem" \
				-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
			openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/server.key" &&
			openssl req -new -key "$d/server.key" -subj "/CN=127.0.0.1" -out "$d/server.csr" &&
			printf '%s\n' subjectAltName=IP:127.0.0.1,DNS:localhost extendedKeyUsage=serverAuth \
				keyUsage=critical,digitalSignature basicConstraints=CA:FALSE >"$d/server.ext" &&
			openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
				-extfile "$d/server.ext" -out "$d/server.pem"
	} 2>"$d/openssl.log" || { echo "make_tls: openssl failed:" >&2; cat "$d/openssl.log" >&2; return 1; }
	chmod 644 "$d/ca.pem" "$d/server.pem" "$d/server.key"
	TLS_DIR=$d
}

# nginx_conf DIR prints a whole nginx.conf: the README's nginx block (between
# <!-- nginx-example:begin --> and <!-- nginx-example:end -->) with only its
# listen moved to a loopback port, its certificate lines on make_tls's pair
# and its upstreams on the revurb behind it (each rewrite must match exactly
# one line), inside a main context that keeps everything under DIR.
nginx_conf() {
	local dir=$1 block re
	block=$(awk '/<!-- nginx-example:begin -->/ {on = 1; next} /<!-- nginx-example:end -->/ {on = 0} on && !/^```/' "$ROOT/README.md")
	for re in '^[[:space:]]*listen 443 ssl;' '^[[:space:]]*listen \[::\]:443 ssl;' '^[[:space:]]*ssl_certificate ' \
		'^[[:space:]]*ssl_certificate_key ' '^[[:space:]]*server 127\.0\.0\.1:8080;' '^[[:space:]]*server 127\.0\.0\.1:8081;'; do
		[[ $(grep -c -- "$re" <<<"$block") == 1 ]] || { echo "nginx_conf: README block: '$re' must match one line" >&2; return 1; }
	done
	block=$(sed -e "s|^\([[:space:]]*\)listen 443 ssl;|\1listen 127.0.0.1:$NGINX_PORT ssl;|" \
		-e '/^[[:space:]]*listen \[::\]:443 ssl;/d' \
		-e "s|^\([[:space:]]*\)ssl_certificate .*|\1ssl_certificate $TLS_DIR/server.pem;|" \
		-e "s|^\([[:space:]]*\)ssl_certificate_key .*|\1ssl_certificate_key $TLS_DIR/server.key;|" \
		-e "s|^\([[:space:]]*\)server 127\.0\.0\.1:8080;|\1server 127.0.0.1:$REVURB_PORT;|" \
		-e "s|^\([[:space:]]*\)server 127\.0\.0\.1:8081;|\1server 127.0.0.1:$REVURB_API_PORT;|" <<<"$block")
	cat <<EOF
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 20000;
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections 16000;
}

# The http context of Debian's /etc/nginx/nginx.conf, which includes
# conf.d/*.conf where the README puts its block (nginx 1.22 leaves TLS 1.3
# out unless ssl_protocols names it, as Debian's file does).
http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    gzip on;
    access_log $dir/access.log;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;

$block
}
EOF
}

# start_nginx LOG starts a plain revurb (its log in LOG.revurb) and nginx
# terminating TLS in front of it on NGINX_PORT, both under PIN, and waits
# until GET /up through nginx answers. SERVER_PIDS: nginx's master, its
# workers and revurb.
start_nginx() {
	local log=$1
	stop_server
	[[ -x $NGINX_BIN ]] || { echo "nginx not found (make system-deps installs it)" >&2; return 1; }
	port_free "$NGINX_PORT" || { echo "port $NGINX_PORT is in use; set NGINX_PORT" >&2; return 1; }
	launch_revurb "$log.revurb" || return 1
	NGINX_DIR=$(mktemp -d /tmp/revurb-perf-nginx.XXXXXX) NGINX_LOG=$log
	chmod 755 "$NGINX_DIR"
	nginx_conf "$NGINX_DIR" >"$NGINX_DIR/nginx.conf" || return 1
	(ulimit -n 20000 && exec "${PIN[@]}" "$NGINX_BIN" -p "$NGINX_DIR/" -e "$NGINX_DIR/error.log" \
		-c "$NGINX_DIR/nginx.conf" -g 'daemon off;') >"$log" 2>&1 &
	SERVER_PID=$! SERVER_NAME=nginx
	local workers
	for _ in $(seq 100); do
		if [[ $(curl -s -o /dev/null -w '%{http_code}' --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$NGINX_PORT/up") == 200 ]]; then
			workers=$(pgrep -P "$SERVER_PID" | paste -sd, -)
			SERVER_PIDS=$SERVER_PID,$workers,$BEHIND_PID
			return 0
		fi
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "nginx did not start:" >&2
	cat "$log" "$NGINX_DIR/error.log" >&2
	return 1
}

# server_args prints loadgen's -ws and -api for the running server, and
# -tls -ca when the servers speak TLS (make_tls ran).
server_args() {
	case $SERVER_NAME in
	revurb) printf '%s\n' -ws "127.0.0.1:$REVURB_PORT" -api "127.0.0.1:$REVURB_API_PORT" ;;
	soketi) printf '%s\n' -ws "127.0.0.1:$SOKETI_PORT" -api "127.0.0.1:$SOKETI_PORT" ;;
	nginx) printf '%s\n' -ws "127.0.0.1:$NGINX_PORT" -api "127.0.0.1:$NGINX_PORT" ;;
	esac
	if [[ -n $TLS_DIR ]]; then
		printf '%s\n' -tls -ca "$TLS_DIR/ca.pem"
	fi
}

# stop_pid PID stops one process: TERM, then KILL after 5 s.
stop_pid() {
	local pid=$1
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}

# stop_server stops the running server: nginx's master (which stops its
# workers; any left are killed) and the revurb behind it, or the one
# server.
stop_server() {
	local workers= w
	[[ $SERVER_NAME == nginx && -n $SERVER_PID ]] && workers=$(pgrep -P "$SERVER_PID" || true)
	stop_pid "$SERVER_PID"
	for w in $workers; do stop_pid "$w"; done
	stop_pid "$BEHIND_PID"
	if [[ -n $NGINX_DIR && -d $NGINX_DIR ]]; then
		[[ -n $NGINX_LOG && -f $NGINX_DIR/error.log ]] && cat "$NGINX_DIR/error.log" >>"$NGINX_LOG"
		rm -rf "$NGINX_DIR"
	fi
	SERVER_PID= SERVER_NAME= SERVER_PIDS= BEHIND_PID= NGINX_DIR= NGINX_LOG=
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

# strip_histograms DIR rewrites every loadgen JSON report under DIR without
# its histograms' buckets: the percentiles, counts and server figures stay,
# and a report kept beside a results file reads in a page, not 60 KB.
strip_histograms() {
	local f
	while IFS= read -r -d '' f; do
		jq 'walk(if type == "object" then del(.buckets) else . end)' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
	done < <(find "$1" -name '*.json' -print0)
}
