package api

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
)

func TestConsoleRoutes(t *testing.T) {
	off := newFixture(t, Config{})
	if r := off.do("GET", "/console", nil, "", signing{}, true); r.status != 404 {
		t.Errorf("without Console: /console answered %d", r.status)
	}
	f := newFixture(t, Config{Console: true, ConsoleToken: "tok"})
	tests := []struct {
		name, method, path, token string
		signed                    bool
		body                      string
		status                    int
		contains                  string
	}{
		{name: "page", method: "GET", path: "/console", status: 200, contains: "<title>revurb console</title>"},
		{name: "page with a slash", method: "GET", path: "/console/", status: 200, contains: "<title>"},
		{name: "script", method: "GET", path: "/console/console.js", status: 200, contains: "function hmacSHA256"},
		{name: "script from /console/", method: "GET", path: "/console/console/console.js", status: 200, contains: "function md5"},
		{name: "no such asset", method: "GET", path: "/console/nope.js", status: 404},
		{name: "page by POST", method: "POST", path: "/console", status: 405},
		{name: "apps without the token", method: "GET", path: "/console/apps", status: 401},
		{name: "apps with a wrong token", method: "GET", path: "/console/apps", token: "nope", status: 401},
		{name: "apps", method: "GET", path: "/console/apps", token: "tok", status: 200, contains: `{"apps":[{"id":"app-id","key":"app-key","enabled":true}]}`},
		{name: "stream unsigned", method: "GET", path: "/console/apps/app-id/stream", status: 401},
		{name: "stream of an unknown app", method: "GET", path: "/console/apps/nope/stream", token: "tok", status: 404},
		{name: "events with the secret", method: "POST", path: "/console/apps/app-id/events", signed: true, body: `{"name":"e","channel":"c","data":"x"}`, status: 401},
		{name: "events with the token", method: "POST", path: "/console/apps/app-id/events", token: "tok", body: `{"name":"e","channel":"c","data":"x"}`, status: 200, contains: `{}`},
		{name: "events checked as the API checks them", method: "POST", path: "/console/apps/app-id/events", token: "tok", body: `{"name":"e","data":"x"}`, status: 400},
		{name: "stream by POST", method: "POST", path: "/console/apps/app-id/stream", token: "tok", status: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := "http://api.test" + tc.path
			if tc.signed {
				q, _ := signQuery(tc.method, tc.path, nil, []byte(tc.body), signing{}, time.Now())
				url += "?" + q
			}
			req, _ := http.NewRequest(tc.method, url, strings.NewReader(tc.body))
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			res, err := f.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var b strings.Builder
			_, _ = bufio.NewReader(res.Body).WriteTo(&b)
			if res.StatusCode != tc.status || !strings.Contains(b.String(), tc.contains) {
				t.Fatalf("%s %s: %d %q, want %d containing %q", tc.method, tc.path, res.StatusCode, b.String(), tc.status, tc.contains)
			}
		})
	}
}

// TestConsoleStream: a stream signed with the app's secret gets the state
// at once, then the events of the app as they happen; the token opens it
// too; the stream ends when the app is removed.
func TestConsoleStream(t *testing.T) {
	f := newFixture(t, Config{Console: true, ConsoleToken: "tok"})
	q, _ := signQuery("GET", "/console/apps/app-id/stream", nil, nil, signing{}, time.Now())
	res, err := f.client.Get("http://api.test/console/apps/app-id/stream?" + q)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("stream: %d %v", res.StatusCode, res.Header)
	}
	sse := bufio.NewReader(res.Body)
	next := func() (event string, data map[string]any) {
		t.Helper()
		for {
			line, err := sse.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimSpace(line[7:])
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(line[6:]), &data); err != nil {
					t.Fatalf("data %q: %v", line, err)
				}
			case line == "\n":
				return event, data
			}
		}
	}
	if ev, st := next(); ev != "state" || st["connections"] != 0.0 {
		t.Fatalf("first event %s %v, want the state", ev, st)
	}
	if r := f.do("POST", eventsPath, nil, `{"name":"hello","channels":["a","b"],"data":"hi"}`, signing{}, false); r.status != 200 {
		t.Fatalf("trigger: %d %s", r.status, r.body)
	}
	var taps []map[string]any
	for len(taps) < 2 {
		if ev, d := next(); ev == "tap" {
			taps = append(taps, d)
		}
	}
	for i, ch := range []string{"a", "b"} {
		if taps[i]["kind"] != "api_event" || taps[i]["channel"] != ch || taps[i]["event"] != "hello" || taps[i]["data"] != "hi" {
			t.Errorf("tap %d: %v", i, taps[i])
		}
	}
	if _, err := f.p.SetApps([]pusher.AppConfig{pusher.DefaultApp("other", "other-key", "other-secret")}); err != nil {
		t.Fatal(err)
	}
	for {
		if ev, d := next(); ev == "state" && d["removed"] == true {
			break
		}
	}
	if b, err := io.ReadAll(sse); err != nil || len(b) != 0 {
		t.Fatalf("after the app was removed the stream went on: %q, %v", b, err)
	}
}
