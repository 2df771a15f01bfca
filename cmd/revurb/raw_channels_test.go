package main

// Raw WebSocket tests of the channel protocol's refusals and limits: per-app
// settings from a --config file, authorization failures, presence limits,
// client-event refusals and rate limit, signin failures, cache channels.
// Each refusal is checked on the wire, exactly, and so is what a second
// client did not receive.

import (
	"bufio"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawApp is one app of the server under test, as a raw client sees it.
type rawApp struct{ id, key, secret string }

// newRawApp names an app by its key: id key-id, secret key-secret.
func newRawApp(key string) rawApp { return rawApp{id: key + "-id", key: key, secret: key + "-secret"} }

var defaultRawApp = rawApp{id: "app-id", key: "app-key", secret: "app-secret"}

func (a rawApp) path() string {
	return "/app/" + a.key + "?protocol=7&client=js&version=8.4.0&flash=false"
}

// config is the app's entry in a --config file with settings added.
func (a rawApp) config(settings map[string]any) map[string]any {
	return appConfig(mergeSettings(map[string]any{"id": a.id, "key": a.key, "secret": a.secret}, settings))
}

func mergeSettings(dst, src map[string]any) map[string]any {
	for k, v := range src {
		dst[k] = v
	}
	return dst
}

// auth is key:hex(HMAC-SHA256(secret, msg)), the auth field of subscribe
// and signin (Pusher protocol: authentication signatures).
func (a rawApp) auth(msg string) string {
	m := hmac.New(sha256.New, []byte(a.secret))
	m.Write([]byte(msg))
	return a.key + ":" + hex.EncodeToString(m.Sum(nil))
}

// post sends a signed HTTP API request for the app.
func (a rawApp) post(t *testing.T, srv *server, path, body string) (int, string) {
	t.Helper()
	sum := md5.Sum([]byte(body))
	q := "auth_key=" + a.key +
		"&auth_timestamp=" + strconv.FormatInt(time.Now().Unix(), 10) +
		"&auth_version=1.0" +
		"&body_md5=" + hex.EncodeToString(sum[:])
	m := hmac.New(sha256.New, []byte(a.secret))
	m.Write([]byte("POST\n" + path + "\n" + q))
	res, err := http.Post("http://"+srv.apiAddr()+path+"?"+q+"&auth_signature="+hex.EncodeToString(m.Sum(nil)),
		"application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// trigger publishes event with data (a JSON value, sent as its string) on
// channel through the HTTP API and wants 200 {}.
func (a rawApp) trigger(t *testing.T, srv *server, channel, event, data string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": event, "channel": channel, "data": data})
	status, reply := a.post(t, srv, "/apps/"+a.id+"/events", string(body))
	if status != 200 || strings.TrimSpace(reply) != "{}" {
		t.Fatalf("trigger %s on %s = %d %q, want 200 {}", event, channel, status, reply)
	}
}

// dialOrigin upgrades path sending origin as the Origin header (none when
// empty).
func dialOrigin(t *testing.T, srv *server, path, origin string) *wsConn {
	t.Helper()
	c := dialTCP(t, srv)
	key := newKey()
	req := "GET " + path + " HTTP/1.1\r\n" +
		"Host: " + srv.wsAddr() + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n"
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		t.Fatalf("write handshake: %v", err)
	}
	w := &wsConn{t: t, c: c, br: bufio.NewReader(c)}
	w.expectUpgrade(key)
	return w
}

// joinApp dials the app, reads connection_established and returns the
// connection and its socket id.
func joinApp(t *testing.T, srv *server, a rawApp) (*wsConn, string) {
	t.Helper()
	w := dialWS(t, srv, a.path())
	return w, w.expectEstablished()
}

// established reads pusher:connection_established and returns its data.
func (w *wsConn) established() map[string]any {
	w.t.Helper()
	m := w.readMessage()
	if m["event"] != "pusher:connection_established" {
		w.t.Fatalf("first message = %v, want pusher:connection_established", m)
	}
	s, _ := m["data"].(string)
	var d map[string]any
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		w.t.Fatalf("connection_established data %#v is not a JSON object string", m["data"])
	}
	return d
}

// sendJSON sends v marshalled as one text message.
func (w *wsConn) sendJSON(v any) {
	w.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		w.t.Fatal(err)
	}
	w.sendText(string(b))
}

// subscribe sends pusher:subscribe; auth and channelData are left out when
// empty.
func (w *wsConn) subscribe(channel, auth, channelData string) {
	w.t.Helper()
	d := map[string]any{"channel": channel}
	if auth != "" {
		d["auth"] = auth
	}
	if channelData != "" {
		d["channel_data"] = channelData
	}
	w.sendJSON(map[string]any{"event": "pusher:subscribe", "data": d})
}

func (w *wsConn) wantSubscribed(channel string) {
	w.t.Helper()
	want, _ := json.Marshal(map[string]any{"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"})
	w.wantMessage("subscribe "+channel, string(want))
}

// subscribePrivate subscribes to a private or private-encrypted channel
// with a valid signature and wants success.
func (w *wsConn) subscribePrivate(a rawApp, socketID, channel string) {
	w.t.Helper()
	w.subscribe(channel, a.auth(socketID+":"+channel), "")
	w.wantSubscribed(channel)
}

// subscribePresence subscribes with a valid signature over channelData and
// returns the decoded presence data of subscription_succeeded.
func (w *wsConn) subscribePresence(a rawApp, socketID, channel, channelData string) map[string]any {
	w.t.Helper()
	w.subscribe(channel, a.auth(socketID+":"+channel+":"+channelData), channelData)
	m := w.readMessage()
	if m["event"] != "pusher_internal:subscription_succeeded" || m["channel"] != channel {
		w.t.Fatalf("subscribe %s with channel_data %s: got %v, want subscription_succeeded", channel, channelData, m)
	}
	return decodeDataString(w.t, m)
}

// decodeDataString decodes a server event's data, which must be a JSON
// string holding an object.
func decodeDataString(t *testing.T, m message) map[string]any {
	t.Helper()
	s, ok := m["data"].(string)
	if !ok {
		t.Fatalf("%v: data is %T, want a JSON string", m, m["data"])
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("%v: data %q is not a JSON object: %v", m, s, err)
	}
	return d
}

// wantPresence compares presence data with ids (any order), hash and count.
func wantPresence(t *testing.T, what string, d map[string]any, ids []string, hash string) {
	t.Helper()
	p, _ := d["presence"].(map[string]any)
	if p == nil || len(d) != 1 {
		t.Fatalf("%s: data = %v, want {\"presence\":{...}}", what, d)
	}
	var got []string
	raw, _ := p["ids"].([]any)
	for _, id := range raw {
		s, ok := id.(string)
		if !ok {
			t.Errorf("%s: id %#v is not a string", what, id)
		}
		got = append(got, s)
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) {
		t.Errorf("%s: ids = %q, want %q", what, got, want)
	}
	wantJSON(t, what+" hash", p["hash"], hash)
	wantJSON(t, what+" count", p["count"], strconv.Itoa(len(ids)))
	if len(p) != 3 {
		t.Errorf("%s: presence = %v, want exactly ids, hash, count", what, p)
	}
}

// wantSubscriptionError reads pusher:subscription_error for channel: data
// an object {type, error, status}.
func (w *wsConn) wantSubscriptionError(channel, typ string, status int) {
	w.t.Helper()
	m := w.readMessage()
	if m["event"] != "pusher:subscription_error" || m["channel"] != channel {
		w.t.Fatalf("got %v, want pusher:subscription_error on %q", m, channel)
	}
	d, ok := m["data"].(map[string]any)
	if !ok {
		w.t.Fatalf("subscription_error data = %#v, want an object", m["data"])
	}
	if msg, _ := d["error"].(string); msg == "" {
		w.t.Errorf("subscription_error %v has no error message", m)
	}
	if d["type"] != typ || d["status"] != float64(status) || len(d) != 3 || len(m) != 3 {
		w.t.Errorf("subscription_error on %s = %v, want data {type:%q, error, status:%d}", channel, m, typ, status)
	}
}

// wantError reads a pusher:error whose data is an object holding code
// (nil: null) and a message.
func (w *wsConn) wantError(what string, code any) {
	w.t.Helper()
	m := w.readMessage()
	if m["event"] != "pusher:error" {
		w.t.Fatalf("%s: got %v, want pusher:error %v", what, m, code)
	}
	d, ok := m["data"].(map[string]any)
	if !ok {
		w.t.Fatalf("%s: pusher:error data = %#v, want an object", what, m["data"])
	}
	if msg, _ := d["message"].(string); msg == "" {
		w.t.Errorf("%s: pusher:error %v has no message", what, m)
	}
	c, present := d["code"]
	if !present || c != code {
		w.t.Errorf("%s: pusher:error code = %#v (present %v), want %v; message %q", what, c, present, code, d["message"])
	}
}

// wantFrame reads one text frame and wants its payload byte for byte.
func (w *wsConn) wantFrame(what, want string) {
	w.t.Helper()
	f := w.mustFrame()
	if f.op != opText || string(f.payload) != want {
		w.t.Errorf("%s: got op=%#x %s\n want %s", what, f.op, f.payload, want)
	}
}

// signin sends pusher:signin for userData, signed for socketID.
func (w *wsConn) signin(a rawApp, socketID, userData string) {
	w.t.Helper()
	w.sendJSON(map[string]any{"event": "pusher:signin", "data": map[string]any{
		"auth": a.auth(socketID + "::user::" + userData), "user_data": userData,
	}})
}

// wantSignedIn reads pusher:signin_success for userData.
func (w *wsConn) wantSignedIn(userData string) {
	w.t.Helper()
	inner, _ := json.Marshal(map[string]string{"user_data": userData})
	want, _ := json.Marshal(map[string]any{"event": "pusher:signin_success", "data": string(inner)})
	w.wantMessage("signin_success", string(want))
}

// drop resets the TCP connection: no close frame, no FIN handshake.
func (w *wsConn) drop() {
	if tc, ok := w.c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = w.c.Close()
}

// eventJSON is the exact frame the API sends for a triggered event.
func eventJSON(event, channel, data string) string {
	b, _ := json.Marshal(map[string]any{"event": event, "channel": channel, "data": data})
	return string(b)
}

// TestRawConnectionSettings: per-app origin, quota, enabled, message size
// and activity timeout from a --config file.
func TestRawConnectionSettings(t *testing.T) {
	t.Parallel()
	origin := newRawApp("origin-key")
	quota := newRawApp("quota-key")
	off := newRawApp("off-key")
	small := newRawApp("small-key")
	srv := startWithApps(t,
		defaultRawApp.config(nil),
		origin.config(map[string]any{"allowed_origins": []string{"*.example.com", "https://exact.org"}}),
		quota.config(map[string]any{"max_connections": 2}),
		off.config(map[string]any{"enabled": false}),
		small.config(map[string]any{"max_message_size": 1024, "activity_timeout": 30}),
	)

	t.Run("origin", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			origin string
			ok     bool
		}{
			{origin: "https://app.example.com", ok: true},
			{origin: "http://app.example.com:8000", ok: true},
			{origin: "https://deep.app.example.com", ok: true},
			{origin: "https://exact.org", ok: true},
			{origin: "http://localhost", ok: false},
			{origin: "https://evilexample.com", ok: false},
			{origin: "https://example.com.evil.org", ok: false},
			{origin: "http://exact.org", ok: false},
			{origin: "https://notexact.org", ok: false},
		}
		for _, tt := range tests {
			t.Run(tt.origin, func(t *testing.T) {
				t.Parallel()
				w := dialOrigin(t, srv, origin.path(), tt.origin)
				if tt.ok {
					w.expectEstablished()
					w.expectAlive()
				} else {
					w.expectErrorThenClose(4009)
				}
			})
		}
	})

	t.Run("quota 4004", func(t *testing.T) {
		t.Parallel()
		first, _ := joinApp(t, srv, quota)
		second, _ := joinApp(t, srv, quota)
		dialWS(t, srv, quota.path()).expectErrorThenClose(4004)
		second.expectAlive()
		// A closed connection frees its place; the refused one took none.
		first.send(opClose, string(binary.BigEndian.AppendUint16(nil, 1000)))
		if f := first.mustFrame(); f.op != opClose {
			t.Fatalf("got op=%#x, want the close echoed", f.op)
		}
		first.expectEOF()
		deadline := time.Now().Add(2 * time.Second)
		for {
			w := dialWS(t, srv, quota.path())
			m := w.readMessage()
			if m["event"] == "pusher:connection_established" {
				break
			}
			if errorCode(t, m) != float64(4004) || time.Now().After(deadline) {
				t.Fatalf("after a close: got %v, want connection_established", m)
			}
			time.Sleep(20 * time.Millisecond)
		}
		dialWS(t, srv, quota.path()).expectErrorThenClose(4004)
	})

	t.Run("disabled 4003", func(t *testing.T) {
		t.Parallel()
		dialWS(t, srv, off.path()).expectErrorThenClose(4003)
	})

	t.Run("max_message_size 1009", func(t *testing.T) {
		t.Parallel()
		w := dialWS(t, srv, small.path())
		wantJSON(t, "connection_established data", w.established()["activity_timeout"], `30`)
		w.sendText(pingOfSize(1024))
		w.wantMessage("pong to a 1024-byte ping", pongJSON)
		writeIgnoringErrors(w.c, appendFrame(nil, true, opText, []byte(pingOfSize(1025)), true))
		w.expectClose(1009)

		// The default app keeps 64 KiB.
		d, _ := joinApp(t, srv, defaultRawApp)
		d.sendText(pingOfSize(1025))
		d.wantMessage("pong on the default app", pongJSON)
	})
}

// TestRawChannels: subscription refusals, presence rules, client events,
// users and cache channels on the wire.
func TestRawChannels(t *testing.T) {
	t.Parallel()
	app := defaultRawApp
	noClient := newRawApp("noclient-key")
	members := newRawApp("members-key")
	cacheApp := newRawApp("cache-key")
	counted := newRawApp("count-key")
	rate3 := newRawApp("rate-key")
	srv := startWithApps(t,
		app.config(nil),
		rate3.config(map[string]any{"client_event_rate": 3}),
		noClient.config(map[string]any{"client_events": false}),
		members.config(map[string]any{"max_presence_members": 2, "max_user_info_size": 64}),
		cacheApp.config(map[string]any{"cache_ttl": 1}),
		counted.config(map[string]any{"subscription_count": true}),
	)

	tests := []struct {
		name string
		run  func(t *testing.T)
	}{
		{name: "auth refusals", run: func(t *testing.T) {
			w, id := joinApp(t, srv, app)
			pd := `{"user_id":"1"}`
			for _, c := range []struct{ channel, auth, data string }{
				{channel: "private-a"},
				{channel: "private-a", auth: "app-key:deadbeef"},
				{channel: "private-a", auth: app.auth(id + ":private-b")},
				{channel: "private-a", auth: app.auth("1.2:private-a")},
				{channel: "private-a", auth: "other-key:" + strings.TrimPrefix(app.auth(id+":private-a"), "app-key:")},
				{channel: "private-encrypted-a", auth: app.auth(id + ":private-a")},
				{channel: "presence-a", auth: app.auth(id + ":presence-a"), data: pd},
				{channel: "presence-a", auth: app.auth(id + ":presence-a:" + `{"user_id":"2"}`), data: pd},
				{channel: "presence-a", auth: app.auth(id + ":presence-a:" + pd)},
				{channel: "private-cache-a", auth: app.auth(id + ":cache-a")},
			} {
				w.subscribe(c.channel, c.auth, c.data)
				w.wantSubscriptionError(c.channel, "AuthError", 401)
			}
			for _, name := range []string{"bad channel!", strings.Repeat("a", 165), "caf\u00e9"} {
				w.subscribe(name, "", "")
				w.wantSubscriptionError(name, "InvalidChannel", 400)
			}
			// Nothing published on the refused channels arrives.
			w.subscribe("after-refusals", "", "")
			w.wantSubscribed("after-refusals")
			app.trigger(t, srv, "private-a", "nope", `{}`)
			app.trigger(t, srv, "presence-a", "nope", `{}`)
			app.trigger(t, srv, "after-refusals", "ping", `{"n":1}`)
			w.wantMessage("next event", eventJSON("ping", "after-refusals", `{"n":1}`))
			w.expectAlive()
		}},
		{name: "private and encrypted subscribe", run: func(t *testing.T) {
			w, id := joinApp(t, srv, app)
			w.subscribePrivate(app, id, "private-ok")
			w.subscribePrivate(app, id, "private-encrypted-ok")
			enc := `{"nonce":"bm9uY2U=","ciphertext":"Y2lwaGVy"}`
			app.trigger(t, srv, "private-encrypted-ok", "secret", enc)
			w.wantMessage("encrypted event relayed untouched", eventJSON("secret", "private-encrypted-ok", enc))
		}},
		{name: "presence members", run: func(t *testing.T) {
			a, aid := joinApp(t, srv, app)
			b1, b1id := joinApp(t, srv, app)
			b2, b2id := joinApp(t, srv, app)
			ch := "presence-raw"
			wantPresence(t, "a joins", a.subscribePresence(app, aid, ch, `{"user_id":"a","user_info":{"name":"A"}}`),
				[]string{"a"}, `{"a":{"name":"A"}}`)
			wantPresence(t, "b1 joins", b1.subscribePresence(app, b1id, ch, `{"user_id":"b"}`),
				[]string{"a", "b"}, `{"a":{"name":"A"},"b":null}`)
			a.wantMessage("member_added", `{"event":"pusher_internal:member_added","channel":"presence-raw","data":"{\"user_id\":\"b\",\"user_info\":null}"}`)
			wantPresence(t, "b2 joins (same user)", b2.subscribePresence(app, b2id, ch, `{"user_id":"b"}`),
				[]string{"a", "b"}, `{"a":{"name":"A"},"b":null}`)
			b1.sendText(`{"event":"pusher:unsubscribe","data":{"channel":"presence-raw"}}`)
			b1.expectAlive()
			app.trigger(t, srv, ch, "while-b2-stays", `{}`)
			a.wantMessage("next event after b1 left (b2 still a member)", eventJSON("while-b2-stays", ch, `{}`))
			b2.drop()
			a.wantMessage("member_removed after b's last connection dropped", `{"event":"pusher_internal:member_removed","channel":"presence-raw","data":"{\"user_id\":\"b\"}"}`)
			c, cid := joinApp(t, srv, app)
			wantPresence(t, "c joins", c.subscribePresence(app, cid, ch, `{"user_id":"c","user_info":[1]}`),
				[]string{"a", "c"}, `{"a":{"name":"A"},"c":[1]}`)
			a.wantMessage("member_added c", `{"event":"pusher_internal:member_added","channel":"presence-raw","data":"{\"user_id\":\"c\",\"user_info\":[1]}"}`)
			c.sendText(`{"event":"pusher:unsubscribe","data":{"channel":"presence-raw"}}`)
			a.wantMessage("member_removed after c unsubscribed", `{"event":"pusher_internal:member_removed","channel":"presence-raw","data":"{\"user_id\":\"c\"}"}`)
			app.trigger(t, srv, ch, "after", `{}`)
			a.wantMessage("next event", eventJSON("after", ch, `{}`))
			c.expectAlive()
		}},
		{name: "presence member limit 4100", run: func(t *testing.T) {
			ch := "presence-full"
			join := func() (*wsConn, string) { return joinApp(t, srv, members) }
			u1, id1 := join()
			wantPresence(t, "user 1", u1.subscribePresence(members, id1, ch, `{"user_id":1}`), []string{"1"}, `{"1":null}`)
			u2, id2 := join()
			wantPresence(t, "user 2", u2.subscribePresence(members, id2, ch, `{"user_id":2}`), []string{"1", "2"}, `{"1":null,"2":null}`)
			u3, id3 := join()
			d := `{"user_id":3}`
			u3.subscribe(ch, members.auth(id3+":"+ch+":"+d), d)
			u3.wantSubscriptionError(ch, "LimitReached", 4100)
			u3.expectAlive()
			// Members are users: user 1 on a second connection still fits.
			u1b, id1b := join()
			wantPresence(t, "user 1 again", u1b.subscribePresence(members, id1b, ch, `{"user_id":1}`), []string{"1", "2"}, `{"1":null,"2":null}`)
			u1.wantMessage("member_added for user 2", `{"event":"pusher_internal:member_added","channel":"presence-full","data":"{\"user_id\":\"2\",\"user_info\":null}"}`)
			members.trigger(t, srv, ch, "after", `{}`)
			u1.wantMessage("next event on user 1 (no member_added for 3 or for 1 again)", eventJSON("after", ch, `{}`))
			u2.wantMessage("next event on user 2", eventJSON("after", ch, `{}`))
			u3.expectAlive()
		}},
		{name: "presence channel_data", run: func(t *testing.T) {
			w, id := joinApp(t, srv, members)
			long := strings.Repeat("u", 129)
			bad := []string{
				`{"user_info":{"name":"x"}}`,
				`{"user_id":"` + long + `"}`,
				`{"user_id":"1","user_info":{"p":"` + strings.Repeat("x", 57) + `"}}`,
				`{"user_id":""}`,
				`{"user_id":true}`,
			}
			for i, d := range bad {
				ch := "presence-bad-" + strconv.Itoa(i)
				w.subscribe(ch, members.auth(id+":"+ch+":"+d), d)
				m := w.readMessage()
				if m["event"] != "pusher:subscription_error" || m["channel"] != ch {
					t.Fatalf("channel_data %s: got %v, want pusher:subscription_error", d, m)
				}
				data, _ := m["data"].(map[string]any)
				if data == nil || data["status"] != float64(400) {
					t.Errorf("channel_data %s: got %v, want data with status 400", d, m)
				}
				if typ, _ := data["type"].(string); typ == "" {
					t.Errorf("channel_data %s: got %v, want a type", d, m)
				}
			}
			w.subscribe("presence-bad-json", members.auth(id+":presence-bad-json:not json"), "not json")
			if m := w.readMessage(); m["event"] != "pusher:subscription_error" {
				t.Errorf("channel_data not JSON: got %v, want pusher:subscription_error", m)
			}
			w.expectAlive()
			// The limits themselves are accepted.
			id128 := strings.Repeat("u", 128)
			wantPresence(t, "128-char user_id", w.subscribePresence(members, id, "presence-ok-1", `{"user_id":"`+id128+`"}`),
				[]string{id128}, `{"`+id128+`":null}`)
			info := `{"p":"` + strings.Repeat("x", 56) + `"}`
			wantPresence(t, "64-byte user_info", w.subscribePresence(members, id, "presence-ok-2", `{"user_id":"1","user_info":`+info+`}`),
				[]string{"1"}, `{"1":`+info+`}`)
			wantPresence(t, "numeric user_id", w.subscribePresence(members, id, "presence-ok-3", `{"user_id":42,"user_info":{"n":1}}`),
				[]string{"42"}, `{"42":{"n":1}}`)
		}},
		{name: "client events", run: func(t *testing.T) {
			s, sid := joinApp(t, srv, app)
			r, rid := joinApp(t, srv, app)
			for _, p := range []struct {
				w  *wsConn
				id string
			}{{s, sid}, {r, rid}} {
				p.w.subscribe("public-chat", "", "")
				p.w.wantSubscribed("public-chat")
				p.w.subscribePrivate(app, p.id, "private-chat")
				p.w.subscribePrivate(app, p.id, "private-encrypted-chat")
			}
			s.subscribePresence(app, sid, "presence-chat", `{"user_id":"sender"}`)
			r.subscribePresence(app, rid, "presence-chat", `{"user_id":"receiver"}`)
			s.readMessage() // member_added receiver
			r.subscribePrivate(app, rid, "private-other")

			name200 := "client-" + strings.Repeat("n", 193)
			data10k := `{"p":"` + strings.Repeat("x", 10240-8) + `"}`
			for _, c := range []struct{ what, msg string }{
				{what: "public channel", msg: `{"event":"client-x","channel":"public-chat","data":{}}`},
				{what: "encrypted channel", msg: `{"event":"client-x","channel":"private-encrypted-chat","data":{}}`},
				{what: "not subscribed", msg: `{"event":"client-x","channel":"private-other","data":{}}`},
				{what: "name of 201 chars", msg: `{"event":"` + name200 + `n","channel":"private-chat","data":{}}`},
				{what: "data of 10241 bytes", msg: `{"event":"client-x","channel":"private-chat","data":{"p":"` + strings.Repeat("x", 10240-7) + `"}}`},
			} {
				s.sendText(c.msg)
				s.wantError(c.what, float64(4301))
				s.expectAlive()
			}
			s.sendText(`{"event":"client-x","data":{}}`)
			if m := s.readMessage(); m["event"] != "pusher:error" {
				t.Errorf("client event without a channel: got %v, want pusher:error", m)
			}
			s.expectAlive()

			// Accepted: relayed to the other subscriber with the data as sent,
			// never echoed.
			s.sendText(`{"event":"` + name200 + `","channel":"private-chat","data":` + data10k + `}`)
			s.sendText(`{"event":"client-typing","channel":"private-chat","data":{"a": 1,  "b":[true,null]}}`)
			s.sendText(`{"event":"client-typing","channel":"presence-chat","data":"hi \"there\""}`)
			s.expectAlive()
			r.wantFrame("200-char name with 10240 bytes of data", `{"event":"`+name200+`","channel":"private-chat","data":`+data10k+`}`)
			r.wantFrame("private relay", `{"event":"client-typing","channel":"private-chat","data":{"a": 1,  "b":[true,null]}}`)
			r.wantFrame("presence relay", `{"event":"client-typing","channel":"presence-chat","data":"hi \"there\"","user_id":"sender"}`)
			r.expectAlive()
		}},
		{name: "client events disabled", run: func(t *testing.T) {
			s, sid := joinApp(t, srv, noClient)
			r, rid := joinApp(t, srv, noClient)
			s.subscribePrivate(noClient, sid, "private-chat")
			r.subscribePrivate(noClient, rid, "private-chat")
			s.sendText(`{"event":"client-x","channel":"private-chat","data":{}}`)
			s.wantError("client events disabled", float64(4301))
			s.expectAlive()
			noClient.trigger(t, srv, "private-chat", "barrier", `{}`)
			r.wantMessage("next event on the receiver", eventJSON("barrier", "private-chat", `{}`))
		}},
		{name: "client event rate limit", run: func(t *testing.T) {
			s, sid := joinApp(t, srv, app)
			r, rid := joinApp(t, srv, app)
			s.subscribePrivate(app, sid, "private-rate")
			r.subscribePrivate(app, rid, "private-rate")
			// Start just after a second begins, so the 11 events fall within
			// one second whatever window the server counts in.
			sleepToNextSecond()
			var b []byte
			for n := 1; n <= 11; n++ {
				b = appendFrame(b, true, opText, []byte(`{"event":"client-n","channel":"private-rate","data":{"n":`+strconv.Itoa(n)+`}}`), true)
			}
			s.write(b)
			s.wantError("11th client event within a second", float64(4301))
			s.expectAlive()
			for n := 1; n <= 10; n++ {
				r.wantFrame("client event "+strconv.Itoa(n), `{"event":"client-n","channel":"private-rate","data":{"n":`+strconv.Itoa(n)+`}}`)
			}
			sleepToNextSecond()
			s.sendText(`{"event":"client-n","channel":"private-rate","data":{"n":12}}`)
			r.wantFrame("client event in the next second (11 never relayed)", `{"event":"client-n","channel":"private-rate","data":{"n":12}}`)
			s.expectAlive()
		}},
		{name: "client event rate from config", run: func(t *testing.T) {
			s, sid := joinApp(t, srv, rate3)
			r, rid := joinApp(t, srv, rate3)
			s.subscribePrivate(rate3, sid, "private-rate")
			r.subscribePrivate(rate3, rid, "private-rate")
			sleepToNextSecond()
			var b []byte
			for n := 1; n <= 4; n++ {
				b = appendFrame(b, true, opText, []byte(`{"event":"client-n","channel":"private-rate","data":{"n":`+strconv.Itoa(n)+`}}`), true)
			}
			s.write(b)
			s.wantError("4th client event within a second at client_event_rate 3", float64(4301))
			s.expectAlive()
			for n := 1; n <= 3; n++ {
				r.wantFrame("client event "+strconv.Itoa(n), `{"event":"client-n","channel":"private-rate","data":{"n":`+strconv.Itoa(n)+`}}`)
			}
			rate3.trigger(t, srv, "private-rate", "barrier", `{}`)
			r.wantMessage("next event on the receiver (4 never relayed)", eventJSON("barrier", "private-rate", `{}`))
		}},
		{name: "signin", run: func(t *testing.T) {
			w, id := joinApp(t, srv, app)
			ud := `{"id":"alice","user_info":{"name":"Alice"}}`
			w.signin(app, id, ud)
			w.wantSignedIn(ud)
			w.subscribe("#server-to-user-alice", "", "")
			w.wantSubscribed("#server-to-user-alice")
			w.subscribe("#server-to-user-bob", "", "")
			w.wantSubscriptionError("#server-to-user-bob", "AuthError", 401)
			w.signin(app, id, `{"id":"mallory"}`)
			w.wantError("second signin as another user", float64(4009))
			w.expectAlive()
			app.trigger(t, srv, "#server-to-user-mallory", "nope", `{}`)
			app.trigger(t, srv, "#server-to-user-bob", "nope", `{}`)
			app.trigger(t, srv, "#server-to-user-alice", "greet", `{"n":1}`)
			w.wantMessage("sendToUser alice", eventJSON("greet", "#server-to-user-alice", `{"n":1}`))
			w.expectAlive()
		}},
		{name: "signin failures 4009", run: func(t *testing.T) {
			w, id := joinApp(t, srv, app)
			many := make([]string, 101)
			for i := range many {
				many[i] = "w" + strconv.Itoa(i)
			}
			watch101, _ := json.Marshal(map[string]any{"id": "u", "watchlist": many})
			for _, c := range []struct{ what, auth, userData string }{
				{what: "bad signature", auth: "app-key:00", userData: `{"id":"u"}`},
				{what: "signature for another socket", auth: app.auth("1.2::user::" + `{"id":"u"}`), userData: `{"id":"u"}`},
				{what: "no auth", userData: `{"id":"u"}`},
				{what: "user_data not JSON", auth: app.auth(id + "::user::nope"), userData: "nope"},
				{what: "user_data without id", auth: app.auth(id + "::user::" + `{"name":"u"}`), userData: `{"name":"u"}`},
				{what: "empty id", auth: app.auth(id + "::user::" + `{"id":""}`), userData: `{"id":""}`},
				{what: "numeric id", auth: app.auth(id + "::user::" + `{"id":5}`), userData: `{"id":5}`},
				{what: "watchlist of 101", auth: app.auth(id + "::user::" + string(watch101)), userData: string(watch101)},
			} {
				d := map[string]any{"user_data": c.userData}
				if c.auth != "" {
					d["auth"] = c.auth
				}
				w.sendJSON(map[string]any{"event": "pusher:signin", "data": d})
				w.wantError(c.what, float64(4009))
				w.expectAlive()
			}
			w.subscribe("#server-to-user-u", "", "")
			w.wantSubscriptionError("#server-to-user-u", "AuthError", 401)
			// A watchlist of 100 is fine.
			watch100, _ := json.Marshal(map[string]any{"id": "u", "watchlist": many[:100]})
			w.signin(app, id, string(watch100))
			w.wantSignedIn(string(watch100))
			w.wantMessage("watchlist", `{"event":"pusher_internal:watchlist_events","data":"{\"events\":[{\"name\":\"online\",\"user_ids\":[]}]}"}`)
			// Signed in, the connection gets its user's events without subscribing.
			app.trigger(t, srv, "#server-to-user-u", "greet", `{"n":2}`)
			w.wantMessage("sendToUser u", eventJSON("greet", "#server-to-user-u", `{"n":2}`))
		}},
		{name: "terminate connections", run: func(t *testing.T) {
			t1, id1 := joinApp(t, srv, app)
			t1b, id1b := joinApp(t, srv, app)
			t2, id2 := joinApp(t, srv, app)
			t1.signin(app, id1, `{"id":"term-1"}`)
			t1.wantSignedIn(`{"id":"term-1"}`)
			t1b.signin(app, id1b, `{"id":"term-1"}`)
			t1b.wantSignedIn(`{"id":"term-1"}`)
			t2.signin(app, id2, `{"id":"term-2"}`)
			t2.wantSignedIn(`{"id":"term-2"}`)
			status, body := app.post(t, srv, "/apps/app-id/users/term-1/terminate_connections", `{}`)
			if status != 200 || strings.TrimSpace(body) != "{}" {
				t.Errorf("terminate_connections = %d %q, want 200 {}", status, body)
			}
			t1.expectErrorThenClose(4009)
			t1b.expectErrorThenClose(4009)
			t2.expectAlive()
		}},
		{name: "malformed messages get code null", run: func(t *testing.T) {
			w, _ := joinApp(t, srv, app)
			w.send(opBinary, `{"event":"pusher:ping","data":{}}`)
			w.wantError("binary frame", nil)
			w.expectAlive()
			for _, msg := range []string{
				`{not json`,
				`[]`,
				`{"event":42}`,
				`{"event":"pusher:bogus","data":{}}`,
				`{"event":"pusher:subscribe"}`,
				`{"event":"pusher:subscribe","data":{"channel":7}}`,
				`{"event":"pusher:subscribe","data":"nope"}`,
			} {
				w.sendText(msg)
				w.wantError(msg, nil)
				w.expectAlive()
			}
		}},
		{name: "cache channels", run: func(t *testing.T) {
			w, id := joinApp(t, srv, app)
			for _, ch := range []string{"cache-raw", "private-cache-raw", "presence-cache-raw", "private-encrypted-cache-raw"} {
				fresh := ch + "-fresh"
				app.trigger(t, srv, ch, "first", `{"n":1}`)
				app.trigger(t, srv, ch, "last", `{"n":2}`)
				switch {
				case strings.HasPrefix(ch, "presence-"):
					w.subscribePresence(app, id, ch, `{"user_id":"c"}`)
					w.wantMessage("last event of "+ch, eventJSON("last", ch, `{"n":2}`))
					w.subscribePresence(app, id, fresh, `{"user_id":"c"}`)
				case strings.HasPrefix(ch, "private-"):
					w.subscribePrivate(app, id, ch)
					w.wantMessage("last event of "+ch, eventJSON("last", ch, `{"n":2}`))
					w.subscribePrivate(app, id, fresh)
				default:
					w.subscribe(ch, "", "")
					w.wantSubscribed(ch)
					w.wantMessage("last event of "+ch, eventJSON("last", ch, `{"n":2}`))
					w.subscribe(fresh, "", "")
					w.wantSubscribed(fresh)
				}
				w.wantMessage("cache miss on "+fresh, `{"event":"pusher:cache_miss","channel":"`+fresh+`"}`)
			}
			w.expectAlive()

			// Kept while nobody is subscribed, replayed on every subscribe.
			w.sendText(`{"event":"pusher:unsubscribe","data":{"channel":"cache-raw"}}`)
			w.subscribe("cache-raw", "", "")
			w.wantSubscribed("cache-raw")
			w.wantMessage("last event of cache-raw again", eventJSON("last", "cache-raw", `{"n":2}`))
			// The replay is the very frame live subscribers got.
			live, _ := joinApp(t, srv, app)
			live.subscribe("cache-live", "", "")
			live.wantSubscribed("cache-live")
			live.wantMessage("cache miss on cache-live", `{"event":"pusher:cache_miss","channel":"cache-live"}`)
			app.trigger(t, srv, "cache-live", "ev", `{"text":"caf\u00e9 \"quoted\"","n":[1,2.5]}`)
			f := live.mustFrame()
			w.subscribe("cache-live", "", "")
			w.wantSubscribed("cache-live")
			w.wantFrame("replay on cache-live", string(f.payload))
			// A non-cache channel replays nothing.
			app.trigger(t, srv, "plain-raw", "x", `{}`)
			w.subscribe("plain-raw", "", "")
			w.wantSubscribed("plain-raw")
			w.expectAlive()
		}},
		{name: "cache ttl", run: func(t *testing.T) {
			w, _ := joinApp(t, srv, cacheApp)
			cacheApp.trigger(t, srv, "cache-ttl", "ev", `{}`)
			cacheApp.trigger(t, srv, "cache-ttl-expired", "ev", `{}`)
			w.subscribe("cache-ttl", "", "")
			w.wantSubscribed("cache-ttl")
			w.wantMessage("within the ttl", eventJSON("ev", "cache-ttl", `{}`))
			time.Sleep(1500 * time.Millisecond)
			w.subscribe("cache-ttl-expired", "", "")
			w.wantSubscribed("cache-ttl-expired")
			w.wantMessage("after cache_ttl: 1", `{"event":"pusher:cache_miss","channel":"cache-ttl-expired"}`)
		}},
		{name: "subscription count", run: func(t *testing.T) {
			a, aid := joinApp(t, srv, counted)
			b, _ := joinApp(t, srv, counted)
			count := func(ch string, n int) string {
				return `{"event":"pusher_internal:subscription_count","channel":"` + ch + `","data":"{\"subscription_count\":` + strconv.Itoa(n) + `}"}`
			}
			a.subscribe("counted", "", "")
			a.wantSubscribed("counted")
			a.wantMessage("count after a", count("counted", 1))
			b.subscribe("counted", "", "")
			b.wantSubscribed("counted")
			b.wantMessage("count after b, to b", count("counted", 2))
			a.wantMessage("count after b, to a", count("counted", 2))
			b.sendText(`{"event":"pusher:unsubscribe","data":{"channel":"counted"}}`)
			a.wantMessage("count after b left", count("counted", 1))
			b.expectAlive()
			// Presence channels count members instead: no subscription_count.
			a.subscribePresence(counted, aid, "presence-counted", `{"user_id":"a"}`)
			counted.trigger(t, srv, "presence-counted", "after", `{}`)
			a.wantMessage("next event on presence-counted", eventJSON("after", "presence-counted", `{}`))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t)
		})
	}
}

// sleepToNextSecond sleeps until 20 ms into the next wall-clock second.
func sleepToNextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
}
