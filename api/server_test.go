package api

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/pusher"
)

func TestRoutes(t *testing.T) {
	f := newFixture(t, Config{})
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
	f := newFixture(t, Config{MaxBodySize: 1024})
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

func TestDebugLog(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	f := newFixture(t, Config{Debug: true, Log: newLogger(&buf, &mu)})
	f.do("GET", "/up", nil, "", signing{}, true)
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "method=GET path=/up status=200") {
		t.Errorf("log %q lacks the request", buf.String())
	}
}

func TestShutdown(t *testing.T) {
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	p, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := New(p, Config{})
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
	p, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Config{})
	if err != nil {
		f.Fatal(err)
	}
	if err := p.Attach(&syncLoops{}); err != nil {
		f.Fatal(err)
	}
	s := New(p, Config{MaxBodySize: 64 << 10})
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

// TestConnections: GET /apps/{id}/connections, signed like every /apps
// route, answers the app's open connections as Reverb does.
func TestConnections(t *testing.T) {
	f := newFixture(t, Config{})
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
	f := newFixture(t, Config{Path: "/ws"})
	checkReply(t, f.do("GET", "/ws/up", nil, "", signing{}, true), 200)
	checkReply(t, f.do("GET", "/ws/apps/app-id/connections", nil, "", signing{}, false), 200)
	checkReply(t, f.do("GET", "/apps/app-id/connections", nil, "", signing{}, false), 200)
}

// routePaths builds a path that parseRoute reads as each route, from an
// app id and the channel or user it names, each segment escaped.
var routePaths = map[route]func(app, arg string) string{
	routeEvents:      func(app, _ string) string { return "/apps/" + url.PathEscape(app) + "/events" },
	routeBatchEvents: func(app, _ string) string { return "/apps/" + url.PathEscape(app) + "/batch_events" },
	routeChannels:    func(app, _ string) string { return "/apps/" + url.PathEscape(app) + "/channels" },
	routeConnections: func(app, _ string) string { return "/apps/" + url.PathEscape(app) + "/connections" },
	routeChannel: func(app, arg string) string {
		return "/apps/" + url.PathEscape(app) + "/channels/" + url.PathEscape(arg)
	},
	routeChannelUsers: func(app, arg string) string {
		return "/apps/" + url.PathEscape(app) + "/channels/" + url.PathEscape(arg) + "/users"
	},
	routeTerminate: func(app, arg string) string {
		return "/apps/" + url.PathEscape(app) + "/users/" + url.PathEscape(arg) + "/terminate_connections"
	},
}

// FuzzParseRoute: parseRoute never panics; what it reads from any path,
// written back as a path, reads the same; and a path built for a route
// from any app id and channel or user reads as exactly those.
func FuzzParseRoute(f *testing.F) {
	for _, p := range []string{
		"/apps/app-id/events", "/apps/app-id/events/", "/apps/app-id/batch_events", "/apps/app-id/channels",
		"/apps/app-id/channels/presence-%41/users", "/apps/app-id/channels/%23server-to-user-1",
		"/apps/app-id/channels/bad%20name", "/apps/app-id/users/%2F/terminate_connections",
		"/apps/app-id/users//terminate_connections", "/apps/app-id/connections", "/apps/app-id/nope",
		"/apps/%zz/events", "/up", "/apps/a/b/c/d/e",
	} {
		f.Add(p, "app-id", "presence-a/b", uint8(0))
	}
	routes := make([]route, 0, len(routePaths))
	for r := routeNone + 1; r < routeCount; r++ {
		if routePaths[r] != nil {
			routes = append(routes, r)
		}
	}
	f.Fuzz(func(t *testing.T, path, app, arg string, which uint8) {
		if r, a, g := parseRoute(path); r != routeNone {
			again := routePaths[r](a, g)
			if r2, a2, g2 := parseRoute(again); r2 != r || a2 != a || g2 != g {
				t.Fatalf("%q reads as %d %q %q, written back %q as %d %q %q", path, r, a, g, again, r2, a2, g2)
			}
		}
		r := routes[int(which)%len(routes)]
		p := routePaths[r](app, arg)
		if r != routeChannel && r != routeChannelUsers && r != routeTerminate {
			arg = ""
		}
		if r2, a2, g2 := parseRoute(p); r2 != r || a2 != app || g2 != arg {
			t.Fatalf("%q for route %d, app %q, arg %q reads as %d %q %q", p, r, app, arg, r2, a2, g2)
		}
	})
}
