package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReloadApps: SIGHUP reads --config again. The removed app's pusher-js
// clients are closed with 4001 and do not reconnect; a client of the added
// app connects at once; the kept app's rotated secret signs the pusher
// SDK's triggers and its old one is refused, while its clients stay
// connected and get the events; a file that does not parse is refused,
// logged, and the apps loaded before go on serving.
func TestReloadApps(t *testing.T) {
	t.Parallel()
	file := configFile(t, `apps:
  - {id: kept, key: kept-key, secret: old-secret}
  - {id: gone, key: gone-key, secret: gone-secret}
`)
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, serverConfig{Args: []string{"--config", file}, AppID: "kept", AppKey: "kept-key", Secret: "old-secret"})
	env := srv.nodeEnv()
	for k, v := range map[string]string{"KEPT_ID": "kept", "KEPT_KEY": "kept-key", "KEPT_OLD_SECRET": "old-secret", "KEPT_NEW_SECRET": "new-secret",
		"GONE_KEY": "gone-key", "NEW_ID": "new", "NEW_KEY": "new-key", "NEW_SECRET": "new-app-secret", "TIMEOUT_MS": "25000"} {
		env[k] = v
	}
	sc := startScenario(t, "reload.mjs", env, 40*time.Second)
	sc.await("ready")

	write(`event_loops: 3
apps:
  - {id: kept, key: kept-key, secret: new-secret}
  - {id: new, key: new-key, secret: new-app-secret}
`)
	hup := func(wantLog string) {
		t.Helper()
		if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitOutput(t, srv, wantLog, "the reload's log line")
	}
	hup("reload: " + file + ": serving 2 apps")
	sc.say("reloaded")
	sc.await("checked")
	write("apps: [ {id: kept\n")
	hup("reload: config: refused, still serving what was loaded before")
	sc.say("broken")
	var obs map[string]any
	sc.result(&obs)

	for i := range 2 {
		k := strconv.Itoa(i)
		wantJSON(t, "kept client "+k+" states", at(t, obs, "kept", k, "states"), `["connecting","connected"]`)
		wantJSON(t, "gone client "+k+" errors", at(t, obs, "gone", k, "errors", "0", "code"), `4001`)
		// pusher-js does not reconnect after 4000-4099: connected, then
		// never connecting again.
		states := at(t, obs, "gone", k, "states").([]any)
		if n := strings.Count(strings.Trim(strings.Join(anyStrings(states), ","), ","), "connecting"); n != 1 {
			t.Errorf("gone client %s states %v: it tried to reconnect", k, states)
		}
		// The subscription, the event signed with the new secret, then
		// perhaps "still", from after the broken file.
		events := eventsOn(t, at(t, obs, "kept", k), "news")
		if len(events) < 2 {
			t.Fatalf("kept client %s events %v", k, events)
		}
		wantJSON(t, "kept client "+k+" events", events[:2], `[{"channel":"news","event":"pusher:subscription_succeeded","data":{}},
			{"channel":"news","event":"rotated","data":{"by":"new"}}]`)
	}
	wantJSON(t, "trigger with the old secret", at(t, obs, "old_secret", "status"), `401`)
	wantJSON(t, "trigger with the new secret", at(t, obs, "new_secret", "status"), `200`)
	wantJSON(t, "trigger on the added app", at(t, obs, "new_app", "status"), `200`)
	wantJSON(t, "the added app's client", at(t, obs, "fresh", "states"), `["connecting","connected"]`)
	wantJSON(t, "after the broken file: the added app's client", at(t, obs, "after", "states"), `["connecting","connected"]`)
	wantJSON(t, "after the broken file: the new secret", at(t, obs, "after_broken", "status"), `200`)
	wantJSON(t, "after the broken file: the added app", at(t, obs, "after_broken_new", "status"), `200`)
	waitOutput(t, srv, "event_loops changed in "+file+": they take a restart", "the reload to name event_loops")
}

// configFile writes a config file holding body and returns its path.
func configFile(t *testing.T, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "revurb.yaml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func anyStrings(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}
