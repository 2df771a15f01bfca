package pusher

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestOpen(t *testing.T) {
	tests := []struct {
		name     string
		mod      func(*AppConfig)
		key      string
		protocol string
		origin   string
		code     int
	}{
		{name: "unknown key", key: "nope", protocol: "7", code: CodeUnknownApp},
		{name: "protocol 4", key: "app-key", protocol: "4", code: CodeBadProtocol},
		{name: "protocol 8", key: "app-key", protocol: "8", code: CodeBadProtocol},
		{name: "protocol junk", key: "app-key", protocol: "x", code: CodeBadProtocol},
		{name: "disabled", key: "app-key", protocol: "7", mod: func(a *AppConfig) { a.Enabled = false }, code: CodeAppDisabled},
		{name: "origin refused", key: "app-key", protocol: "7", origin: "https://evil.com",
			mod: func(a *AppConfig) { a.AllowedOrigins = []string{"*.example.com"} }, code: CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newServer(t, 1, tt.mod)
			c := &client{t: t, s: s}
			ok := s.Open(&c.sess, &c.conn, 0, tt.key, tt.protocol, tt.origin)
			if ok {
				t.Fatal("accepted")
			}
			if got := c.errorCode(); got != tt.code {
				t.Fatalf("error code %d, want %d", got, tt.code)
			}
			if c.conn.closeCode != tt.code {
				t.Fatalf("close code %d, want %d", c.conn.closeCode, tt.code)
			}
		})
	}
}

func TestOpenQuota(t *testing.T) {
	s, app := newServer(t, 1, func(a *AppConfig) { a.MaxConnections = 2 })
	a, b := dial(t, s, 0), dial(t, s, 0)
	c := &client{t: t, s: s}
	if s.Open(&c.sess, &c.conn, 0, "app-key", "7", "") {
		t.Fatal("third connection accepted over a quota of 2")
	}
	if got := c.errorCode(); got != CodeOverQuota {
		t.Fatalf("code %d, want 4004", got)
	}
	s.Close(&a.sess)
	d := dial(t, s, 0)
	if app.Connections() != 2 {
		t.Fatalf("connections = %d, want 2", app.Connections())
	}
	_, _ = b, d
}

func TestConnectionEstablished(t *testing.T) {
	s, _ := newServer(t, 1)
	c := &client{t: t, s: s}
	s.Open(&c.sess, &c.conn, 0, "app-key", "", "")
	m := c.mustEvent("pusher:connection_established")
	d := data(t, m)
	if !regexp.MustCompile(`^\d+\.\d+$`).MatchString(d["socket_id"].(string)) {
		t.Fatalf("socket_id %v", d["socket_id"])
	}
	if d["activity_timeout"] != float64(120) {
		t.Fatalf("activity_timeout %v", d["activity_timeout"])
	}
	other := dial(t, s, 0)
	if other.sess.ID() == c.sess.ID() {
		t.Fatal("two sessions share a socket_id")
	}
}

func TestOriginAllowed(t *testing.T) {
	app := DefaultApp("a", "k", "s")
	app.AllowedOrigins = []string{"*.example.com", "localhost", "https://exact.org"}
	for origin, want := range map[string]bool{
		"":                             true,
		"https://app.example.com":      true,
		"https://a.b.example.com:8443": true,
		"https://example.com":          false,
		"https://evil-example.com":     false,
		"http://localhost:3000":        true,
		"https://exact.org":            true,
		"http://exact.org":             false,
		"https://other.org":            false,
	} {
		if got := app.OriginAllowed(origin); got != want {
			t.Errorf("OriginAllowed(%q) = %v, want %v", origin, got, want)
		}
	}
}

func TestPingPong(t *testing.T) {
	s, _ := newServer(t, 1)
	c := dial(t, s, 0)
	c.send(`{"event":"pusher:ping","data":{}}`)
	m := c.mustEvent("pusher:pong")
	if m["data"] != "{}" {
		t.Fatalf("pong data %v", m["data"])
	}
	c.send(`{"event":"pusher:ping"}`)
	c.mustEvent("pusher:pong")
	c.send(`{"event":"pusher:pong","data":{}}`)
	c.none()
}

func TestBadMessages(t *testing.T) {
	for name, msg := range map[string]string{
		"not json":           `{"event":`,
		"array":              `[1,2]`,
		"no event":           `{"data":{}}`,
		"event not string":   `{"event":5}`,
		"unknown pusher":     `{"event":"pusher:nope","data":{}}`,
		"unknown event":      `{"event":"hello"}`,
		"subscribe no data":  `{"event":"pusher:subscribe"}`,
		"subscribe bad type": `{"event":"pusher:subscribe","data":{"channel":5}}`,
		"subscribe data num": `{"event":"pusher:subscribe","data":7}`,
		"channel_data type":  `{"event":"pusher:subscribe","data":{"channel":"presence-a","auth":"x","channel_data":{}}}`,
		"unsubscribe type":   `{"event":"pusher:unsubscribe","data":{"channel":[]}}`,
		"trailing":           `{"event":"pusher:ping"} x`,
		"deep":               `{"event":"pusher:ping","data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		"control char":       "{\"event\":\"pusher:ping\x01\"}",
		"bad escape":         `{"event":"\x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := newServer(t, 1)
			c := dial(t, s, 0)
			c.send(msg)
			c.errorCode()
			c.none()
			if c.conn.closeCode != 0 {
				t.Fatalf("closed with %d", c.conn.closeCode)
			}
			c.send(`{"event":"pusher:ping"}`)
			c.mustEvent("pusher:pong")
		})
	}
}

func TestBinary(t *testing.T) {
	s, _ := newServer(t, 1)
	c := dial(t, s, 0)
	s.HandleBinary(&c.sess)
	c.errorCode()
	if c.conn.closeCode != 0 {
		t.Fatal("closed on a binary frame")
	}
}

func TestKeepalive(t *testing.T) {
	s, _ := newServer(t, 1, func(a *AppConfig) { a.ActivityTimeout = 10; a.PongTimeout = 5 })
	c := dial(t, s, 0)
	start := c.sess.lastSeen
	s.Check(&c.sess, start+int64(9*time.Second))
	c.none()
	s.Check(&c.sess, start+int64(10*time.Second))
	c.mustEvent("pusher:ping")
	s.Check(&c.sess, start+int64(12*time.Second))
	c.none()
	c.send(`{"event":"pusher:pong","data":{}}`)
	s.Check(&c.sess, c.sess.lastSeen+int64(6*time.Second))
	c.none()

	s.Check(&c.sess, c.sess.lastSeen+int64(10*time.Second))
	c.mustEvent("pusher:ping")
	s.Check(&c.sess, c.sess.lastSeen+int64(15*time.Second))
	if got := c.errorCode(); got != CodePongNotReceived {
		t.Fatalf("code %d, want 4201", got)
	}
	if c.conn.closeCode != CodePongNotReceived {
		t.Fatalf("close code %d, want 4201", c.conn.closeCode)
	}
}

func TestShutdown(t *testing.T) {
	s, _ := newServer(t, 1)
	c := dial(t, s, 0)
	s.Reconnect(&c.sess)
	if got := c.errorCode(); got != CodeReconnect || c.conn.closeCode != CodeReconnect {
		t.Fatalf("code %d close %d, want 4200", got, c.conn.closeCode)
	}
}
