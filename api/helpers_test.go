package api

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/revurb/revurb/pusher"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	testAppID  = "app-id"
	testKey    = "app-key"
	testSecret = "app-secret"
)

// syncLoops is a one-loop pusher.Loops that runs each task at once, on the
// caller's goroutine, one task at a time.
type syncLoops struct{ mu sync.Mutex }

func (l *syncLoops) Len() int { return 1 }

func (l *syncLoops) Execute(_ int, t pusher.Task) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return t.Run(context.Background())
}

// recConn is a pusher.Conn that records the frames written to it.
type recConn struct {
	mu     sync.Mutex
	frames [][]byte
	closed int
}

func (c *recConn) Write(frame []byte) {
	c.mu.Lock()
	c.frames = append(c.frames, append([]byte(nil), frame...))
	c.mu.Unlock()
}

func (c *recConn) Close(code int, _ string) {
	c.mu.Lock()
	c.closed = code
	c.mu.Unlock()
}

// take returns the JSON payloads written since the last take.
func (c *recConn) take(t *testing.T) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, f := range c.frames {
		out = append(out, string(framePayload(t, f)))
	}
	c.frames = nil
	return out
}

func (c *recConn) closeCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// framePayload returns the payload of an unmasked server text frame.
func framePayload(t *testing.T, f []byte) []byte {
	t.Helper()
	if len(f) < 2 || f[0] != 0x81 || f[1]&0x80 != 0 {
		t.Fatalf("not an unmasked final text frame: % x", f[:min(len(f), 4)])
	}
	n, off := int(f[1]&0x7f), 2
	switch n {
	case 126:
		n, off = int(f[2])<<8|int(f[3]), 4
	case 127:
		t.Fatalf("unexpected 64-bit frame length")
	}
	if len(f) != off+n {
		t.Fatalf("frame length %d, header says %d", len(f)-off, n)
	}
	return f[off:]
}

// fixture is an API server on an in-memory listener in front of a pusher
// server with one app and one loop.
type fixture struct {
	t      *testing.T
	p      *pusher.Server
	app    *pusher.App
	api    *Server
	client *http.Client
}

func newFixture(t *testing.T, opts Config) *fixture {
	t.Helper()
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	p, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(&syncLoops{}); err != nil {
		t.Fatal(err)
	}
	s := New(p, opts)
	ln := fasthttputil.NewInmemoryListener()
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return ln.Dial() }}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		if err := s.Shutdown(shutdownCtx(t)); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fixture{t: t, p: p, app: p.AppByID(app.ID), api: s, client: &http.Client{Transport: tr}}
}

// signing says how to sign a request; the zero value signs it as a Pusher
// SDK does. "-" leaves a parameter out.
type signing struct {
	key       string
	timestamp string
	version   string
	md5       string
	secret    string
	signature string
	// extra is added to the query after signing.
	extra string
}

// signQuery returns the escaped query of a request signed as the Pusher
// server SDKs sign it: every parameter but auth_signature, sorted, joined
// k=v& with values unescaped; HMAC-SHA256 of METHOD\nPATH\nQUERY.
func signQuery(method, path string, params map[string]string, body []byte, o signing, now time.Time) (query, ts string) {
	all := map[string]string{}
	for k, v := range params {
		all[k] = v
	}
	set := func(k, v, def string) {
		switch v {
		case "-":
		case "":
			all[k] = def
		default:
			all[k] = v
		}
	}
	ts = strconv.FormatInt(now.Unix(), 10)
	set("auth_key", o.key, testKey)
	set("auth_timestamp", o.timestamp, ts)
	set("auth_version", o.version, "1.0")
	if len(body) > 0 || (o.md5 != "" && o.md5 != "-") {
		sum := md5.Sum(body)
		set("body_md5", o.md5, hex.EncodeToString(sum[:]))
	}
	if v := all["auth_timestamp"]; v != "" {
		ts = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(k + "=" + all[k])
	}
	secret := testSecret
	if o.secret != "" {
		secret = o.secret
	}
	v := url.Values{}
	for k, x := range all {
		v.Set(k, x)
	}
	switch o.signature {
	case "":
		v.Set("auth_signature", pusher.Sign(secret, method+"\n"+path+"\n"+sb.String()))
	case "-":
	default:
		v.Set("auth_signature", o.signature)
	}
	query = v.Encode()
	if o.extra != "" {
		query += "&" + o.extra
	}
	return query, ts
}

// response is what a test looks at in a reply.
type response struct {
	status int
	header http.Header
	body   []byte
	ts     string // auth_timestamp sent, masked in goldens
}

// do sends a request; path is also what is signed unless unsigned.
func (f *fixture) do(method, path string, params map[string]string, body string, o signing, unsigned bool) response {
	f.t.Helper()
	target := "http://api.test" + path
	var ts string
	if !unsigned {
		var q string
		q, ts = signQuery(method, path, params, []byte(body), o, time.Now())
		target += "?" + q
	}
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, target, rb)
	if err != nil {
		f.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, ts: ts}
}

// golden compares r with testdata/name.golden, or rewrites it with -update.
// The timestamp the request was signed with is masked.
func golden(t *testing.T, name string, r response) {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("HTTP " + strconv.Itoa(r.status) + "\n")
	sb.WriteString("Content-Type: " + r.header.Get("Content-Type") + "\n")
	if a := r.header.Get("Allow"); a != "" {
		sb.WriteString("Allow: " + a + "\n")
	}
	body := string(r.body)
	if r.ts != "" {
		body = strings.ReplaceAll(body, r.ts, "TIMESTAMP")
	}
	sb.WriteString("\n" + body + "\n")
	got := sb.String()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("reply differs from %s:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// checkReply asserts what every reply shares: the status, a JSON body and
// its content type, and an "error" member exactly when the status is not
// 200.
func checkReply(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Errorf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	_, isErr := v["error"]
	if isErr != (r.status != http.StatusOK) {
		t.Errorf("status %d with body %s", r.status, r.body)
	}
}

const eventsPath = "/apps/" + testAppID + "/events"

// session is a WebSocket connection as the pusher core sees it.
type session struct {
	sess pusher.Session
	conn recConn
}

func (f *fixture) open(t *testing.T) *session {
	t.Helper()
	s := &session{}
	if !f.p.Open(&s.sess, &s.conn, 0, testKey, "7", "") {
		t.Fatal("Open failed")
	}
	s.conn.take(t)
	return s
}

// subscribe joins channel, as a presence member userID when it is a
// presence channel.
func (f *fixture) subscribe(t *testing.T, s *session, channel, userID string) {
	t.Helper()
	data := map[string]string{"channel": channel}
	switch kind, _ := pusher.ChannelKind(channel); kind {
	case pusher.Presence:
		cd := `{"user_id":"` + userID + `"}`
		data["channel_data"] = cd
		data["auth"] = testKey + ":" + pusher.Sign(testSecret, s.sess.ID().String()+":"+channel+":"+cd)
	case pusher.Private, pusher.Encrypted:
		data["auth"] = testKey + ":" + pusher.Sign(testSecret, s.sess.ID().String()+":"+channel)
	}
	f.send(t, s, "pusher:subscribe", data)
	got := s.conn.take(t)
	if len(got) == 0 || !strings.Contains(got[0], "subscription_succeeded") {
		t.Fatalf("subscribe %s: %v", channel, got)
	}
}

func (f *fixture) signin(t *testing.T, s *session, userID string) {
	t.Helper()
	ud := `{"id":"` + userID + `"}`
	f.send(t, s, "pusher:signin", map[string]string{
		"user_data": ud,
		"auth":      testKey + ":" + pusher.Sign(testSecret, s.sess.ID().String()+"::user::"+ud),
	})
	if got := s.conn.take(t); len(got) == 0 || !strings.Contains(got[0], "signin_success") {
		t.Fatalf("signin %s: %v", userID, got)
	}
}

func (f *fixture) send(t *testing.T, s *session, event string, data any) {
	t.Helper()
	msg, err := json.Marshal(map[string]any{"event": event, "data": data})
	if err != nil {
		t.Fatal(err)
	}
	f.p.Handle(&s.sess, msg)
}

func expectFrames(t *testing.T, who string, s *session, want ...string) {
	t.Helper()
	got := s.conn.take(t)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s received\n%s\nwant\n%s", who, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// newLogger returns a logger writing to w under mu.
func newLogger(w io.Writer, mu *sync.Mutex) *slog.Logger {
	return slog.New(slog.NewTextHandler(lockedWriter{w: w, mu: mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// shutdownCtx bounds a test server's Shutdown.
func shutdownCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}
