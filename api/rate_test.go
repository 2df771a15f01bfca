package api

import (
	"strconv"
	"strings"
	"testing"

	"github.com/revurb/revurb/pusher"
)

// TestEventsOverRate: past max_backend_events_per_second a trigger gets
// 429 with Retry-After and a JSON error, a batch counting each event, and
// the refused events are counted for the app.
func TestEventsOverRate(t *testing.T) {
	f := newFixture(t, Config{})
	limited := pusher.DefaultApp(testAppID, testKey, testSecret)
	limited.MaxBackendEventsPerSecond = 12
	if _, err := f.p.SetApps([]pusher.AppConfig{limited}); err != nil {
		t.Fatal(err)
	}
	batch := `{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"name":"e","channel":"c","data":"x"},`, 10), ",") + `]}`
	if r := f.do("POST", "/apps/app-id/batch_events", nil, batch, signing{}, false); r.status != 200 {
		t.Fatalf("a batch of 10 under 12/s: %d %s", r.status, r.body)
	}
	ok := `{"name":"e","channels":["a","b"],"data":"x"}`
	if r := f.do("POST", eventsPath, nil, ok, signing{}, false); r.status != 200 {
		t.Fatalf("the 11th event: %d %s", r.status, r.body)
	}
	r := f.do("POST", "/apps/app-id/batch_events", nil, batch, signing{}, false)
	if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.HasPrefix(string(r.body), `{"error":"Too many events`) {
		t.Fatalf("over the rate: %d, Retry-After %q, %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("Retry-After %q is not whole seconds", r.header.Get("Retry-After"))
	}
	m := f.do("GET", "/metrics", nil, "", signing{}, true)
	if !strings.Contains(string(m.body), `revurb_api_events_over_rate_total{app="app-id"} 10`) {
		t.Fatalf("metrics do not count the 10 refused events:\n%s", grepLines(string(m.body), "over_rate"))
	}
}

// TestDisabledApp: a disabled app's API answers 403.
func TestDisabledApp(t *testing.T) {
	f := newFixture(t, Config{})
	off := pusher.DefaultApp(testAppID, testKey, testSecret)
	off.Enabled = false
	if _, err := f.p.SetApps([]pusher.AppConfig{off}); err != nil {
		t.Fatal(err)
	}
	r := f.do("POST", eventsPath, nil, `{"name":"e","channel":"c","data":"x"}`, signing{}, false)
	if r.status != 403 || string(r.body) != `{"error":"Application disabled"}` {
		t.Fatalf("disabled app: %d %s", r.status, r.body)
	}
	if r := f.do("GET", "/apps/app-id/channels", nil, "", signing{secret: "wrong"}, false); r.status != 401 {
		t.Fatalf("a bad signature on a disabled app: %d, want 401", r.status)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
