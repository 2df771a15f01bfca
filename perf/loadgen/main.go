package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// config is everything a run needs; the flags fill it.
type config struct {
	mode        string
	wsAddr      string
	apiAddr     string
	appID       string
	key         string
	secret      string
	conns       int
	sources     int
	sourceFirst int
	channel     string
	events      int
	rate        float64
	size        int
	publishers  int
	concurrency int
	readBuf     int
	duration    time.Duration
	hold        time.Duration
	drain       time.Duration
	pid         int
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
)

const usage = `loadgen drives a revurb (or any Pusher-protocol) server with real sockets
and reports what it measured.

  go run ./perf/loadgen -mode fanout -conns 1000 -events 200 -rate 50 -pid $(pgrep -n revurb)
  go run ./perf/loadgen -mode connect -conns 10000 -hold 5s -pid PID
  go run ./perf/loadgen -mode client-events -conns 2000 -events 20 -rate 5
  go run ./perf/loadgen -mode fanout -conns 30000 -procs 2 -json

Modes:
  fanout         -conns sockets subscribe to -channel; -events events are triggered
                 through the signed HTTP API at -rate per second, each carrying its
                 send time; every delivery's latency is recorded.
  connect        -conns sockets are opened as fast as -concurrency allows and held
                 for -hold; reports connections/s and time to connection_established.
  client-events  sockets in pairs on private channels (auth signed locally) send
                 -events client events each at -rate per second per socket (the
                 server's default limit is 10/s); relay latency is recorded.

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
	fs.StringVar(&c.mode, "mode", modeFanout, "fanout, connect or client-events")
	fs.StringVar(&c.wsAddr, "ws", "127.0.0.1:8080", "WebSocket server `host:port` (loopback only)")
	fs.StringVar(&c.apiAddr, "api", "127.0.0.1:8081", "HTTP API `host:port` (loopback only)")
	fs.StringVar(&c.appID, "app-id", "app-id", "app id")
	fs.StringVar(&c.key, "key", "app-key", "app key")
	fs.StringVar(&c.secret, "secret", "app-secret", "app secret (signs API requests and private-channel auth)")
	fs.IntVar(&c.conns, "conns", 100, "number of WebSocket connections")
	fs.IntVar(&c.sources, "sources", 0, "source addresses per process (0: one per 10,000 connections)")
	fs.IntVar(&c.sourceFirst, "source-first", 2, "last octet of the first source address 127.0.0.x (later ones count up through 127.0.1.x, ...)")
	fs.StringVar(&c.channel, "channel", "perf", "channel for fanout; name prefix of the private channels of client-events")
	fs.IntVar(&c.events, "events", 0, "events to trigger (fanout) or to send per socket (client-events); 0: 100 or 20")
	fs.Float64Var(&c.rate, "rate", 0, "events per second: in total (fanout) or per socket (client-events); 0: 100 or 5")
	fs.IntVar(&c.size, "size", 0, "pad each event's data to this many bytes")
	fs.IntVar(&c.publishers, "publishers", 1, "concurrent HTTP API requests (fanout); with 1, every reordering is the server's")
	fs.IntVar(&c.concurrency, "concurrency", 256, "connection attempts in flight per process")
	fs.IntVar(&c.readBuf, "readbuf", 2048, "read buffer per connection, bytes")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "cap on the whole run")
	fs.DurationVar(&c.hold, "hold", 2*time.Second, "how long connect mode holds the sockets open")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "how long to wait for deliveries after the last event was sent")
	fs.IntVar(&c.pid, "pid", 0, "server process id: report its RSS and CPU from /proc")
	fs.BoolVar(&c.jsonOut, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&c.jsonFile, "json-file", "", "also write the JSON report to this `file`")
	fs.IntVar(&c.procs, "procs", 1, "processes to spread the connections over")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on stderr")
	fs.BoolVar(&c.child, "child", false, "internal: run as a child of -procs")
	fs.IntVar(&c.childIndex, "child-index", 0, "internal: index of this child")
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
	case modeConnect:
	default:
		return nil, fmt.Errorf("unknown -mode %q", c.mode)
	}
	for _, a := range []string{c.wsAddr, c.apiAddr} {
		if err := checkLoopback(a); err != nil {
			return nil, err
		}
	}
	switch {
	case c.conns < 1:
		return nil, fmt.Errorf("-conns must be at least 1 (2 for client-events)")
	case c.procs < 1 || c.procs > 64:
		return nil, fmt.Errorf("-procs must be in 1..64")
	case c.concurrency < 1 || c.publishers < 1:
		return nil, fmt.Errorf("-concurrency and -publishers must be positive")
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
	}
	if c.sources <= 0 {
		per := (c.conns + c.procs - 1) / c.procs
		c.sources = (per + 9999) / 10000
	}
	return c, nil
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
