package main

import (
	"cmp"
	"errors"
	"flag"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/revurb/revurb/pusher"
)

// config is everything revurb start needs, from flags, the environment and
// the config file. Flags win over the environment.
type config struct {
	Host       string
	Port       int
	APIPort    int
	ConfigFile string
	Debug      bool
	// Path is a prefix in front of the WebSocket endpoint and the API's
	// routes, for a proxy that forwards a sub-path ("" or "/ws").
	Path string
	// Pprof is the address of the net/http/pprof listener; empty: none.
	Pprof string
	// MetricsAddr moves GET /metrics off the API port to a listener of its
	// own; empty: on the API port.
	MetricsAddr string
	// Console serves the debug console at /console on the API port.
	Console bool
	// LogFormat is text or json; LogLevel debug, info, warn or error.
	LogFormat, LogLevel string
	// DefaultApp says the one app is the embedded default (no config file,
	// no REVERB_APP_SECRET): its secret is no secret, and the start line
	// shows it.
	DefaultApp bool
	// Redis is the URL of the Redis the nodes of a cluster meet at; empty:
	// a single node.
	Redis       string
	RedisPrefix string
	// TLSCert and TLSKey are the certificate (with its chain) and private
	// key both ports present; empty: plain ws:// and http://. The key may
	// be in the certificate's file. APIPlain keeps the API on plain HTTP.
	TLSCert, TLSKey string
	APIPlain        bool
	// PlainPort, with a certificate, serves plain ws:// on a second port
	// beside the WebSocket port's wss://; 0: none.
	PlainPort int

	// From the config file.
	Server processConfig
	Apps   []pusher.AppConfig
}

// processConfig is the config file's settings of the whole process. Zero
// values mean the defaults (README: Config file).
type processConfig struct {
	EventLoops        int           `yaml:"event_loops"`
	MaxConnections    int           `yaml:"max_connections"` // WebSocket connections held at once
	MaxOutbound       int           `yaml:"max_outbound"`
	MaxInbound        int           `yaml:"max_inbound"`
	HandshakeTimeout  time.Duration `yaml:"handshake_timeout"`
	MaxRequestBody    int           `yaml:"max_request_body"`
	MaxRequestURL     int           `yaml:"max_request_url"`
	MaxRequestHeaders int           `yaml:"max_request_headers"`
	APIConcurrency    int           `yaml:"api_connections"`
	APIPerAddress     *int          `yaml:"api_connections_per_address"` // nil: the default (apiPerAddress); 0: no cap
	APIReadTimeout    time.Duration `yaml:"api_read_timeout"`
	APIWriteTimeout   time.Duration `yaml:"api_write_timeout"`
	APIIdleTimeout    time.Duration `yaml:"api_idle_timeout"`
	PublishQueue      int64         `yaml:"publish_queue"`
	PublishWait       time.Duration `yaml:"publish_wait"`
	PublishWaiters    int           `yaml:"publish_waiters"`
	ShutdownGrace     time.Duration `yaml:"shutdown_grace"`
	NodeTimeout       time.Duration `yaml:"node_timeout"`
	// ClusterSecret signs what the nodes of a cluster tell each other;
	// empty: each app's key is derived from the app's own credentials.
	ClusterSecret     string        `yaml:"cluster_secret"`
	WebhookDelay      time.Duration `yaml:"webhook_delay"`
	WebhookQueueBytes int           `yaml:"webhook_queue_bytes"` // per endpoint: what its waiting events may hold
	TLSCert           string        `yaml:"tls_cert"`
	TLSKey            string        `yaml:"tls_key"`
	TLSHandshakes     int           `yaml:"tls_handshakes"` // TLS handshakes at once on the WebSocket port
	APITLS            *bool         `yaml:"api_tls"`        // nil: HTTPS on the API port when there is a certificate
	// ConsoleToken lets its holder watch every app in the console; empty:
	// only an app's secret opens that app. A reload takes a new one.
	ConsoleToken string `yaml:"console_token"`
}

// defaultShutdownGrace is how long a stopping process may take.
const defaultShutdownGrace = 10 * time.Second

// fileConfig is the config file: YAML, or JSON (which YAML reads too).
type fileConfig struct {
	processConfig `yaml:",inline"`
	Apps          []yaml.Node `yaml:"apps"`
}

// parseStart reads the flags of `revurb start` and the environment.
func parseStart(args []string, getenv func(string) string) (*config, error) {
	c := &config{Host: "0.0.0.0", Port: 8080, APIPort: 8081, Server: processConfig{ShutdownGrace: defaultShutdownGrace}}
	if v := getenv("REVERB_SERVER_HOST"); v != "" {
		c.Host = v
	}
	if v := getenv("REVERB_SERVER_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return nil, errors.New("REVERB_SERVER_PORT must be a port number")
		}
		c.Port = p
	}
	c.Path = getenv("REVERB_SERVER_PATH")
	if v := getenv("REVERB_MAX_REQUEST_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, errors.New("REVERB_MAX_REQUEST_SIZE must be a number of bytes")
		}
		c.Server.MaxRequestBody = n
	}
	c.TLSCert, c.TLSKey = tlsEnv(getenv)
	fs := flag.NewFlagSet("revurb start", flag.ContinueOnError)
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "serve wss:// and https:// with this certificate (PEM, chain included; env REVERB_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "the certificate's private key (PEM, unencrypted; default: in --tls-cert's file; env REVERB_TLS_KEY)")
	fs.BoolVar(&c.APIPlain, "api-plain", false, "with a certificate, keep the HTTP API on plain http:// (for an API on loopback only)")
	fs.StringVar(&c.Host, "host", c.Host, "address to listen on (env REVERB_SERVER_HOST)")
	fs.IntVar(&c.Port, "port", c.Port, "WebSocket port (env REVERB_SERVER_PORT)")
	fs.IntVar(&c.APIPort, "api-port", c.APIPort, "HTTP API port")
	fs.IntVar(&c.PlainPort, "plain-port", 0, "with a certificate, also serve plain ws:// on this port (pusher-js's wsPort beside wssPort)")
	fs.StringVar(&c.Path, "path", c.Path, "a path prefix in front of /app/{key} and /apps/... (env REVERB_SERVER_PATH)")
	fs.StringVar(&c.ConfigFile, "config", "", "YAML or JSON file with the apps and their limits")
	fs.BoolVar(&c.Debug, "debug", false, "log every protocol message (at level debug)")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json: every line the process writes, one JSON object each")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.Pprof, "pprof", "", "serve net/http/pprof on this host:port, its own listener (off by default)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on this host:port instead of the API port's /metrics")
	fs.BoolVar(&c.Console, "console", false, "serve the debug console at /console on the API port")
	c.Redis, c.RedisPrefix = scalingEnv(getenv)
	fs.StringVar(&c.Redis, "redis", c.Redis, "run as one node of a cluster that meets at this Redis: redis://[[user]:password@]host:port/db, rediss:// for TLS; Sentinel redis://s1:26379?addr=s2:26379&master_set=NAME; Redis Cluster redis://n1:7000?addr=n2:7001 (env REVERB_SCALING_ENABLED=true with REDIS_URL, or REDIS_HOST...)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", c.RedisPrefix, "prefix of every Redis key and channel (env REVERB_SCALING_CHANNEL)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, errors.New("unexpected argument " + strconv.Quote(fs.Arg(0)))
	}
	if c.Pprof != "" {
		if err := c.checkPprof(); err != nil {
			return nil, err
		}
	}
	if c.ConfigFile != "" {
		if err := c.load(c.ConfigFile); err != nil {
			return nil, err
		}
	}
	if c.TLSKey != "" && c.TLSCert == "" {
		return nil, errors.New("--tls-key (or REVERB_TLS_KEY, tls_key) needs a certificate: --tls-cert")
	}
	if c.PlainPort != 0 && (c.TLSCert == "" || c.PlainPort == c.Port || c.PlainPort == c.APIPort) {
		return nil, errors.New("--plain-port needs a certificate (--tls-cert) and a port of its own")
	}
	if len(c.Apps) == 0 {
		a, err := defaultApp(getenv)
		if err != nil {
			return nil, err
		}
		c.Apps = []pusher.AppConfig{a}
		c.DefaultApp = getenv("REVERB_APP_SECRET") == ""
	}
	return c, nil
}

// checkPprof refuses a --pprof address that is not host:port or that
// names the WebSocket or API port: the profiles must never be reachable
// where clients or backends are.
func (c *config) checkPprof() error {
	_, port, err := net.SplitHostPort(c.Pprof)
	if err != nil {
		return errors.New("--pprof must be host:port: " + err.Error())
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return errors.New("--pprof port must be a number")
	}
	if p != 0 && (p == c.Port || p == c.APIPort) {
		return errors.New("--pprof must not use the WebSocket or API port")
	}
	return nil
}

// tlsEnv reads the certificate and key from the names users put in .env
// for Reverb's tls options (config/reverb.php: local_cert, local_pk) or
// Soketi's.
func tlsEnv(getenv func(string) string) (cert, key string) {
	cert = cmp.Or(getenv("REVERB_TLS_CERT"), getenv("REVERB_TLS_CERT_PATH"), getenv("SOKETI_SSL_CERT"))
	key = cmp.Or(getenv("REVERB_TLS_KEY"), getenv("REVERB_TLS_KEY_PATH"), getenv("SOKETI_SSL_KEY"))
	return cert, key
}

// scalingEnv reads Laravel's scaling variables (config/reverb.php): with
// REVERB_SCALING_ENABLED=true, the Redis of REDIS_URL, or of REDIS_HOST,
// REDIS_PORT, REDIS_USERNAME, REDIS_PASSWORD and REDIS_DB; and the prefix
// REVERB_SCALING_CHANNEL.
func scalingEnv(getenv func(string) string) (redisURL, prefix string) {
	prefix = getenv("REVERB_SCALING_CHANNEL")
	if v := strings.ToLower(getenv("REVERB_SCALING_ENABLED")); v != "true" && v != "1" {
		return "", prefix
	}
	if u := getenv("REDIS_URL"); u != "" {
		return u, prefix
	}
	host, port := cmp.Or(getenv("REDIS_HOST"), "127.0.0.1"), cmp.Or(getenv("REDIS_PORT"), "6379")
	u := url.URL{Scheme: "redis", Host: net.JoinHostPort(host, port), Path: "/" + getenv("REDIS_DB")}
	if user, pass := getenv("REDIS_USERNAME"), getenv("REDIS_PASSWORD"); user != "" || pass != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String(), prefix
}

// defaultApp is the one app served without a config file: app-id, app-key,
// app-secret, or Laravel's REVERB_APP_* variables.
func defaultApp(getenv func(string) string) (pusher.AppConfig, error) {
	a := pusher.DefaultApp(cmp.Or(getenv("REVERB_APP_ID"), "app-id"), cmp.Or(getenv("REVERB_APP_KEY"), "app-key"), cmp.Or(getenv("REVERB_APP_SECRET"), "app-secret"))
	// Laravel's names for the app's limits (config/reverb.php).
	for _, v := range []struct {
		name string
		to   *int
	}{
		{"REVERB_APP_PING_INTERVAL", &a.ActivityTimeout},
		{"REVERB_APP_ACTIVITY_TIMEOUT", &a.ActivityTimeout},
		{"REVERB_APP_MAX_MESSAGE_SIZE", &a.MaxMessageSize},
		{"REVERB_APP_MAX_CONNECTIONS", &a.MaxConnections},
	} {
		if s := getenv(v.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return a, errors.New(v.name + " must be a whole number")
			}
			*v.to = n
		}
	}
	return a, a.Validate()
}

// load reads the config file into c.
func (c *config) load(path string) error {
	server, apps, err := readConfigFile(path, c.Server.MaxRequestBody)
	if err != nil {
		return err
	}
	c.Server, c.Apps = server, apps
	// Flags and the environment win over the file.
	c.TLSCert, c.TLSKey = cmp.Or(c.TLSCert, server.TLSCert), cmp.Or(c.TLSKey, server.TLSKey)
	if server.APITLS != nil && !*server.APITLS {
		c.APIPlain = true
	}
	return nil
}

// readConfigFile reads the config file: the process's settings and the
// apps, each starting from the defaults. body is the request body limit
// when the file sets none (REVERB_MAX_REQUEST_SIZE).
func readConfigFile(path string, body int) (processConfig, []pusher.AppConfig, error) {
	var f fileConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return f.processConfig, nil, err
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return f.processConfig, nil, errors.New("config " + path + ": " + err.Error())
	}
	server := f.processConfig
	if server.MaxRequestBody == 0 {
		server.MaxRequestBody = body
	}
	if server.ShutdownGrace <= 0 {
		server.ShutdownGrace = defaultShutdownGrace
	}
	var apps []pusher.AppConfig
	for i := range f.Apps {
		a := pusher.DefaultApp("", "", "")
		if err := f.Apps[i].Decode(&a); err != nil {
			return server, nil, errors.New("config " + path + ": app " + strconv.Itoa(i+1) + ": " + err.Error())
		}
		if err := a.Validate(); err != nil {
			return server, nil, errors.New("config " + path + ": app " + strconv.Itoa(i+1) + ": " + err.Error())
		}
		apps = append(apps, a)
	}
	if len(f.Apps) == 0 {
		return server, nil, errors.New("config " + path + ": no apps")
	}
	return server, apps, nil
}
