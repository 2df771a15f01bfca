package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/revurb/revurb/api"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseStartDefaults(t *testing.T) {
	c, err := parseStart(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "0.0.0.0" || c.Port != 8080 || c.APIPort != 8081 || c.Debug {
		t.Fatalf("defaults %+v", c)
	}
	if len(c.Apps) != 1 || c.Apps[0].ID != "app-id" || c.Apps[0].Key != "app-key" || c.Apps[0].Secret != "app-secret" {
		t.Fatalf("default app %+v", c.Apps[0])
	}
}

func TestParseStartEnvAndFlags(t *testing.T) {
	e := env(map[string]string{
		"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s",
		"REVERB_SERVER_HOST": "127.0.0.9", "REVERB_SERVER_PORT": "7000",
	})
	c, err := parseStart([]string{"--port", "7001", "--api-port", "7002", "--debug"}, e)
	if err != nil {
		t.Fatal(err)
	}
	if c.Host != "127.0.0.9" || c.Port != 7001 || c.APIPort != 7002 || !c.Debug {
		t.Fatalf("flags should win over env: %+v", c)
	}
	if a := c.Apps[0]; a.ID != "1" || a.Key != "k" || a.Secret != "s" {
		t.Fatalf("env app %+v", a)
	}
	if _, err := parseStart(nil, env(map[string]string{"REVERB_SERVER_PORT": "x"})); err == nil {
		t.Fatal("bad REVERB_SERVER_PORT accepted")
	}
	if _, err := parseStart([]string{"extra"}, env(nil)); err == nil {
		t.Fatal("stray argument accepted")
	}
	for _, args := range [][]string{
		{"--plain-port", "8090"},
		{"--plain-port", "8080", "--tls-cert", "c.pem"},
	} {
		if _, err := parseStart(args, env(nil)); err == nil || !strings.Contains(err.Error(), "--plain-port") {
			t.Errorf("%v: %v, want an error naming --plain-port", args, err)
		}
	}
	if c, err := parseStart([]string{"--plain-port", "8090", "--tls-cert", "c.pem"}, env(nil)); err != nil || c.PlainPort != 8090 {
		t.Fatalf("--plain-port with a certificate: %v, %+v", err, c)
	}
}

func TestConfigFile(t *testing.T) {
	tests := []struct {
		name, file, err string
	}{
		{name: "yaml", file: `
event_loops: 3
apps:
  - id: one
    key: k1
    secret: s1
    max_connections: 5
    allowed_origins: ["*.example.com"]
    client_events: false
  - id: two
    key: k2
    secret: s2
`},
		{name: "json", file: `{"event_loops": 3, "apps": [{"id": "one", "key": "k1", "secret": "s1", "max_connections": 5,
  "allowed_origins": ["*.example.com"], "client_events": false}, {"id": "two", "key": "k2", "secret": "s2"}]}`},
		{name: "no apps", file: `event_loops: 1`, err: "no apps"},
		{name: "missing secret", file: "apps:\n  - id: a\n    key: b\n", err: "id, key and secret"},
		{name: "wrong type", file: "apps:\n  - id: a\n    key: b\n    secret: c\n    max_connections: lots\n", err: "app 1"},
		{name: "bad limit", file: "apps:\n  - id: a\n    key: b\n    secret: c\n    activity_timeout: 0\n", err: "activity_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "revurb.conf")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := parseStart([]string{"--config", path}, env(map[string]string{"REVERB_APP_KEY": "ignored"}))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Server.EventLoops != 3 || len(c.Apps) != 2 {
				t.Fatalf("config %+v", c)
			}
			one, two := c.Apps[0], c.Apps[1]
			if one.MaxConnections != 5 || one.ClientEvents || one.AllowedOrigins[0] != "*.example.com" {
				t.Fatalf("app one %+v", one)
			}
			// Unset settings keep their defaults.
			if two.MaxConnections != 0 || !two.ClientEvents || two.ActivityTimeout != 120 || two.MaxPresenceMembers != 100 || two.Key != "k2" {
				t.Fatalf("app two %+v", two)
			}
		})
	}
}

func TestParseStartPprof(t *testing.T) {
	tests := []struct {
		name, err string
		args      []string
		want      string
	}{
		{name: "off by default", args: nil, want: ""},
		{name: "loopback", args: []string{"--pprof", "127.0.0.1:6060"}, want: "127.0.0.1:6060"},
		{name: "all interfaces", args: []string{"--pprof", ":6060"}, want: ":6060"},
		{name: "any free port", args: []string{"--pprof", "127.0.0.1:0"}, want: "127.0.0.1:0"},
		{name: "no port", args: []string{"--pprof", "6060"}, err: "host:port"},
		{name: "port not a number", args: []string{"--pprof", "127.0.0.1:x"}, err: "number"},
		{name: "the WebSocket port", args: []string{"--port", "7001", "--pprof", "127.0.0.1:7001"}, err: "WebSocket or API port"},
		{name: "the API port", args: []string{"--pprof", "127.0.0.1:8081"}, err: "WebSocket or API port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseStart(tt.args, env(nil))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Pprof != tt.want {
				t.Errorf("Pprof = %q, want %q", c.Pprof, tt.want)
			}
		})
	}
}

// TestLaravelNames: every name of Laravel's config/reverb.php that applies.
func TestLaravelNames(t *testing.T) {
	c, err := parseStart(nil, env(map[string]string{
		"REVERB_SERVER_HOST": "127.0.0.2", "REVERB_SERVER_PORT": "7000", "REVERB_SERVER_PATH": "/ws",
		"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k", "REVERB_APP_SECRET": "s",
		"REVERB_APP_PING_INTERVAL": "45", "REVERB_APP_MAX_MESSAGE_SIZE": "20000",
		"REVERB_APP_MAX_CONNECTIONS": "9", "REVERB_MAX_REQUEST_SIZE": "5000",
		"REVERB_SCALING_ENABLED": "true", "REDIS_HOST": "10.0.0.1", "REDIS_PORT": "6380",
		"REDIS_USERNAME": "u", "REDIS_PASSWORD": "p@ss", "REDIS_DB": "2", "REVERB_SCALING_CHANNEL": "mine",
	}))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Apps[0]
	switch {
	case c.Host != "127.0.0.2" || c.Port != 7000 || c.Path != "/ws":
		t.Fatalf("server %+v", c)
	case a.ActivityTimeout != 45 || a.MaxMessageSize != 20000 || a.MaxConnections != 9:
		t.Fatalf("app %+v", a)
	case c.Server.MaxRequestBody != 5000:
		t.Fatalf("max request body %d", c.Server.MaxRequestBody)
	case c.Redis != "redis://u:p%40ss@10.0.0.1:6380/2" || c.RedisPrefix != "mine":
		t.Fatalf("redis %q prefix %q", c.Redis, c.RedisPrefix)
	case c.DefaultApp:
		t.Fatal("an app with REVERB_APP_SECRET taken for the embedded default")
	}
	c, _ = parseStart(nil, env(map[string]string{"REVERB_APP_ACTIVITY_TIMEOUT": "60", "REVERB_SCALING_ENABLED": "true", "REDIS_URL": "redis://r:1/0"}))
	if c.Apps[0].ActivityTimeout != 60 || c.Redis != "redis://r:1/0" || !c.DefaultApp {
		t.Fatalf("%+v", c)
	}
	// Flags win.
	c, _ = parseStart([]string{"--redis", "redis://flag:1/0", "--path", "/p"}, env(map[string]string{"REVERB_SCALING_ENABLED": "true", "REDIS_URL": "redis://env:1/0", "REVERB_SERVER_PATH": "/e"}))
	if c.Redis != "redis://flag:1/0" || c.Path != "/p" {
		t.Fatalf("%+v", c)
	}
	if _, err := parseStart(nil, env(map[string]string{"REVERB_APP_MAX_CONNECTIONS": "x"})); err == nil {
		t.Fatal("REVERB_APP_MAX_CONNECTIONS=x accepted")
	}
}

// TestAPIPerAddress: api_connections_per_address absent is the default
// (an eighth of the API's connections, at most half the waiting
// triggers), 0 is no cap, a number is that cap.
func TestAPIPerAddress(t *testing.T) {
	tests := []struct {
		name, file string
		want       int // as api.Config takes it
	}{
		{name: "absent", file: "apps: [{id: a, key: b, secret: c}]", want: 16},
		{name: "zero", file: "api_connections_per_address: 0\napps: [{id: a, key: b, secret: c}]", want: -1},
		{name: "set", file: "api_connections_per_address: 40\napps: [{id: a, key: b, secret: c}]", want: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "revurb.yaml")
			if err := os.WriteFile(path, []byte(tt.file), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := parseStart([]string{"--config", path}, env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := apiPerAddress(c.Server.APIPerAddress, 128, 64); got != tt.want {
				t.Errorf("per address %d, want %d", got, tt.want)
			}
		})
	}
	if got := apiPerAddress(nil, 128, 10); got != 5 {
		t.Errorf("with 10 waiters: %d, want 5", got)
	}
	if got := apiPerAddress(nil, 4, 2); got != 1 {
		t.Errorf("with 4 connections: %d, want 1", got)
	}
}

// TestFDBudget: the API's share of the reserve leaves room for what it
// holds besides the connections it serves.
func TestFDBudget(t *testing.T) {
	tests := []struct {
		name                       string
		limit, maxConns, apiConns  int
		wantConns, wantAPI, wantRe int
	}{
		{name: "defaults", limit: 20000, wantConns: 19744, wantAPI: 128, wantRe: 256},
		{name: "small", limit: 300, wantConns: 236, wantAPI: 32, wantRe: 64},
		{name: "api_connections", limit: 20000, apiConns: 1000, wantConns: 20000 - 1283, wantAPI: 1000, wantRe: 1283},
		{name: "max_connections", limit: 20000, maxConns: 500, wantConns: 500, wantAPI: 128, wantRe: 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newFDBudget(tt.limit, tt.maxConns, tt.apiConns)
			if b.conns != tt.wantConns || b.api != tt.wantAPI || b.reserve != tt.wantRe {
				t.Errorf("%+v, want conns %d api %d reserve %d", b, tt.wantConns, tt.wantAPI, tt.wantRe)
			}
			if api.Descriptors(b.api) > b.reserve-16 {
				t.Errorf("the API may hold %d descriptors of a reserve of %d", api.Descriptors(b.api), b.reserve)
			}
		})
	}
}

// TestRedactURL: the start log's Redis URL keeps no password.
func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"rediss://revurb:s3cret@10.0.0.5:6379/0", "rediss://revurb:xxxxx@10.0.0.5:6379/0"},
		{"redis://:s3cret@s1:26379?addr=s2:26379&master_set=m&sentinel_password=top", "redis://:xxxxx@s1:26379?addr=s2%3A26379&master_set=m&sentinel_password=xxxxx"},
		{"::", "(unparsable URL)"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestClusterSecretSetting: cluster_secret and node_timeout reach the
// broker's config.
func TestClusterSecretSetting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revurb.yaml")
	body := "cluster_secret: \"s3cret\"\nnode_timeout: 7s\napps:\n  - {id: a, key: b, secret: c}\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseStart([]string{"--config", path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.ClusterSecret != "s3cret" || c.Server.NodeTimeout != 7*time.Second {
		t.Fatalf("%+v", c.Server)
	}
}
