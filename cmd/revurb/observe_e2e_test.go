package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/revurb/revurb/pusher"
)

// hookReceiver is the app's webhook endpoint in a test: it checks each
// POST's signature, fails the first fail attempts with 500, and keeps the
// events of the others.
type hookReceiver struct {
	mu     sync.Mutex
	fail   int
	events []map[string]any
	bad    []string
	srv    *httptest.Server
}

func newHookReceiver(t *testing.T, fail int) *hookReceiver {
	h := &hookReceiver{fail: fail}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get("X-Pusher-Key") != "app-key" || r.Header.Get("X-Pusher-Signature") != pusher.Sign("app-secret", string(body)) {
			h.bad = append(h.bad, string(body))
		}
		if h.fail > 0 {
			h.fail--
			w.WriteHeader(500)
			return
		}
		var p struct {
			Events []map[string]any `json:"events"`
		}
		_ = json.Unmarshal(body, &p)
		h.events = append(h.events, p.Events...)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// named returns the events received named name, on channel if not "".
func (h *hookReceiver) named(name, channel string) []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []map[string]any
	for _, e := range h.events {
		if e["name"] == name && (channel == "" || e["channel"] == channel) {
			out = append(out, e)
		}
	}
	return out
}

const allHooks = "[channel_occupied, channel_vacated, member_added, member_removed, client_event, cache_miss, subscription_count]"

// TestWebhooksAndMetrics: known traffic through the real binary — presence
// joins and leaves, a client event, a cache miss, triggers — reaches the
// app's webhook endpoint, signed, past a failure it retries through; and
// /metrics, scraped and parsed, counts it all.
func TestWebhooksAndMetrics(t *testing.T) {
	t.Parallel()
	h := newHookReceiver(t, 1)
	cfg := writeConfig(t, "webhook_delay: 300ms", ", webhooks: [{url: \""+h.srv.URL+"/hook\", event_types: "+allHooks+"}]")
	srv := startServer(t, serverConfig{Args: []string{"--config", cfg}})

	join := func(user string) *wsConn {
		c := dialWS(t, srv, defaultPath)
		id := c.expectEstablished()
		cd := `{"user_id":"` + user + `"}`
		msg, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{
			"channel": "presence-room", "auth": "app-key:" + pusher.Sign("app-secret", id+":presence-room:"+cd), "channel_data": cd}})
		c.sendText(string(msg))
		if m := c.readMessage(); m["event"] != "pusher_internal:subscription_succeeded" {
			t.Fatalf("join: %v", m)
		}
		return c
	}
	ann := join("ann")
	bob := join("bob")
	ann.readMessage() // member_added bob
	// A client event on the presence channel, and a cache miss.
	ann.sendText(`{"event":"client-wave","channel":"presence-room","data":{"hi":1}}`)
	bob.readMessage()
	ann.sendText(`{"event":"pusher:subscribe","data":{"channel":"cache-news"}}`)
	ann.readMessage()
	ann.readMessage() // pusher:cache_miss
	for i := 0; i < 3; i++ {
		if code, _ := signedPost(t, srv, "/apps/app-id/events", `{"name":"e","channel":"presence-room","data":"x"}`); code != 200 {
			t.Fatal(code)
		}
	}
	bob.c.Close()
	waitFor(t, "member_removed bob", func() bool { return len(h.named("member_removed", "presence-room")) == 1 })
	ann.c.Close()
	waitFor(t, "channel_vacated", func() bool { return len(h.named("channel_vacated", "presence-room")) == 1 })
	for _, want := range []struct{ name, channel string }{
		{"channel_occupied", "presence-room"}, {"member_added", "presence-room"}, {"client_event", "presence-room"},
		{"cache_miss", "cache-news"}, {"channel_occupied", "cache-news"}, {"subscription_count", "cache-news"},
	} {
		if len(h.named(want.name, want.channel)) == 0 {
			t.Errorf("no %s webhook for %s; got %v", want.name, want.channel, h.events)
		}
	}
	if got := h.named("member_added", "presence-room"); len(got) != 2 {
		t.Errorf("member_added %v, want ann and bob", got)
	}
	if ce := h.named("client_event", "presence-room"); len(ce) == 1 && (ce[0]["event"] != "client-wave" || ce[0]["data"] != `{"hi":1}` || ce[0]["user_id"] != "ann" || ce[0]["socket_id"] == nil) {
		t.Errorf("client_event %v", ce[0])
	}
	if len(h.bad) > 0 {
		t.Errorf("webhooks with a wrong key or signature: %v", h.bad)
	}

	m := scrape(t, "http://"+srv.apiAddr()+"/metrics")
	at := func(family string, labels ...string) float64 {
		t.Helper()
		f := m[family]
		if f == nil {
			t.Fatalf("no family %s", family)
		}
		total := 0.0
		for _, metric := range f.Metric {
			if !hasLabels(metric, labels...) {
				continue
			}
			switch {
			case metric.Counter != nil:
				total += metric.Counter.GetValue()
			case metric.Gauge != nil:
				total += metric.Gauge.GetValue()
			case metric.Histogram != nil:
				total += float64(metric.Histogram.GetSampleCount())
			}
		}
		return total
	}
	kinds := map[string]dto.MetricType{
		"revurb_connections": dto.MetricType_GAUGE, "revurb_connections_opened_total": dto.MetricType_COUNTER,
		"revurb_connections_closed_total": dto.MetricType_COUNTER, "revurb_messages_received_total": dto.MetricType_COUNTER,
		"revurb_messages_sent_total": dto.MetricType_COUNTER, "revurb_bytes_received_total": dto.MetricType_COUNTER,
		"revurb_bytes_sent_total": dto.MetricType_COUNTER, "revurb_subscriptions": dto.MetricType_GAUGE,
		"revurb_channels": dto.MetricType_GAUGE, "revurb_client_events_total": dto.MetricType_COUNTER,
		"revurb_broadcasts_total": dto.MetricType_COUNTER, "revurb_api_requests_total": dto.MetricType_COUNTER,
		"revurb_api_request_duration_seconds": dto.MetricType_HISTOGRAM, "revurb_webhooks_sent_total": dto.MetricType_COUNTER,
		"revurb_webhooks_failed_total": dto.MetricType_COUNTER, "revurb_webhook_queue_depth": dto.MetricType_GAUGE,
		"revurb_slow_consumer_closes_total": dto.MetricType_COUNTER, "revurb_backpressure_waits_total": dto.MetricType_COUNTER,
		"revurb_backpressure_rejections_total": dto.MetricType_COUNTER, "go_goroutines": dto.MetricType_GAUGE,
		"process_resident_memory_bytes": dto.MetricType_GAUGE,
	}
	for name, kind := range kinds {
		if f := m[name]; f == nil || f.GetType() != kind {
			t.Errorf("family %s: %v, want a %v", name, f, kind)
		}
	}
	switch {
	case at("revurb_connections_opened_total") < 2:
		t.Errorf("opened %v", at("revurb_connections_opened_total"))
	case at("revurb_connections_closed_total", "code", "1006") < 2: // closed without a close frame
		t.Errorf("closed %v", m["revurb_connections_closed_total"])
	case at("revurb_client_events_total") != 1:
		t.Errorf("client events %v", at("revurb_client_events_total"))
	case at("revurb_broadcasts_total") != 3:
		t.Errorf("broadcasts %v", at("revurb_broadcasts_total"))
	case at("revurb_api_requests_total", "route", "events", "status", "200") != 3:
		t.Errorf("api requests %v", m["revurb_api_requests_total"])
	case at("revurb_api_request_duration_seconds", "route", "events") != 3:
		t.Errorf("api durations %v", m["revurb_api_request_duration_seconds"])
	case at("revurb_messages_received_total") < 4 || at("revurb_messages_sent_total") < 8 || at("revurb_bytes_sent_total") < 100:
		t.Errorf("messages %v %v", at("revurb_messages_received_total"), at("revurb_messages_sent_total"))
	case at("revurb_webhooks_failed_total") < 1 || at("revurb_webhooks_sent_total") < 1:
		t.Errorf("webhooks sent %v failed %v", at("revurb_webhooks_sent_total"), at("revurb_webhooks_failed_total"))
	case at("revurb_connections", "app", "app-id") != 0:
		t.Errorf("connections %v after both closed", at("revurb_connections", "app", "app-id"))
	}
	if _, ok := m["revurb_cluster_redis_up"]; ok {
		t.Error("revurb_cluster_redis_up on a single node")
	}
}

// scrape GETs url and parses the Prometheus text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeWith(t, http.DefaultClient, url)
}

// scrapeWith is scrape through client (one trusting a test CA for https).
func scrapeWith(t *testing.T, client *http.Client, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("exposition: %v", err)
	}
	return m
}

func hasLabels(m *dto.Metric, kv ...string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.Label {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestMetricsAddr: --metrics-addr serves the metrics on a listener of
// their own, and the API port no longer does.
func TestMetricsAddr(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	srv := startServer(t, serverConfig{Args: []string{"--metrics-addr", "127.0.0.1:" + strconv.Itoa(port)}})
	if m := scrape(t, "http://127.0.0.1:"+strconv.Itoa(port)+"/metrics"); m["revurb_connections"] == nil {
		t.Fatal("no revurb_connections on the metrics listener")
	}
	res, err := http.Get("http://" + srv.apiAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("/metrics on the API port: %d", res.StatusCode)
	}
	if !strings.Contains(srv.out.String(), "metrics http://127.0.0.1:") {
		t.Fatalf("the start line does not say where the metrics are:\n%s", srv.out.String())
	}
}

// TestMetricsFirstScrape: every family the README's Metrics table lists is
// in the very first scrape of a fresh node — before any connection,
// request or webhook — with a series for each label value known from the
// start (close codes, channel kinds, API routes and their statuses, API
// connection states, apps), except those the README marks "in a cluster:",
// which a single node leaves out.
func TestMetricsFirstScrape(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverConfig{})
	m := scrape(t, "http://"+srv.apiAddr()+"/metrics")
	families, cluster := readmeMetrics(t)
	for _, name := range families {
		switch {
		case strings.HasSuffix(name, "*"):
			found := false
			for f := range m {
				found = found || strings.HasPrefix(f, strings.TrimSuffix(name, "*"))
			}
			if !found {
				t.Errorf("no family %s in the first scrape", name)
			}
		case cluster[name]:
			if m[name] != nil {
				t.Errorf("cluster family %s on a single node", name)
			}
		case m[name] == nil:
			t.Errorf("family %s missing from the first scrape", name)
		}
	}
	labelled := []struct {
		family, label string
		values        []string
	}{
		{"revurb_connections", "app", []string{"app-id"}},
		{"revurb_api_events_over_rate_total", "app", []string{"app-id"}},
		{"revurb_connections_closed_total", "code", []string{"1000", "1001", "1002", "1003", "1006", "1007", "1008", "1009", "1011",
			"4001", "4003", "4004", "4005", "4007", "4009", "4100", "4200", "4201", "other"}},
		{"revurb_subscriptions", "kind", []string{"public", "private", "presence", "encrypted", "server", "cache"}},
		{"revurb_channels", "kind", []string{"public", "private", "presence", "encrypted", "server", "cache"}},
		{"revurb_api_requests_total", "route", []string{"events", "batch_events", "channels", "channel", "channel_users",
			"terminate_connections", "connections", "up", "metrics", "console", "other"}},
		{"revurb_api_requests_total", "status", []string{"200", "400", "401", "403", "404", "405", "408", "413", "414", "429", "431", "503"}},
		{"revurb_api_request_duration_seconds", "route", []string{"events", "batch_events", "up", "metrics"}},
		{"revurb_api_connections", "state", []string{"waiting", "new", "reading", "serving", "idle", "closing"}},
		{"revurb_api_connections_ended_total", "state", []string{"new", "reading", "idle", "closing"}},
	}
	for _, l := range labelled {
		f := m[l.family]
		if f == nil {
			t.Errorf("no family %s", l.family)
			continue
		}
		for _, v := range l.values {
			found := false
			for _, metric := range f.Metric {
				found = found || hasLabels(metric, l.label, v)
			}
			if !found {
				t.Errorf("%s has no series with %s=%q in the first scrape", l.family, l.label, v)
			}
		}
	}
}

// readmeMetrics returns the families of the README's Metrics table
// ("go_*" for a prefix), and those of them only a node of a cluster has.
func readmeMetrics(t *testing.T) (families []string, cluster map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatal("README has no Metrics section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	cluster = map[string]bool{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		what := strings.TrimSpace(cells[4])
		for _, name := range strings.Split(cells[1], "`") {
			name = strings.TrimSpace(name)
			if name == "" || name == "," {
				continue
			}
			families = append(families, name)
			cluster[name] = strings.HasPrefix(what, "in a cluster:")
		}
	}
	if len(families) < 20 {
		t.Fatalf("read %d families from the README's Metrics table: %v", len(families), families)
	}
	return families, cluster
}
