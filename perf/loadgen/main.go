package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is everything a run needs; the flags fill it.
type config struct {
	mode        string
	wsAddr      string   // -ws as given: one host:port or a comma-separated list
	wsAddrs     []string // its targets; socket g goes to wsAddrs[g mod len]
	apiAddr     string   // -api as given
	apiAddrs    []string // its targets; publisher p triggers on apiAddrs[p mod len]
	tls         bool     // -tls: wss:// to -ws, https:// to -api unless apiPlain
	apiPlain    bool
	caFile      string
	tlsGroups   tlsGroups
	bindNoPort  bool
	retry       time.Duration
	tlsConfs    tlsClients // with -tls: the client configuration of each target
	connOffset  int        // global index of this process's first socket (children of -procs)
	appID       string
	key         string
	secret      string
	conns       int
	sources     int
	sourceFirst int
	channel     string
	channels    int
	events      int
	rate        float64
	closed      bool
	size        int
	publishers  int
	concurrency int
	readBuf     int
	duration    time.Duration
	hold        time.Duration
	drain       time.Duration
	settle      time.Duration
	samples     int
	pids        []int // -pid: the server processes measured from /proc
	redisPIDs   []int // -redis-pid: the Redis servers measured, a Redis Cluster's primaries
	rssEvery    time.Duration
	syscalls    bool
	pprofAddr   string
	profileDir  string
	profileSecs int
	jsonOut     bool
	jsonFile    string
	procs       int
	child       bool
	childIndex  int
	quiet       bool
}

// Mode names.
const (
	modeFanout       = "fanout"
	modeConnect      = "connect"
	modeClientEvents = "client-events"
	modeIdle         = "idle"
)

const usage = `loadgen drives a revurb (or any Pusher-protocol) server with real sockets
and reports what it measured.

  go run ./perf/loadgen -mode fanout -conns 1000 -events 200 -rate 50 -pid $(pgrep -n revurb)
  go run ./perf/loadgen -mode fanout -conns 10000 -closed -events 200 -size 64 -procs 2 -pid PID
  go run ./perf/loadgen -mode fanout -conns 1000 -channels 10 -closed -publishers 8 -events 20000
  go run ./perf/loadgen -mode idle -conns 19500 -procs 2 -settle 20s -pid PID
  go run ./perf/loadgen -mode connect -conns 10000 -hold 5s -pid PID
  go run ./perf/loadgen -mode client-events -conns 2000 -events 20 -rate 5
  go run ./perf/loadgen -mode fanout -conns 102000 -procs 6 -ws 127.0.0.1:28100,127.0.0.1:28102,... \
      -api 127.0.0.1:28101 -pid PID1,PID2,... -redis-pid RPID -events 20 -rate 1 -drain 60s

Modes:
  fanout         -conns sockets subscribe to -channels channels (round robin); -events
                 events are triggered through the signed HTTP API by -publishers
                 publishers cycling over the channels, each event carrying its send
                 time and its publisher's own running number; every delivery's latency
                 is recorded, and every event must reach each subscriber of its channel
                 once, in its publisher's order. Open loop (default): event k is due at
                 k/-rate s. -closed: each publisher sends its next trigger as soon as the
                 previous one is answered, as a queue worker does (-rate is ignored).
  idle           -conns sockets subscribe to -channel and stay idle for -settle; with
                 -pid, reports the server's RSS per connection right after the ramp and
                 through the settle period (-samples samples).
  connect        -conns sockets are opened as fast as -concurrency allows and held
                 for -hold; reports connections/s and time to connection_established.
  client-events  sockets in pairs on private channels (auth signed locally) send
                 -events client events each at -rate per second per socket (the
                 server's default limit is 10/s); relay latency is recorded.

-pid PID adds the server's figures from /proc: RSS (before, connected, peak while
the load runs, end), CPU seconds and CPU per delivery, write syscalls per delivery
(syscw of /proc/PID/io; it does not count send(2)/sendmsg(2)), and with -syscalls
the server's exact write/send and read/recv system calls from perf(1) tracepoints.
A cluster: -ws takes a comma-separated list of nodes, and socket g of the run goes
to node g mod N (the report says how many each got and what they saw); -api may be
a list too (publisher p triggers on API p mod N); -pid PID1,PID2,... sums the nodes'
CPU and RSS and lists each node's; -redis-pid adds Redis's CPU over the load.
-pprof ADDR takes the server's CPU profile over the load and its heap and allocs
profiles after it from net/http/pprof at ADDR, into -profile-dir.

Client sockets are bound to 127.0.0.x source addresses starting at -source-first
(one address reaches one server port ~28k times). With -procs P the tool re-executes
itself P times, each child with a share of -conns and its own source addresses,
and merges their reports: one process may hold at most ~20k descriptors.
Every phase is bounded: the whole run stops after -duration and reports what it has.

Flags:
`

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if cfg.child {
		os.Exit(runChild(cfg))
	}
	rep := coordinate(cfg)
	if cfg.jsonFile != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(cfg.jsonFile, append(b, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
		}
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
	} else {
		rep.writeTable(os.Stdout)
	}
	if rep.Connected == 0 {
		os.Exit(1)
	}
}

// parseFlags reads args into a config and fills the mode-dependent defaults.
func parseFlags(args []string) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.mode, "mode", modeFanout, "fanout, idle, connect or client-events")
	fs.StringVar(&c.wsAddr, "ws", "127.0.0.1:8080", "WebSocket server `host:port`, or a comma-separated list of them that the sockets are spread over round robin (loopback only)")
	fs.StringVar(&c.apiAddr, "api", "127.0.0.1:8081", "HTTP API `host:port`, or a comma-separated list of them that the publishers are spread over round robin (loopback only)")
	fs.BoolVar(&c.tls, "tls", false, "wss:// to -ws and https:// to -api (unless -api-plain), verifying the servers' certificates against -ca")
	fs.BoolVar(&c.apiPlain, "api-plain", false, "with -tls: the API stays plain http://")
	fs.StringVar(&c.caFile, "ca", "", "with -tls: PEM `file` of the CA certificates that sign the servers' certificates (default: the system's roots)")
	fs.Var(&c.tlsGroups, "tls-groups", "with -tls: the key exchange `groups` offered, comma-separated, preferred first (X25519MLKEM768, X25519, P256, …); default Go's, as a browser's: X25519MLKEM768 first")
	fs.StringVar(&c.appID, "app-id", "app-id", "app id")
	fs.StringVar(&c.key, "key", "app-key", "app key")
	fs.StringVar(&c.secret, "secret", "app-secret", "app secret (signs API requests and private-channel auth)")
	fs.IntVar(&c.conns, "conns", 100, "number of WebSocket connections")
	fs.IntVar(&c.sources, "sources", 0, "source addresses per process (0: one per 10,000 connections)")
	fs.BoolVar(&c.bindNoPort, "bind-no-port", false, "bind the source address only and let connect(2) pick the port (IP_BIND_ADDRESS_NO_PORT), so that the sockets take no port that this machine's own outgoing connections elsewhere need (a proxy here connecting to its upstream)")
	fs.IntVar(&c.sourceFirst, "source-first", 2, "last octet of the first source address 127.0.0.x (later ones count up through 127.0.1.x, ...)")
	fs.StringVar(&c.channel, "channel", "perf", "channel for fanout and idle (with -channels K: name-0 … name-K-1); name prefix of the private channels of client-events")
	fs.IntVar(&c.channels, "channels", 1, "fanout: spread the sockets over this many channels; publishers cycle over them")
	fs.IntVar(&c.events, "events", 0, "events to trigger in total (fanout) or to send per socket (client-events); 0: 100 or 20")
	fs.Float64Var(&c.rate, "rate", 0, "events per second: in total (fanout, open loop) or per socket (client-events); 0: 100 or 5")
	fs.BoolVar(&c.closed, "closed", false, "fanout: closed loop, each publisher triggers its next event as soon as the previous one is answered")
	fs.IntVar(&c.size, "size", 0, "pad each event's data to this many bytes")
	fs.IntVar(&c.publishers, "publishers", 1, "fanout: publishers, each with one HTTP API request in flight and its own event numbering")
	fs.IntVar(&c.concurrency, "concurrency", 256, "connection attempts in flight per process")
	fs.IntVar(&c.readBuf, "readbuf", 2048, "read buffer per connection, bytes")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "cap on the whole run")
	fs.DurationVar(&c.retry, "retry", 0, "a socket whose dial, TLS handshake or upgrade fails dials again after this long (±50%), as long as the run lasts (0: never; a reconnect storm's clients do)")
	fs.DurationVar(&c.hold, "hold", 2*time.Second, "how long connect mode holds the sockets open")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "how long to wait for deliveries after the last event was sent")
	fs.DurationVar(&c.settle, "settle", 20*time.Second, "idle: how long the sockets stay idle after the ramp")
	fs.IntVar(&c.samples, "samples", 5, "idle: server RSS samples over -settle")
	fs.Var((*pidList)(&c.pids), "pid", "server process `id`, or a comma-separated list of them (a cluster's nodes): report their RSS (each and summed), CPU (summed) and syscalls from /proc")
	fs.Var((*pidList)(&c.redisPIDs), "redis-pid", "Redis server process `id`, or a comma-separated list of them (a Redis Cluster's primaries): report their CPU seconds during the load and RSS from /proc, summed")
	fs.DurationVar(&c.rssEvery, "rss-every", 50*time.Millisecond, "with -pid: how often to sample the server's RSS while the load runs (for the peak)")
	fs.BoolVar(&c.syscalls, "syscalls", false, "with -pid: count the server's write/send and read/recv system calls over the load with perf stat (needs perf and tracepoint access)")
	fs.StringVar(&c.pprofAddr, "pprof", "", "server's net/http/pprof `host:port`: CPU profile over the load, heap and allocs after it (loopback only)")
	fs.StringVar(&c.profileDir, "profile-dir", "perf/profiles", "with -pprof: where cpu.pprof, heap.pprof and allocs.pprof go")
	fs.IntVar(&c.profileSecs, "profile-seconds", 10, "with -pprof: length of the CPU profile from the start of the load, seconds")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&c.jsonFile, "json-file", "", "also write the JSON report to this `file`")
	fs.IntVar(&c.procs, "procs", 1, "processes to spread the connections over")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&c.child, "child", false, "internal: run as a child of -procs")
	fs.IntVar(&c.childIndex, "child-index", 0, "internal: index of this child")
	fs.IntVar(&c.connOffset, "conn-offset", 0, "internal: global index of this child's first socket")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch c.mode {
	case modeFanout:
		if c.events == 0 {
			c.events = 100
		}
		if c.rate == 0 {
			c.rate = 100
		}
	case modeClientEvents:
		if c.events == 0 {
			c.events = 20
		}
		if c.rate == 0 {
			c.rate = 5
		}
		if c.conns%2 != 0 {
			c.conns--
		}
	case modeConnect, modeIdle:
	default:
		return nil, fmt.Errorf("unknown -mode %q", c.mode)
	}
	if c.mode != modeFanout {
		// One sender per receiver in client-events; nothing is published
		// in the other modes.
		c.publishers = 1
		if c.closed || c.channels != 1 {
			return nil, fmt.Errorf("-closed and -channels are for -mode fanout")
		}
	}
	var err error
	if c.wsAddrs, err = splitAddrs("-ws", c.wsAddr); err != nil {
		return nil, err
	}
	if c.apiAddrs, err = splitAddrs("-api", c.apiAddr); err != nil {
		return nil, err
	}
	if c.tls {
		api := c.apiAddrs
		if c.apiPlain {
			api = nil
		}
		if c.tlsConfs, err = newTLSClients(c.caFile, c.tlsGroups, c.wsAddrs, api); err != nil {
			return nil, err
		}
	} else if c.apiPlain || c.caFile != "" || c.tlsGroups != nil {
		return nil, fmt.Errorf("-api-plain, -ca and -tls-groups go with -tls")
	}
	if c.pprofAddr != "" {
		if err := checkLoopback(c.pprofAddr); err != nil {
			return nil, err
		}
	}
	switch {
	case c.conns < 1:
		return nil, fmt.Errorf("-conns must be at least 1 (2 for client-events)")
	case c.procs < 1 || c.procs > 64:
		return nil, fmt.Errorf("-procs must be in 1..64")
	case c.concurrency < 1 || c.publishers < 1 || c.publishers > 1024:
		return nil, fmt.Errorf("-concurrency must be positive, -publishers in 1..1024")
	case c.channels < 1 || c.channels > 10_000:
		return nil, fmt.Errorf("-channels must be in 1..10000")
	case c.settle < 0 || c.samples < 1 || c.samples > 1000:
		return nil, fmt.Errorf("-settle must not be negative, -samples in 1..1000")
	case c.rssEvery < time.Millisecond:
		return nil, fmt.Errorf("-rss-every must be at least 1ms")
	case c.profileSecs < 1 || c.profileSecs > 600:
		return nil, fmt.Errorf("-profile-seconds must be in 1..600")
	case c.readBuf < 256:
		return nil, fmt.Errorf("-readbuf must be at least 256")
	case c.sourceFirst < 1 || c.sourceFirst > 250:
		return nil, fmt.Errorf("-source-first must be in 1..250")
	case c.duration <= 0:
		return nil, fmt.Errorf("-duration must be positive")
	case c.events < 0 || c.events > 10_000_000:
		return nil, fmt.Errorf("-events must be in 0..10000000")
	case c.rate < 0:
		return nil, fmt.Errorf("-rate must not be negative")
	case c.retry < 0:
		return nil, fmt.Errorf("-retry must not be negative")
	case c.connOffset < 0:
		return nil, fmt.Errorf("-conn-offset must not be negative")
	}
	if c.sources <= 0 {
		per := (c.conns + c.procs - 1) / c.procs
		c.sources = (per + 9999) / 10000
	}
	return c, nil
}

// splitAddrs reads the comma-separated host:port list of flag name, each
// a loopback address, in order; the same address may appear twice (it
// then gets twice the share).
func splitAddrs(name, s string) ([]string, error) {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("%s %q: empty address in the list", name, s)
		}
		if err := checkLoopback(a); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// pidList is the flag.Value of -pid: process ids separated by commas; 0
// alone (the default) means none.
type pidList []int

func (l *pidList) String() string {
	if l == nil || len(*l) == 0 {
		return "0"
	}
	s := make([]string, len(*l))
	for i, p := range *l {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// Set implements flag.Value.
func (l *pidList) Set(s string) error {
	*l = nil
	if strings.TrimSpace(s) == "0" {
		return nil
	}
	seen := map[int]bool{}
	for f := range strings.SplitSeq(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p <= 0 {
			return fmt.Errorf("%q is not a process id", f)
		}
		if seen[p] {
			return fmt.Errorf("process %d given twice", p)
		}
		seen[p] = true
		*l = append(*l, p)
	}
	return nil
}

// checkLoopback refuses any target that is not a loopback address: the
// tool must never send load anywhere else.
func checkLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address; loadgen only targets loopback", hostport)
	}
	return nil
}

// sourceAddr returns the i-th source address counting from 127.0.0.first,
// skipping last octets 0 and 255.
func sourceAddr(first, i int) *net.TCPAddr {
	n := first + i
	// 254 usable last octets (1..254) per /24.
	hi, lo := n/254, n%254
	if lo == 0 {
		hi, lo = hi-1, 254
	}
	if hi > 255*255 {
		hi = 0
	}
	return &net.TCPAddr{IP: net.IPv4(127, byte(hi>>8), byte(hi), byte(lo))}
}
