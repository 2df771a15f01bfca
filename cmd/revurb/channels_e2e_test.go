package main

// End-to-end tests of the channel protocol with the real clients: Laravel
// Echo and pusher-js on private, presence, encrypted and cache channels,
// users (signin, sendToUser, watchlists, terminate_connections) and
// subscription counts, authorized by a real endpoint built on the pusher SDK
// (testdata/authserver.mjs).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// appConfig is one app of a --config file: the default credentials
// (app-id, app-key, app-secret) unless settings name others.
func appConfig(settings map[string]any) map[string]any {
	app := map[string]any{"id": "app-id", "key": "app-key", "secret": "app-secret"}
	for k, v := range settings {
		app[k] = v
	}
	return app
}

// startWithApps starts revurb with a --config file (JSON, which the server
// reads as YAML) serving apps; clients use the first app's credentials.
func startWithApps(t *testing.T, apps ...map[string]any) *server {
	t.Helper()
	b, err := json.Marshal(map[string]any{"apps": apps})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "revurb.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	first := apps[0]
	return startServer(t, serverConfig{
		Args:   []string{"--config", path},
		AppID:  first["id"].(string),
		AppKey: first["key"].(string),
		Secret: first["secret"].(string),
	})
}

// TestEchoChannels: Laravel Echo with both broadcasters on private, presence
// and encrypted channels, whispers, and a refused authorization.
func TestEchoChannels(t *testing.T) {
	t.Parallel()
	needNode(t)
	for _, broadcaster := range []string{"reverb", "pusher"} {
		t.Run(broadcaster, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverConfig{})
			env := srv.nodeEnv()
			env["BROADCASTER"] = broadcaster
			obs := runNode(t, "echo_channels.mjs", env)

			for _, c := range []string{"a", "b", "d"} {
				wantJSON(t, "connection errors of "+c, at(t, obs, "errors", c), `[]`)
			}
			wantJSON(t, "auth endpoints used", at(t, obs, "auth_paths"), `["/auth"]`)

			// private-orders: the SDK's event through the private channel.
			wantJSON(t, "trigger on private-orders", at(t, obs, "orders", "trigger"), `{"status":200,"body":"{}","json":{}}`)
			wantJSON(t, "OrderPlaced received", at(t, obs, "orders", "received"), `[{"id":7,"total":"9.99"}]`)

			// private-chat: whispers reach the other, not the sender; no user_id.
			wantJSON(t, "whispers a received on private-chat", at(t, obs, "chat", "a"),
				`[{"data":{"who":"Bob","typing":false},"user_id":null}]`)
			wantJSON(t, "whispers b received on private-chat", at(t, obs, "chat", "b"),
				`[{"data":{"who":"Alice","typing":true},"user_id":null}]`)

			// presence-room.
			wantJSON(t, "here of a", at(t, obs, "room", "here", "a"), `[{"name":"Alice"}]`)
			wantJSON(t, "here of b", at(t, obs, "room", "here", "b"), `[{"name":"Alice"},{"name":"Bob"}]`)
			wantJSON(t, "here of b2 (Bob's second connection)", at(t, obs, "room", "here", "b2"), `[{"name":"Alice"},{"name":"Bob"}]`)
			wantJSON(t, "here of c", at(t, obs, "room", "here", "c"), `[{"name":"Alice"},{"name":"Bob"},{"name":"Carol"}]`)
			wantJSON(t, "a's own member", at(t, obs, "room", "me"), `{"id":1,"info":{"name":"Alice"}}`)
			wantJSON(t, "joining seen by a (once for Bob's two connections)", at(t, obs, "room", "joining"),
				`[{"name":"Bob"},{"name":"Carol"}]`)
			wantJSON(t, "member_added seen by a (numeric user_id as a string)", at(t, obs, "room", "added"),
				`[{"id":"2","info":{"name":"Bob"}},{"id":"3","info":{"name":"Carol"}}]`)
			wantJSON(t, "members after the joins", at(t, obs, "room", "count_after_joins"), `3`)
			wantJSON(t, "leaving seen by a after b left while b2 stayed", at(t, obs, "room", "leaving_after_b_left"), `0`)
			wantJSON(t, "leaving seen by a (Carol dropped, then Bob's last connection closed)", at(t, obs, "room", "leaving"),
				`[{"name":"Carol"},{"name":"Bob"}]`)
			wantJSON(t, "member_removed seen by a", at(t, obs, "room", "removed"),
				`[{"id":"3","info":{"name":"Carol"}},{"id":"2","info":{"name":"Bob"}}]`)
			wantJSON(t, "members at the end", at(t, obs, "room", "count_at_end"), `1`)
			wantJSON(t, "whispers a received on presence-room", at(t, obs, "room", "whispers", "a"),
				`[{"data":{"who":"Carol"},"user_id":"3"}]`)
			for _, c := range []string{"b", "b2"} {
				wantJSON(t, "whispers "+c+" received on presence-room", at(t, obs, "room", "whispers", c),
					`[{"data":{"who":"Alice"},"user_id":"1"},{"data":{"who":"Carol"},"user_id":"3"}]`)
			}
			wantJSON(t, "whispers c received on presence-room", at(t, obs, "room", "whispers", "c"),
				`[{"data":{"who":"Alice"},"user_id":"1"}]`)

			// private-encrypted-secret: SDK-encrypted, relayed untouched, decrypted.
			wantJSON(t, "trigger on private-encrypted-secret", at(t, obs, "secret", "trigger"), `{"status":200,"body":"{}","json":{}}`)
			wantJSON(t, "encrypted channel errors", at(t, obs, "secret", "errors"), `[]`)
			wantJSON(t, "SecretEvent decrypted", at(t, obs, "secret", "received"), `[{"text":"the eagle lands at 9","n":[1,2]}]`)

			// private-denied: auth for another socket.
			errs, _ := at(t, obs, "denied", "errors").([]any)
			if len(errs) != 1 {
				t.Fatalf("subscription errors on private-denied = %v, want exactly one", errs)
			}
			wantJSON(t, "subscription_error type", at(t, errs[0], "type"), `"AuthError"`)
			wantJSON(t, "subscription_error status", at(t, errs[0], "status"), `401`)
			if msg, _ := at(t, errs[0], "error").(string); msg == "" {
				t.Errorf("subscription_error %v has no error message", errs[0])
			}
			if _, ok := at(t, obs, "denied").(map[string]any)["subscribed"]; ok {
				t.Errorf("private-denied reported subscribed")
			}
			wantJSON(t, "events delivered on the refused channel", at(t, obs, "denied", "nope"), `[]`)
			wantJSON(t, "events on a public channel after the refusal", at(t, obs, "denied", "after"), `[{"n":2}]`)
			wantJSON(t, "state after the refusal", at(t, obs, "denied", "state"), `"connected"`)
		})
	}
}

// TestPusherJSUsers: pusher.signin() through a user-authentication endpoint;
// sendToUser reaches every connection of that user and nobody else;
// watchlists tell online and offline once per user; terminateUserConnections
// closes both of a user's connections with 4009 and pusher-js stays down.
func TestPusherJSUsers(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	obs := runNode(t, "users.mjs", srv.nodeEnv())

	wantJSON(t, "sendToUser alice reply", at(t, obs, "send_alice"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "sendToUser bob reply", at(t, obs, "send_bob"), `{"status":200,"body":"{}","json":{}}`)
	wantJSON(t, "terminateUserConnections reply", at(t, obs, "terminate"), `{"status":200,"body":"{}","json":{}}`)

	users := map[string]string{"carol": "carol", "a1": "alice", "a2": "alice", "b1": "bob", "b2": "bob"}
	userData := map[string]string{
		"carol": `{"id":"carol","watchlist":["alice","bob"]}`,
		"a1":    `{"id":"alice"}`, "a2": `{"id":"alice"}`,
		"b1": `{"id":"bob","watchlist":["alice"]}`, "b2": `{"id":"bob","watchlist":["alice"]}`,
	}
	for c, user := range users {
		wantJSON(t, c+" user_data after signin", at(t, obs, c, "user_data"), userData[c])
		wantJSON(t, c+" subscribed channels", at(t, obs, c, "channels"), `["#server-to-user-`+user+`"]`)
	}

	wantJSON(t, "carol greet", at(t, obs, "carol", "greet"), `[]`)
	for _, c := range []string{"a1", "a2"} {
		wantJSON(t, c+" greet", at(t, obs, c, "greet"), `[{"n":1}]`)
	}
	for _, c := range []string{"b1", "b2"} {
		wantJSON(t, c+" greet", at(t, obs, c, "greet"), `[{"n":2}]`)
	}

	wantJSON(t, "carol watchlist events", at(t, obs, "carol", "watchlist"), `[
		{"name":"online","user_ids":[]},
		{"name":"online","user_ids":["alice"]},
		{"name":"online","user_ids":["bob"]},
		{"name":"offline","user_ids":["alice"]},
		{"name":"offline","user_ids":["bob"]}]`)
	for _, c := range []string{"b1", "b2"} {
		wantJSON(t, c+" watchlist events", at(t, obs, c, "watchlist"), `[
			{"name":"online","user_ids":["alice"]},
			{"name":"offline","user_ids":["alice"]}]`)
		wantJSON(t, c+" errors", at(t, obs, c, "errors"), `[]`)
	}
	for _, c := range []string{"a1", "a2"} {
		wantJSON(t, c+" watchlist events", at(t, obs, c, "watchlist"), `[]`)
		// Refused (4000-4099): pusher-js disconnects and does not reconnect.
		wantJSON(t, c+" states", at(t, obs, c, "states"), `["connecting","connected","disconnected"]`)
		errs, _ := at(t, obs, c, "errors").([]any)
		if len(errs) == 0 {
			t.Errorf("%s saw no error after terminate_connections", c)
		}
		for _, e := range errs {
			if code := at(t, e, "code"); code != float64(4009) {
				t.Errorf("%s error %v: code = %v, want 4009", c, e, code)
			}
		}
	}
	wantJSON(t, "carol errors", at(t, obs, "carol", "errors"), `[]`)
}

// TestPusherJSCacheChannels: a cache channel replays the last event
// triggered while nobody was subscribed, and pusher-js surfaces
// pusher:cache_miss on channels that never had one.
func TestPusherJSCacheChannels(t *testing.T) {
	t.Parallel()
	needNode(t)
	srv := startServer(t, serverConfig{})
	obs := runNode(t, "cache.mjs", srv.nodeEnv())

	wantJSON(t, "triggers", at(t, obs, "triggers"), `[
		{"status":200,"body":"{}","json":{}},{"status":200,"body":"{}","json":{}},
		{"status":200,"body":"{}","json":{}},{"status":200,"body":"{}","json":{}}]`)
	wantJSON(t, "p errors", at(t, obs, "p", "errors"), `[]`)
	wantJSON(t, "p on cache-news", eventsOn(t, at(t, obs, "p"), "cache-news"), `[
		{"channel":"cache-news","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"cache-news","event":"headline","data":{"title":"second"}},
		{"channel":"cache-news","event":"headline","data":{"title":"third"}}]`)
	wantJSON(t, "p on private-cache-orders", eventsOn(t, at(t, obs, "p"), "private-cache-orders"), `[
		{"channel":"private-cache-orders","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"private-cache-orders","event":"order","data":{"id":1}}]`)
	wantJSON(t, "p on cache-fresh", eventsOn(t, at(t, obs, "p"), "cache-fresh"), `[
		{"channel":"cache-fresh","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"cache-fresh","event":"pusher:cache_miss","data":null}]`)
	lobby := eventsOn(t, at(t, obs, "p"), "presence-cache-lobby")
	var names []any
	for _, e := range lobby {
		names = append(names, at(t, e, "event"))
	}
	wantJSON(t, "p events on presence-cache-lobby", names, `["pusher:subscription_succeeded","pusher:cache_miss"]`)
	if len(lobby) > 0 {
		wantJSON(t, "presence-cache-lobby members", at(t, lobby[0], "data", "members"), `{"p":{"name":"P"}}`)
	}
	wantJSON(t, "q on cache-news (subscribed after third)", at(t, obs, "q", "events"), `[
		{"channel":"cache-news","event":"pusher:subscription_succeeded","data":{}},
		{"channel":"cache-news","event":"headline","data":{"title":"third"}}]`)
}

// TestPusherJSSubscriptionCount: with subscription_count on, every
// subscriber hears each change as pusher:subscription_count; off, nobody
// does.
func TestPusherJSSubscriptionCount(t *testing.T) {
	t.Parallel()
	needNode(t)
	succeeded := `{"channel":"counted","event":"pusher:subscription_succeeded","data":{}}`
	count := func(n string) string {
		return `{"channel":"counted","event":"pusher:subscription_count","data":{"subscription_count":` + n + `}}`
	}
	tests := []struct {
		name    string
		enabled bool
		p1, p2  string
		p1Count string
	}{
		{
			name: "enabled", enabled: true,
			p1:      `[` + succeeded + `,` + count("1") + `,` + count("2") + `,` + count("1") + `]`,
			p2:      `[` + succeeded + `,` + count("2") + `]`,
			p1Count: `1`,
		},
		{
			name: "disabled", enabled: false,
			p1:      `[` + succeeded + `]`,
			p2:      `[` + succeeded + `]`,
			p1Count: `null`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := startWithApps(t, appConfig(map[string]any{"subscription_count": tt.enabled}))
			obs := runNode(t, "subcount.mjs", srv.nodeEnv())
			wantJSON(t, "p1 events", at(t, obs, "p1", "events"), tt.p1)
			wantJSON(t, "p2 events", at(t, obs, "p2", "events"), tt.p2)
			wantJSON(t, "p1 channel.subscriptionCount", at(t, obs, "p1", "count"), tt.p1Count)
			wantJSON(t, "p1 errors", at(t, obs, "p1", "errors"), `[]`)
			wantJSON(t, "p2 errors", at(t, obs, "p2", "errors"), `[]`)
		})
	}
}
