// Command revurb is a Pusher-protocol WebSocket server.
//
// Its flags, settings and environment are in the README; `revurb` alone
// prints the synopsis (usage below).
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/revurb/revurb/api"
	"github.com/revurb/revurb/loop"
	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker"
	"github.com/revurb/revurb/pusher/webhook"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `revurb is a Pusher-protocol WebSocket server.

Usage:
  revurb start [--host 0.0.0.0] [--port 8080] [--api-port 8081] [--path PREFIX] [--config FILE]
               [--log-format text|json] [--log-level LEVEL] [--debug] [--metrics-addr ADDR] [--pprof ADDR]
               [--redis URL] [--redis-prefix PREFIX] [--tls-cert FILE] [--tls-key FILE] [--api-plain]
               [--plain-port PORT] [--console]
  revurb version
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "start":
		cfg, err := parseStart(os.Args[2:], os.Getenv)
		if err != nil {
			fmt.Fprintln(os.Stderr, "revurb:", err)
			os.Exit(2)
		}
		if err := run(cfg); err != nil {
			if cfg.LogFormat == "json" {
				// run made the JSON logger the default one.
				slog.Error("revurb: stopped", "error", err.Error())
			} else {
				fmt.Fprintln(os.Stderr, "revurb:", err)
			}
			os.Exit(1)
		}
	case "version", "--version", "-v":
		fmt.Println("revurb", version)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
}

// run wires the protocol core, the event loops and the HTTP API, and serves
// until SIGINT or SIGTERM; SIGHUP reloads (reload.go).
func run(cfg *config) error {
	// Catch the signals before anything listens: a client that connects at
	// once and a SIGTERM right after must still get the 4200 goodbye.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	p, err := build(cfg)
	if err != nil {
		return err
	}
	return p.serve(sig)
}

// process is what build makes of the configuration: the parts that serve,
// wired together, none of them listening yet.
type process struct {
	cfg     *config
	logger  *slog.Logger
	fds     fdBudget
	perAddr int // HTTP API connections per client address, < 0 for no cap
	broker  pusher.Broker
	hooks   *webhook.Dispatcher // nil when no app has webhooks
	srv     *pusher.Server
	eng     *loop.Engine
	httpAPI *api.Server
	certs   *certStore // nil: plain ws:// and http://
	procs   schedProcs

	wsAddr, apiAddr string
	plainAddr       string // plain ws:// beside wss://, "" if none
}

// build makes the logger, shares the file descriptors out, and wires the
// broker, the webhook dispatcher, the protocol core, the event loops and
// the HTTP API.
func build(cfg *config) (*process, error) {
	logger, err := newLogger(cfg.LogFormat, cfg.LogLevel, cfg.Debug)
	if err != nil {
		return nil, err
	}
	limit, err := raiseFDLimit()
	if err != nil {
		return nil, err
	}
	p := &process{cfg: cfg, logger: logger, fds: newFDBudget(limit, cfg.Server.MaxConnections, cfg.Server.APIConcurrency),
		wsAddr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)), apiAddr: net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.APIPort))}
	if cfg.PlainPort != 0 {
		p.plainAddr = net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.PlainPort))
	}
	// Below the API's cap, so that waiting triggers never stop it
	// answering other routes.
	waiters := cfg.Server.PublishWaiters
	if waiters <= 0 {
		waiters = p.fds.api / 2
	}
	waiters = max(min(waiters, p.fds.api-1), 1)
	p.perAddr = apiPerAddress(cfg.Server.APIPerAddress, p.fds.api, waiters)
	if cfg.Redis != "" {
		rb, err := redisbroker.New(redisbroker.Config{URL: cfg.Redis, Prefix: cfg.RedisPrefix, NodeTimeout: cfg.Server.NodeTimeout,
			Apps: cfg.Apps, Secret: cfg.Server.ClusterSecret, Log: logger})
		if err != nil {
			return nil, err
		}
		p.broker = rb
	}
	var observer pusher.Observer
	for _, a := range cfg.Apps {
		// With a config file, a reload may bring webhooks.
		if len(a.Webhooks) > 0 || cfg.ConfigFile != "" {
			p.hooks = webhook.New(cfg.Apps, webhook.Config{Delay: cfg.Server.WebhookDelay, QueueBytes: cfg.Server.WebhookQueueBytes, Log: logger})
			observer = p.hooks
			break
		}
	}
	p.srv, err = pusher.NewServer(cfg.Apps, pusher.Config{
		Log: logger, Debug: cfg.Debug,
		PublishQueue: cfg.Server.PublishQueue, PublishWait: cfg.Server.PublishWait, PublishWaiters: waiters,
		Broker: p.broker, Observer: observer,
	})
	if err != nil {
		return nil, err
	}
	var wsTLS, apiTLS *tls.Config
	if cfg.TLSCert != "" {
		if p.certs, err = newCertStore(cfg.TLSCert, cfg.TLSKey); err != nil {
			return nil, err
		}
		wsTLS = p.certs.config()
		if !cfg.APIPlain {
			apiTLS = p.certs.config()
		}
	}
	p.procs = setProcs(cfg.Server.EventLoops)
	p.eng, err = loop.New(p.srv, loop.Config{
		TLS: wsTLS, MaxHandshakes: cfg.Server.TLSHandshakes, PlainAddr: p.plainAddr,
		Addr: p.wsAddr, Loops: p.procs.loops, MaxOutbound: cfg.Server.MaxOutbound, MaxInbound: cfg.Server.MaxInbound,
		HandshakeTimeout: cfg.Server.HandshakeTimeout, MaxConns: p.fds.conns, Path: cfg.Path, Log: logger,
	})
	if err != nil {
		return nil, err
	}
	p.httpAPI = api.New(p.srv, api.Config{
		MaxBodySize: cfg.Server.MaxRequestBody, MaxURLSize: cfg.Server.MaxRequestURL,
		Concurrency: p.fds.api, ConnsPerAddress: p.perAddr, Path: cfg.Path,
		Sources:          api.Sources{Transport: p.eng.Stats, Webhooks: webhookStats(p.hooks)},
		MetricsElsewhere: cfg.MetricsAddr != "",
		ReadTimeout:      cfg.Server.APIReadTimeout, WriteTimeout: cfg.Server.APIWriteTimeout,
		IdleTimeout: cfg.Server.APIIdleTimeout, MaxHeaderSize: cfg.Server.MaxRequestHeaders,
		TLS: apiTLS, Log: logger, Debug: cfg.Debug,
		Console: cfg.Console, ConsoleToken: cfg.Server.ConsoleToken,
	})
	return p, nil
}

// serve listens on the API port and, if asked, the metrics and pprof
// addresses, runs the event loops and the API, says so, and then serves
// until a signal on sig, when it drains, or until either stops; SIGHUP
// reloads.
func (p *process) serve(sig <-chan os.Signal) error {
	cfg, logger := p.cfg, p.logger
	ln, err := p.httpAPI.Listen(p.apiAddr)
	if err != nil {
		return err
	}
	var metricsAddr net.Addr
	if cfg.MetricsAddr != "" {
		ms, addr, err := serveHTTP(cfg.MetricsAddr, p.httpAPI.MetricsHandler(), logger, "metrics")
		if err != nil {
			return err
		}
		defer ms.Close()
		metricsAddr = addr
	}
	var profAddr net.Addr
	if cfg.Pprof != "" {
		prof, addr, err := servePprof(cfg.Pprof, logger)
		if err != nil {
			return err
		}
		defer prof.Close()
		profAddr = addr
	}
	errc := make(chan error, 2)
	go func() { errc <- p.eng.Run() }()
	go func() { errc <- p.httpAPI.Serve(ln) }()
	select {
	case <-p.eng.Ready():
	case err := <-errc:
		return err
	}
	p.announce(profAddr, metricsAddr)

	for stop := false; !stop; {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				p.reload()
				continue
			}
			logger.Info(s.String()+": draining: telling clients to reconnect, then stopping within "+cfg.Server.ShutdownGrace.String(), "signal", s.String())
			stop = true
		case err := <-errc:
			return err
		}
	}
	// One deadline for the whole stop: the drain, then the webhooks.
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace)
	defer cancel()
	err = drain(ctx, p.srv, p.eng, p.httpAPI, cfg.Server.ShutdownGrace)
	if p.hooks != nil {
		// What the drain reported (members leaving, channels vacated) goes
		// out before the process does, in what is left of the grace; what
		// is still unsent then is dropped and counted.
		p.hooks.Close(ctx)
	}
	return err
}

// announce logs, once everything serves, what a reader should know: a port
// shared with another process, the connection budget, the cluster, and the
// banner.
func (p *process) announce(profAddr, metricsAddr net.Addr) {
	cfg, logger, fds := p.cfg, p.logger, p.fds
	if shared, err := sharedPorts(slices.DeleteFunc([]int{cfg.Port, cfg.APIPort, cfg.PlainPort}, func(p int) bool { return p == 0 })); err == nil && len(shared) > 0 {
		logger.Warn("another process listens on port "+fmt.Sprint(shared)+" too: the kernel shares new connections "+
			"between the two (SO_REUSEPORT). That is how a restart without downtime works; otherwise stop one of them.", "ports", shared)
	}
	logger.Info("connections: "+fds.String()+perAddrString(p.perAddr)+"; "+p.procs.String(), "websockets", fds.conns, "api", fds.api,
		"api_per_address", max(p.perAddr, 0), "rlimit_nofile", fds.limit, "reserve", fds.reserve,
		"event_loops", p.procs.loops, "gomaxprocs", p.procs.procs)
	if cfg.Redis != "" {
		logger.Info("cluster: node "+p.broker.Node()+", meeting the others at Redis", "node", p.broker.Node(), "redis", redactURL(cfg.Redis), "prefix", cmp.Or(cfg.RedisPrefix, redisbroker.DefaultPrefix))
	}
	banner(cfg, logger, p.wsAddr, p.plainAddr, p.apiAddr, profAddr, metricsAddr)
}

// webhookStats reads the dispatcher's counters for the metrics; nil when
// no app has webhooks.
func webhookStats(d *webhook.Dispatcher) func() pusher.WebhookStats {
	if d == nil {
		return nil
	}
	return d.Stats
}

// drain stops the process without dropping what it acknowledged (README:
// restarts without downtime). The API's listener closes at once and /up
// says 503, so new requests go to the next process on the port; for a
// moment every response carries Connection: close, so keep-alive clients
// move over between requests rather than find their connection gone; then
// idle connections close and requests in flight finish. Meanwhile every
// WebSocket client is told 4200 after the broadcasts already queued for it,
// and reconnects at once, to the next process. All before ctx ends (grace
// from the signal).
func drain(ctx context.Context, srv *pusher.Server, eng *loop.Engine, httpAPI *api.Server, grace time.Duration) error {
	httpAPI.Drain()
	apiDone := make(chan error, 1)
	go func() {
		select {
		case <-time.After(min(drainMoment, grace/4)):
		case <-ctx.Done():
		}
		apiDone <- httpAPI.Shutdown(ctx)
	}()
	err := eng.Stop(ctx)
	if apiErr := <-apiDone; err == nil {
		err = apiErr
	}
	// Last, out of the cluster: the other nodes hear at once that this
	// node's members left.
	if clusterErr := srv.Stop(ctx); err == nil {
		err = clusterErr
	}
	return err
}

// banner says the process is serving: in text, the start line users read
// (stdout); in JSON, one log record like every other line. An app's secret
// is shown only for the embedded default app, whose secret is no secret.
func banner(cfg *config, logger *slog.Logger, wsAddr, plainAddr, apiAddr string, profAddr, metricsAddr net.Addr) {
	ws, httpAPI := "ws://"+wsAddr+"/app/{key}", "http://"+apiAddr
	if cfg.TLSCert != "" {
		ws = "wss://" + wsAddr + "/app/{key}"
		if plainAddr != "" {
			ws += " and ws://" + plainAddr + "/app/{key}"
		}
		if !cfg.APIPlain {
			httpAPI = "https://" + apiAddr
		}
	}
	if cfg.LogFormat == "json" {
		var apps []any
		for _, a := range cfg.Apps {
			app := []any{"id", a.ID, "key", a.Key}
			if cfg.DefaultApp {
				app = append(app, "secret", a.Secret)
			}
			apps = append(apps, slog.Group("app", app...))
		}
		attrs := []any{"version", version, "websockets", ws, "api", httpAPI, slog.Group("apps", apps...)}
		if profAddr != nil {
			attrs = append(attrs, "pprof", "http://"+profAddr.String()+"/debug/pprof/")
		}
		if metricsAddr != nil {
			attrs = append(attrs, "metrics", "http://"+metricsAddr.String()+"/metrics")
		}
		if cfg.Console {
			attrs = append(attrs, "console", consoleURL(httpAPI, cfg.Path))
		}
		logger.Info("revurb "+version+" listening", attrs...)
		return
	}
	fmt.Printf("revurb %s listening: WebSockets %s, HTTP API %s\n", version, ws, httpAPI)
	for _, a := range cfg.Apps {
		if cfg.DefaultApp {
			fmt.Printf("  app id=%s key=%s secret=%s\n", a.ID, a.Key, a.Secret)
		} else {
			fmt.Printf("  app id=%s key=%s\n", a.ID, a.Key)
		}
	}
	if profAddr != nil {
		fmt.Printf("  pprof http://%s/debug/pprof/\n", profAddr)
	}
	if metricsAddr != nil {
		fmt.Printf("  metrics http://%s/metrics\n", metricsAddr)
	}
	if cfg.Console {
		fmt.Printf("  console %s\n", consoleURL(httpAPI, cfg.Path))
	}
}

// consoleURL is where a browser on this machine finds the console of the
// API at base (http:// or https://, host and port): an unspecified host
// is this machine's loopback.
func consoleURL(base, path string) string {
	scheme, addr, _ := strings.Cut(base, "://")
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + strings.TrimSuffix(path, "/") + "/console"
}

// redactURL is u without its passwords (the primaries' and the
// Sentinels'), for the log.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	if q := p.Query(); q.Has("sentinel_password") {
		q.Set("sentinel_password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}

// drainMoment is how long the API answers with Connection: close before it
// closes idle keep-alive connections.
const drainMoment = time.Second

// servePprof serves net/http/pprof on addr with its own listener, server
// and mux — never on the WebSocket or API port, and not through
// http.DefaultServeMux. It has no write timeout: a CPU profile streams
// for as many seconds as asked.
func servePprof(addr string, logger *slog.Logger) (*http.Server, net.Addr, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveHTTP(addr, mux, logger, "pprof")
}

// serveHTTP serves h on a listener of its own at addr (with SO_REUSEPORT,
// as every listener of revurb, so a restart can bind it while this
// process drains), logging through logger.
func serveHTTP(addr string, h http.Handler, logger *slog.Logger, what string) (*http.Server, net.Addr, error) {
	ln, err := api.ListenReusePort(addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			logger.Error(what+": stopped serving", "error", err)
		}
	}()
	return srv, ln.Addr(), nil
}
