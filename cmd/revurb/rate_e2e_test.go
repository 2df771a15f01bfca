package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// TestBackendEventsPerSecond: an app capped at 50 events a second gets
// 429s past it, with a JSON error (the pusher SDK's view) and Retry-After,
// counted by app in the metrics, while an app without a cap flooding at the
// same time gets none.
func TestBackendEventsPerSecond(t *testing.T) {
	t.Parallel()
	file := configFile(t, `apps:
  - {id: capped, key: capped-key, secret: capped-secret, max_backend_events_per_second: 50}
  - {id: free, key: free-key, secret: free-secret}
`)
	srv := startServer(t, serverConfig{Args: []string{"--config", file}, AppID: "capped", AppKey: "capped-key", Secret: "capped-secret"})
	env := srv.nodeEnv()
	env["TRIGGERS"] = "100"
	env["TIMEOUT_MS"] = "20000"
	obs := runNode(t, "rate.mjs", env)

	capped := at(t, obs, "capped", "statuses").(map[string]any)
	free := at(t, obs, "free", "statuses").(map[string]any)
	// 110 requests, 200 events, in well under four seconds: at most 50
	// and what refills meanwhile pass.
	if n, _ := capped["429"].(float64); n < 10 {
		t.Errorf("the capped app got %v 429s, want most of its triggers refused: %v", capped["429"], capped)
	}
	if n, _ := capped["200"].(float64); n < 10 {
		t.Errorf("the capped app got %v answers 200: %v", capped["200"], capped)
	}
	wantJSON(t, "the free app's answers", free, `{"200":110}`)
	var body map[string]string
	if err := json.Unmarshal([]byte(at(t, obs, "capped", "first_429").(string)), &body); err != nil || !strings.Contains(body["error"], "max_backend_events_per_second") {
		t.Errorf("429 body %v: %v", at(t, obs, "capped", "first_429"), err)
	}

	// Retry-After, which the SDK does not show, and the app's counter.
	var res429 int
	for range 60 {
		res, b := signedPostResponse(t, srv, "/apps/capped/events", `{"name":"e","channel":"c","data":"x"}`)
		if res.StatusCode == 429 {
			if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Errorf("429 with Retry-After %q: %s", res.Header.Get("Retry-After"), b)
			}
			res429++
			break
		}
	}
	if res429 == 0 {
		t.Error("60 triggers at once never got a 429")
	}
	m := scrape(t, "http://"+srv.apiAddr()+"/metrics")
	for _, metric := range m["revurb_api_events_over_rate_total"].GetMetric() {
		switch v := metric.GetCounter().GetValue(); {
		case hasLabels(metric, "app", "free") && v != 0:
			t.Errorf("the free app has %v events over its rate", v)
		case hasLabels(metric, "app", "capped") && v < 10:
			t.Errorf("the capped app counts %v events over its rate", v)
		}
	}
	if n := len(m["revurb_api_events_over_rate_total"].GetMetric()); n != 2 {
		t.Errorf("revurb_api_events_over_rate_total has %d series, want one per app", n)
	}
}
