package api

import (
	"bytes"
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

	"github.com/valyala/fasthttp"
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

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	p, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Options{})
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

func TestRoutes(t *testing.T) {
	f := newFixture(t, Options{})
	ok := `{"name":"my-event","channels":["my-channel"],"data":"{\"a\":1}"}`
	long := strings.Repeat("x", 201)
	manyChannels := `{"name":"e","data":"","channels":[` + strings.Repeat(`"c",`, 100) + `"c"]}`
	tests := []struct {
		name     string
		method   string
		path     string
		params   map[string]string
		body     string
		sign     signing
		unsigned bool
		status   int
	}{
		// Health, routing, methods, apps.
		{name: "up", method: "GET", path: "/up", unsigned: true, status: 200},
		{name: "up_405", method: "POST", path: "/up", unsigned: true, status: 405},
		{name: "route_404", method: "GET", path: "/nope", unsigned: true, status: 404},
		{name: "route_404_apps", method: "GET", path: "/apps/app-id/nope", status: 404},
		{name: "route_404_trailing_slash", method: "POST", path: "/apps/app-id/events/", body: ok, status: 404},
		{name: "app_404", method: "POST", path: "/apps/nope/events", body: ok, status: 404},
		{name: "events_405", method: "GET", path: eventsPath, status: 405},
		{name: "channels_405", method: "POST", path: "/apps/app-id/channels", body: "{}", status: 405},
		{name: "terminate_405", method: "GET", path: "/apps/app-id/users/1/terminate_connections", status: 405},

		// Authentication: 401 for each reason.
		{name: "auth_missing_key", method: "POST", path: eventsPath, body: ok, sign: signing{key: "-"}, status: 401},
		{name: "auth_wrong_key", method: "POST", path: eventsPath, body: ok, sign: signing{key: "other-key"}, status: 401},
		{name: "auth_missing_timestamp", method: "POST", path: eventsPath, body: ok, sign: signing{timestamp: "-"}, status: 401},
		{name: "auth_bad_timestamp", method: "POST", path: eventsPath, body: ok, sign: signing{timestamp: "soon"}, status: 401},
		{name: "auth_old_timestamp", method: "POST", path: eventsPath, body: ok,
			sign: signing{timestamp: strconv.FormatInt(time.Now().Unix()-700, 10)}, status: 401},
		{name: "auth_future_timestamp", method: "POST", path: eventsPath, body: ok,
			sign: signing{timestamp: strconv.FormatInt(time.Now().Unix()+700, 10)}, status: 401},
		{name: "auth_bad_version", method: "POST", path: eventsPath, body: ok, sign: signing{version: "2.0"}, status: 401},
		{name: "auth_missing_body_md5", method: "POST", path: eventsPath, body: ok, sign: signing{md5: "-"}, status: 401},
		{name: "auth_wrong_body_md5", method: "POST", path: eventsPath, body: ok,
			sign: signing{md5: "0123456789abcdef0123456789abcdef"}, status: 401},
		{name: "auth_missing_signature", method: "POST", path: eventsPath, body: ok, sign: signing{signature: "-"}, status: 401},
		{name: "auth_wrong_secret", method: "POST", path: eventsPath, body: ok, sign: signing{secret: "not-the-secret"}, status: 401},
		{name: "auth_unsigned_param", method: "POST", path: eventsPath, body: ok, sign: signing{extra: "extra=1"}, status: 401},
		{name: "auth_duplicate_param", method: "POST", path: eventsPath, body: ok, sign: signing{extra: "auth_key=app-key"}, status: 401},
		{name: "auth_no_version", method: "POST", path: eventsPath, body: ok, sign: signing{version: "-"}, status: 200},

		// POST events.
		{name: "events", method: "POST", path: eventsPath, body: ok, status: 200},
		{name: "events_channel", method: "POST", path: eventsPath, body: `{"name":"e","channel":"c","data":"x"}`, status: 200},
		{name: "events_server_to_user", method: "POST", path: eventsPath,
			body: `{"name":"e","channel":"#server-to-user-7","data":"x"}`, status: 200},
		{name: "events_socket_id", method: "POST", path: eventsPath,
			body: `{"name":"e","channel":"c","data":"x","socket_id":"123.456"}`, status: 200},
		{name: "events_info", method: "POST", path: eventsPath,
			body: `{"name":"e","channels":["presence-a","b","b"],"data":"x","info":"user_count,subscription_count"}`, status: 200},
		{name: "events_empty_body", method: "POST", path: eventsPath, status: 400},
		{name: "events_bad_json", method: "POST", path: eventsPath, body: `{"name":`, status: 400},
		{name: "events_not_object", method: "POST", path: eventsPath, body: `[1,2]`, status: 400},
		{name: "events_data_not_string", method: "POST", path: eventsPath, body: `{"name":"e","channel":"c","data":{"a":1}}`, status: 400},
		{name: "events_channels_not_array", method: "POST", path: eventsPath, body: `{"name":"e","channels":"c","data":"x"}`, status: 400},
		{name: "events_channels_not_strings", method: "POST", path: eventsPath, body: `{"name":"e","channels":[1],"data":"x"}`, status: 400},
		{name: "events_missing_name", method: "POST", path: eventsPath, body: `{"channel":"c","data":"x"}`, status: 400},
		{name: "events_name_too_long", method: "POST", path: eventsPath, body: `{"name":"` + long + `","channel":"c","data":"x"}`, status: 400},
		{name: "events_missing_channels", method: "POST", path: eventsPath, body: `{"name":"e","data":"x"}`, status: 400},
		{name: "events_empty_channels", method: "POST", path: eventsPath, body: `{"name":"e","channels":[],"data":"x"}`, status: 400},
		{name: "events_channels_and_channel", method: "POST", path: eventsPath, body: `{"name":"e","channels":["a"],"channel":"b","data":"x"}`, status: 400},
		{name: "events_too_many_channels", method: "POST", path: eventsPath, body: manyChannels, status: 400},
		{name: "events_bad_channel_name", method: "POST", path: eventsPath, body: `{"name":"e","channels":["ok","not ok"],"data":"x"}`, status: 400},
		{name: "events_channel_name_too_long", method: "POST", path: eventsPath,
			body: `{"name":"e","channel":"` + strings.Repeat("c", 165) + `","data":"x"}`, status: 400},
		{name: "events_missing_data", method: "POST", path: eventsPath, body: `{"name":"e","channel":"c"}`, status: 400},
		{name: "events_bad_socket_id", method: "POST", path: eventsPath, body: `{"name":"e","channel":"c","data":"x","socket_id":"1.x"}`, status: 400},
		{name: "events_bad_info", method: "POST", path: eventsPath, body: `{"name":"e","channel":"c","data":"x","info":"members"}`, status: 400},
		{name: "events_data_too_large", method: "POST", path: eventsPath,
			body: `{"name":"e","channel":"c","data":"` + strings.Repeat("d", 10241) + `"}`, status: 413},
		{name: "events_data_at_limit", method: "POST", path: eventsPath,
			body: `{"name":"e","channel":"c","data":"` + strings.Repeat("d", 10240) + `"}`, status: 200},

		// POST batch_events.
		{name: "batch", method: "POST", path: "/apps/app-id/batch_events",
			body: `{"batch":[{"name":"e","channel":"a","data":"1"},{"name":"e","channel":"b","data":"2"}]}`, status: 200},
		{name: "batch_info", method: "POST", path: "/apps/app-id/batch_events",
			body: `{"batch":[{"name":"e","channel":"presence-a","data":"1","info":"user_count,subscription_count"},{"name":"e","channel":"b","data":"2"},{"name":"e","channel":"c","data":"3","info":"subscription_count"}]}`, status: 200},
		{name: "batch_empty", method: "POST", path: "/apps/app-id/batch_events", body: `{"batch":[]}`, status: 200},
		{name: "batch_missing", method: "POST", path: "/apps/app-id/batch_events", body: `{}`, status: 400},
		{name: "batch_not_array", method: "POST", path: "/apps/app-id/batch_events", body: `{"batch":{}}`, status: 400},
		{name: "batch_too_large", method: "POST", path: "/apps/app-id/batch_events",
			body: `{"batch":[` + strings.Repeat(`{"name":"e","channel":"a","data":"1"},`, 10) + `{"name":"e","channel":"a","data":"1"}]}`, status: 400},
		{name: "batch_bad_event", method: "POST", path: "/apps/app-id/batch_events",
			body: `{"batch":[{"name":"e","channel":"a","data":"1"},{"name":"e","data":"2"}]}`, status: 400},
		{name: "batch_channels_field", method: "POST", path: "/apps/app-id/batch_events",
			body: `{"batch":[{"name":"e","channels":["a"],"data":"1"}]}`, status: 400},
		{name: "batch_data_too_large", method: "POST", path: "/apps/app-id/batch_events",
			body: `{"batch":[{"name":"e","channel":"a","data":"1"},{"name":"e","channel":"b","data":"` + strings.Repeat("d", 10241) + `"}]}`, status: 413},

		// GET channels.
		{name: "channels", method: "GET", path: "/apps/app-id/channels", status: 200},
		{name: "channels_presence_user_count", method: "GET", path: "/apps/app-id/channels",
			params: map[string]string{"filter_by_prefix": "presence-", "info": "user_count"}, status: 200},
		{name: "channels_user_count_without_prefix", method: "GET", path: "/apps/app-id/channels",
			params: map[string]string{"info": "user_count"}, status: 400},
		{name: "channels_user_count_other_prefix", method: "GET", path: "/apps/app-id/channels",
			params: map[string]string{"filter_by_prefix": "private-", "info": "user_count"}, status: 400},
		{name: "channels_bad_info", method: "GET", path: "/apps/app-id/channels",
			params: map[string]string{"info": "cache"}, status: 400},

		// GET channels/{name}.
		{name: "channel", method: "GET", path: "/apps/app-id/channels/my-channel", status: 200},
		{name: "channel_presence_counts", method: "GET", path: "/apps/app-id/channels/presence-a",
			params: map[string]string{"info": "user_count,subscription_count"}, status: 200},
		{name: "channel_subscription_count", method: "GET", path: "/apps/app-id/channels/my-channel",
			params: map[string]string{"info": "subscription_count"}, status: 200},
		{name: "channel_user_count_not_presence", method: "GET", path: "/apps/app-id/channels/my-channel",
			params: map[string]string{"info": "user_count"}, status: 400},
		{name: "channel_cache_not_cache", method: "GET", path: "/apps/app-id/channels/my-channel",
			params: map[string]string{"info": "cache"}, status: 400},
		{name: "channel_cache_miss", method: "GET", path: "/apps/app-id/channels/cache-none",
			params: map[string]string{"info": "cache"}, status: 200},
		{name: "channel_bad_info", method: "GET", path: "/apps/app-id/channels/my-channel",
			params: map[string]string{"info": "members"}, status: 400},
		{name: "channel_invalid_name", method: "GET", path: "/apps/app-id/channels/bad%20name", status: 400},
		{name: "channel_escaped_name", method: "GET", path: "/apps/app-id/channels/%23server-to-user-1", status: 200},

		// GET channels/{name}/users.
		{name: "users", method: "GET", path: "/apps/app-id/channels/presence-a/users", status: 200},
		{name: "users_not_presence", method: "GET", path: "/apps/app-id/channels/private-a/users", status: 400},
		{name: "users_invalid_name", method: "GET", path: "/apps/app-id/channels/presence-%21/users", status: 400},

		// POST users/{id}/terminate_connections.
		{name: "terminate", method: "POST", path: "/apps/app-id/users/42/terminate_connections", body: "{}", status: 200},
		{name: "terminate_empty_user", method: "POST", path: "/apps/app-id/users//terminate_connections", body: "{}", status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(tc.method, tc.path, tc.params, tc.body, tc.sign, tc.unsigned)
			checkReply(t, r, tc.status)
			if tc.status == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			golden(t, tc.name, r)
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t, Options{MaxBodySize: 1024})
	body := `{"name":"e","channel":"c","data":"` + strings.Repeat("d", 2000) + `"}`
	r := f.do("POST", eventsPath, nil, body, signing{}, false)
	checkReply(t, r, 413)
	golden(t, "body_too_large", r)

	// The handler enforces the cap too when fasthttp's limit is not in
	// front of it.
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	q, _ := signQuery("POST", eventsPath, nil, []byte(body), signing{}, time.Now())
	ctx.Request.SetRequestURI(eventsPath + "?" + q)
	ctx.Request.SetBodyString(body)
	f.api.Handler()(&ctx)
	if got := ctx.Response.StatusCode(); got != 413 {
		t.Errorf("handler status %d, want 413", got)
	}
}

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

// TestOccupied runs the API against channels with subscribers: counts,
// users, delivery, socket_id exclusion, all-or-nothing batches, the cache
// and terminate_connections.
func TestOccupied(t *testing.T) {
	f := newFixture(t, Options{})
	a, b, c := f.open(t), f.open(t), f.open(t)
	f.subscribe(t, a, "presence-room", "1")
	f.subscribe(t, a, "news", "")
	f.subscribe(t, a, "cache-last", "")
	b.conn.take(t)
	f.subscribe(t, b, "presence-room", "2")
	f.subscribe(t, c, "presence-room", "1") // user 1's second connection
	for _, s := range []*session{a, b, c} {
		s.conn.take(t) // member_added and cache_miss frames
	}

	get := func(name, path string, params map[string]string) {
		t.Helper()
		r := f.do("GET", path, params, "", signing{}, false)
		checkReply(t, r, 200)
		golden(t, name, r)
	}
	get("occupied_channels", "/apps/app-id/channels", nil)
	get("occupied_channels_presence", "/apps/app-id/channels",
		map[string]string{"filter_by_prefix": "presence-", "info": "user_count,subscription_count"})
	get("occupied_channel", "/apps/app-id/channels/presence-room",
		map[string]string{"info": "user_count,subscription_count"})
	get("occupied_channel_plain", "/apps/app-id/channels/news", nil)
	get("occupied_users", "/apps/app-id/channels/presence-room/users", nil)

	t.Run("socket_id excluded", func(t *testing.T) {
		body := `{"name":"ev","channel":"presence-room","data":"{\"x\":1}","socket_id":"` + a.sess.ID().String() + `"}`
		checkReply(t, f.do("POST", eventsPath, nil, body, signing{}, false), 200)
		want := `{"event":"ev","channel":"presence-room","data":"{\"x\":1}"}`
		expectFrames(t, "a", a)
		expectFrames(t, "b", b, want)
		expectFrames(t, "c", c, want)
	})

	t.Run("events info", func(t *testing.T) {
		body := `{"name":"ev","channels":["presence-room","news","empty"],"data":"d","info":"user_count,subscription_count"}`
		r := f.do("POST", eventsPath, nil, body, signing{}, false)
		checkReply(t, r, 200)
		golden(t, "occupied_events_info", r)
		expectFrames(t, "a", a,
			`{"event":"ev","channel":"presence-room","data":"d"}`,
			`{"event":"ev","channel":"news","data":"d"}`)
		expectFrames(t, "b", b, `{"event":"ev","channel":"presence-room","data":"d"}`)
		c.conn.take(t)
	})

	t.Run("batch all or nothing", func(t *testing.T) {
		bad := `{"batch":[{"name":"ev","channel":"news","data":"1"},{"name":"ev","channel":"bad name","data":"2"}]}`
		checkReply(t, f.do("POST", "/apps/app-id/batch_events", nil, bad, signing{}, false), 400)
		expectFrames(t, "a", a)

		good := `{"batch":[{"name":"ev","channel":"news","data":"1"},{"name":"ev","channel":"presence-room","data":"2","info":"user_count"}]}`
		r := f.do("POST", "/apps/app-id/batch_events", nil, good, signing{}, false)
		checkReply(t, r, 200)
		golden(t, "occupied_batch_info", r)
		expectFrames(t, "a", a,
			`{"event":"ev","channel":"news","data":"1"}`,
			`{"event":"ev","channel":"presence-room","data":"2"}`)
		b.conn.take(t)
		c.conn.take(t)
	})

	t.Run("cache", func(t *testing.T) {
		body := `{"name":"ev","channel":"cache-last","data":"{\"v\":\"<\u00e9>\"}"}`
		checkReply(t, f.do("POST", eventsPath, nil, body, signing{}, false), 200)
		expectFrames(t, "a", a, `{"event":"ev","channel":"cache-last","data":"{\"v\":\"<é>\"}"}`)
		get("occupied_channel_cache", "/apps/app-id/channels/cache-last",
			map[string]string{"info": "cache,subscription_count"})
		// A cache channel keeps its event with nobody subscribed.
		body = `{"name":"ev","channel":"cache-empty","data":"kept"}`
		checkReply(t, f.do("POST", eventsPath, nil, body, signing{}, false), 200)
		get("channel_cache_unoccupied", "/apps/app-id/channels/cache-empty", map[string]string{"info": "cache"})
	})

	t.Run("terminate", func(t *testing.T) {
		d, e := f.open(t), f.open(t)
		f.signin(t, d, "42")
		f.signin(t, e, "43")
		checkReply(t, f.do("POST", "/apps/app-id/users/42/terminate_connections", nil, "{}", signing{}, false), 200)
		if got := d.conn.closeCode(); got != 4009 {
			t.Errorf("user 42 closed with %d, want 4009", got)
		}
		if got := e.conn.closeCode(); got != 0 {
			t.Errorf("user 43 closed with %d", got)
		}
		d.conn.take(t)
		f.p.Close(&d.sess) // as package loop does once the socket is closed
		get("occupied_channels_hide_server", "/apps/app-id/channels", nil)
		get("occupied_channels_server", "/apps/app-id/channels", map[string]string{"filter_by_prefix": "#server-to-user-"})

		body := `{"name":"ev","channel":"#server-to-user-43","data":"hi"}`
		checkReply(t, f.do("POST", eventsPath, nil, body, signing{}, false), 200)
		expectFrames(t, "e", e, `{"event":"ev","channel":"#server-to-user-43","data":"hi"}`)
	})
}

func TestDebugLog(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	f := newFixture(t, Options{Debug: true, Log: newLogger(&buf, &mu)})
	f.do("GET", "/up", nil, "", signing{}, true)
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "method=GET path=/up status=200") {
		t.Errorf("log %q lacks the request", buf.String())
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

func TestShutdown(t *testing.T) {
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	p, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(p, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/up")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := s.Shutdown(shutdownCtx(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
}

// FuzzHandler feeds arbitrary paths and bodies, validly signed, to the
// handler: it must answer every one with a JSON object and a real status,
// and never panic.
func FuzzHandler(f *testing.F) {
	f.Add("POST", "/apps/app-id/events", "", []byte(`{"name":"e","channels":["a","presence-b"],"data":"x","info":"user_count"}`))
	f.Add("POST", "/apps/app-id/batch_events", "", []byte(`{"batch":[{"name":"e","channel":"a","data":"x","socket_id":"1.2"}]}`))
	f.Add("GET", "/apps/app-id/channels/presence-%41/users", "", []byte(nil))
	f.Add("GET", "/apps/app-id/channels/cache-x", "cache,subscription_count", []byte(nil))
	f.Add("GET", "/apps/app-id/channels", "user_count", []byte(nil))
	f.Add("POST", "/apps/app-id/users/%2F/terminate_connections", "", []byte(`{}`))
	f.Add("POST", "/apps/app-id/events", "", []byte(`{"name":"\ud800","channel":"a","data":"\u0000"}`))
	f.Add("POST", "/apps/app-id/batch_events", "", []byte(`{"batch":[null,{"name":1}]}`))

	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	p, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Options{})
	if err != nil {
		f.Fatal(err)
	}
	if err := p.Attach(&syncLoops{}); err != nil {
		f.Fatal(err)
	}
	s := New(p, Options{MaxBodySize: 64 << 10})
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method, path, info string, body []byte) {
		var req fasthttp.Request
		req.Header.SetMethod(method)
		req.SetRequestURI(path)
		signedPath := string(req.URI().PathOriginal())
		q, _ := signQuery(string(req.Header.Method()), signedPath, map[string]string{"info": info}, body, signing{}, time.Now())
		req.URI().SetQueryString(q)
		req.SetBody(body)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, nil, nil)
		h(&ctx)
		st := ctx.Response.StatusCode()
		if st != 200 && (st < 400 || st > 499) {
			t.Fatalf("status %d", st)
		}
		if ct := string(ctx.Response.Header.ContentType()); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		var v map[string]any
		if err := json.Unmarshal(ctx.Response.Body(), &v); err != nil {
			t.Fatalf("body %q is not a JSON object: %v", ctx.Response.Body(), err)
		}
		if _, isErr := v["error"]; isErr != (st != 200) {
			t.Fatalf("status %d with body %s", st, ctx.Response.Body())
		}
	})
}

// shutdownCtx bounds a test server's Shutdown.
func shutdownCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestConnections: GET /apps/{id}/connections, signed like every /apps
// route, answers the app's open connections as Reverb does.
func TestConnections(t *testing.T) {
	f := newFixture(t, Options{})
	r := f.do("GET", "/apps/app-id/connections", nil, "", signing{}, false)
	checkReply(t, r, 200)
	if string(r.body) != `{"connections":0}` {
		t.Fatalf("body %s", r.body)
	}
	a, b := f.open(t), f.open(t)
	r = f.do("GET", "/apps/app-id/connections", nil, "", signing{}, false)
	if string(r.body) != `{"connections":2}` {
		t.Fatalf("body %s", r.body)
	}
	f.p.Close(&a.sess)
	f.p.Close(&b.sess)
	r = f.do("GET", "/apps/app-id/connections", nil, "", signing{}, false)
	if string(r.body) != `{"connections":0}` {
		t.Fatalf("after the closes: %s", r.body)
	}
	checkReply(t, f.do("GET", "/apps/app-id/connections", nil, "", signing{}, true), 401)
	checkReply(t, f.do("POST", "/apps/app-id/connections", nil, "", signing{}, false), 405)
}

// TestPathPrefix: behind a proxy that forwards a sub-path, the routes
// answer with the prefix, signed with it or without.
func TestPathPrefix(t *testing.T) {
	f := newFixture(t, Options{Path: "/ws"})
	checkReply(t, f.do("GET", "/ws/up", nil, "", signing{}, true), 200)
	checkReply(t, f.do("GET", "/ws/apps/app-id/connections", nil, "", signing{}, false), 200)
	checkReply(t, f.do("GET", "/apps/app-id/connections", nil, "", signing{}, false), 200)
}
