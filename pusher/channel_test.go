package pusher

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestValidChannelName(t *testing.T) {
	for name, want := range map[string]bool{
		"my-channel":             true,
		"private-a_b=c@d,e.f;g":  true,
		"#server-to-user-1":      true,
		"":                       false,
		"bad channel":            false,
		"a#b":                    false,
		"ünicode":                false,
		strings.Repeat("a", 164): true,
		strings.Repeat("a", 165): false,
		"presence-x/y":           false,
	} {
		if got := ValidChannelName(name, 164); got != want {
			t.Errorf("ValidChannelName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestChannelKind(t *testing.T) {
	tests := []struct {
		name  string
		kind  Kind
		cache bool
	}{
		{"chat", Public, false},
		{"cache-chat", Public, true},
		{"private-chat", Private, false},
		{"private-cache-chat", Private, true},
		{"presence-room", Presence, false},
		{"presence-cache-room", Presence, true},
		{"private-encrypted-x", Encrypted, false},
		{"private-encrypted-cache-x", Encrypted, true},
		{"#server-to-user-1", ServerOnly, false},
	}
	for _, tt := range tests {
		kind, cache := ChannelKind(tt.name)
		if kind != tt.kind || cache != tt.cache {
			t.Errorf("ChannelKind(%q) = %v %v, want %v %v", tt.name, kind, cache, tt.kind, tt.cache)
		}
	}
}

func TestSubscribePublic(t *testing.T) {
	s, app := newServer(t, 2)
	a, b := dial(t, s, 0), dial(t, s, 1)
	a.subscribe("news")
	b.subscribe("news")
	a.subscribe("news") // twice: one membership
	publish(s, app, []string{"news"}, "flash", []byte(`{"x":1}`), "")
	for _, c := range []*client{a, b} {
		m := c.mustEvent("flash")
		if m["channel"] != "news" || m["data"] != `{"x":1}` {
			t.Fatalf("got %v", m)
		}
		c.none()
	}
	if info := s.Channel(app, "news"); info.SubscriptionCount != 2 || !info.Occupied {
		t.Fatalf("info %+v", info)
	}
	b.send(`{"event":"pusher:unsubscribe","data":{"channel":"news"}}`)
	b.none()
	publish(s, app, []string{"news"}, "flash", []byte(`2`), a.sess.ID().String())
	a.none()
	b.none()
	s.Close(&a.sess)
	if info := s.Channel(app, "news"); info.Occupied {
		t.Fatalf("channel still occupied after everyone left: %+v", info)
	}
}

func TestSubscribeRefused(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		typ    string
		status float64
	}{
		{name: "bad name", data: `{"channel":"bad channel"}`, typ: "InvalidChannel", status: 400},
		{name: "too long", data: `{"channel":"` + strings.Repeat("a", 165) + `"}`, typ: "InvalidChannel", status: 400},
		{name: "server channel", data: `{"channel":"#server-to-user-1"}`, typ: "AuthError", status: 401},
		{name: "private no auth", data: `{"channel":"private-a"}`, typ: "AuthError", status: 401},
		{name: "private bad auth", data: `{"channel":"private-a","auth":"app-key:00"}`, typ: "AuthError", status: 401},
		{name: "private wrong key", data: `{"channel":"private-a","auth":"other:00"}`, typ: "AuthError", status: 401},
		{name: "encrypted no auth", data: `{"channel":"private-encrypted-a","auth":""}`, typ: "AuthError", status: 401},
		{name: "presence no data", data: `{"channel":"presence-a","auth":"app-key:00"}`, typ: "AuthError", status: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, app := newServer(t, 1)
			c := dial(t, s, 0)
			c.send(`{"event":"pusher:subscribe","data":` + tt.data + `}`)
			m := c.mustEvent("pusher:subscription_error")
			d := m["data"].(map[string]any)
			if d["type"] != tt.typ || d["status"] != tt.status || d["error"] == "" {
				t.Fatalf("data %v", d)
			}
			if len(s.Channels(app, "")) != 0 {
				t.Fatal("refused subscription occupies a channel")
			}
			c.send(`{"event":"pusher:ping"}`)
			c.mustEvent("pusher:pong")
		})
	}
}

func TestPrivateAuth(t *testing.T) {
	s, app := newServer(t, 1)
	a := dial(t, s, 0)
	b := dial(t, s, 0)
	a.subscribe("private-room")
	a.subscribe("private-encrypted-room")
	// b presents a's signature: bound to a's socket_id, refused.
	auth := "app-key:" + Sign("app-secret", a.sess.ID().String()+":private-room")
	b.send(`{"event":"pusher:subscribe","data":{"channel":"private-room","auth":"` + auth + `"}}`)
	b.mustEvent("pusher:subscription_error")
	publish(s, app, []string{"private-room"}, "e", []byte("1"), "")
	a.mustEvent("e")
	b.none()
}

func TestPresence(t *testing.T) {
	s, app := newServer(t, 2)
	a := dial(t, s, 0)
	d := a.join("presence-room", `{"user_id":"1","user_info":{"name":"Ann"}}`)
	p := d["presence"].(map[string]any)
	if p["count"] != float64(1) || p["ids"].([]any)[0] != "1" || p["hash"].(map[string]any)["1"].(map[string]any)["name"] != "Ann" {
		t.Fatalf("presence %v", p)
	}
	b := dial(t, s, 1)
	d = b.join("presence-room", `{"user_id":2}`)
	p = d["presence"].(map[string]any)
	if p["count"] != float64(2) || len(p["ids"].([]any)) != 2 {
		t.Fatalf("presence %v", p)
	}
	added := data(t, a.mustEvent("pusher_internal:member_added"))
	if added["user_id"] != "2" || added["user_info"] != nil {
		t.Fatalf("member_added %v", added)
	}
	b.none() // no member_added to the joiner itself

	// A second connection of user 2 is not a new member.
	b2 := dial(t, s, 0)
	d = b2.join("presence-room", `{"user_id":2}`)
	if d["presence"].(map[string]any)["count"] != float64(2) {
		t.Fatalf("second connection of a user counted: %v", d)
	}
	a.none()
	b.none()
	if got := s.Channel(app, "presence-room"); got.UserCount != 2 || got.SubscriptionCount != 3 {
		t.Fatalf("info %+v", got)
	}
	if got := s.Users(app, "presence-room"); strings.Join(got, ",") != "1,2" {
		t.Fatalf("users %v", got)
	}

	// The member leaves only with its last connection.
	s.Close(&b.sess)
	a.none()
	b2.send(`{"event":"pusher:unsubscribe","data":{"channel":"presence-room"}}`)
	removed := data(t, a.mustEvent("pusher_internal:member_removed"))
	if removed["user_id"] != "2" {
		t.Fatalf("member_removed %v", removed)
	}
}

func TestPresenceLimits(t *testing.T) {
	s, _ := newServer(t, 1, func(a *AppConfig) { a.MaxPresenceMembers = 2; a.MaxUserInfoSize = 20 })
	a, b, c := dial(t, s, 0), dial(t, s, 0), dial(t, s, 0)
	a.join("presence-x", `{"user_id":"1"}`)
	b.join("presence-x", `{"user_id":"2"}`)
	a.mustEvent("pusher_internal:member_added")
	join := func(c *client, cd string) map[string]any {
		auth := "app-key:" + Sign("app-secret", c.sess.ID().String()+":presence-x:"+cd)
		c.send(`{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"` + auth + `","channel_data":` + strconv.Quote(cd) + `}}`)
		return c.next()
	}
	m := join(c, `{"user_id":"3"}`)
	if m["event"] != "pusher:subscription_error" || m["data"].(map[string]any)["status"] != float64(CodeOverCapacity) {
		t.Fatalf("third member: %v", m)
	}
	// An existing member's second connection still fits.
	if m := join(c, `{"user_id":"2"}`); m["event"] != "pusher_internal:subscription_succeeded" {
		t.Fatalf("existing member refused: %v", m)
	}
	for _, cd := range []string{`{"user_id":"9","user_info":{"bio":"` + strings.Repeat("x", 30) + `"}}`, `{"user_info":{}}`, `{"user_id":""}`, `{"user_id":"` + strings.Repeat("u", 129) + `"}`, `{"user_id":true}`, `nope`} {
		d := dial(t, s, 0)
		if m := join(d, cd); m["event"] != "pusher:subscription_error" {
			t.Fatalf("channel_data %s accepted: %v", cd, m)
		}
	}
}

func TestCacheChannel(t *testing.T) {
	s, app := newServer(t, 1, func(a *AppConfig) { a.CacheTTL = 60 })
	a := dial(t, s, 0)
	a.subscribe("cache-news")
	a.mustEvent("pusher:cache_miss")
	s.Close(&a.sess)
	// Nobody is subscribed, yet the cache keeps the event.
	publish(s, app, []string{"cache-news"}, "headline", []byte("hello"), "")
	b := dial(t, s, 0)
	b.subscribe("cache-news")
	m := b.mustEvent("headline")
	if m["data"] != "hello" || m["channel"] != "cache-news" {
		t.Fatalf("replayed %v", m)
	}
	ev, ttl, ok := s.CachedEvent(app, "cache-news")
	if !ok || ttl <= 0 || !strings.Contains(string(ev), `"headline"`) {
		t.Fatalf("CachedEvent = %s %v %v", ev, ttl, ok)
	}
	// Expired: a miss again.
	sh := app.hub.shard("cache-news")
	sh.cache["cache-news"].expires = time.Now().Add(-time.Second).UnixNano()
	c := dial(t, s, 0)
	c.subscribe("cache-news")
	c.mustEvent("pusher:cache_miss")
	for _, name := range []string{"private-cache-x", "private-encrypted-cache-x"} {
		d := dial(t, s, 0)
		d.subscribe(name)
		d.mustEvent("pusher:cache_miss")
	}
	e := dial(t, s, 0)
	e.join("presence-cache-x", `{"user_id":"1"}`)
	e.mustEvent("pusher:cache_miss")
}

func TestSubscriptionCount(t *testing.T) {
	s, _ := newServer(t, 1, func(a *AppConfig) { a.SubscriptionCount = true })
	a, b := dial(t, s, 0), dial(t, s, 0)
	a.subscribe("room")
	if d := data(t, a.mustEvent("pusher_internal:subscription_count")); d["subscription_count"] != float64(1) {
		t.Fatalf("count %v", d)
	}
	b.subscribe("room")
	for _, c := range []*client{a, b} {
		if d := data(t, c.mustEvent("pusher_internal:subscription_count")); d["subscription_count"] != float64(2) {
			t.Fatalf("count %v", d)
		}
	}
	s.Close(&b.sess)
	if d := data(t, a.mustEvent("pusher_internal:subscription_count")); d["subscription_count"] != float64(1) {
		t.Fatalf("count %v", d)
	}
	// Presence channels never get it.
	c := dial(t, s, 0)
	c.join("presence-room", `{"user_id":"1"}`)
	c.none()
}

func TestSubscriptionCountOff(t *testing.T) {
	s, _ := newServer(t, 1)
	a := dial(t, s, 0)
	a.subscribe("room")
	a.none()
}

func TestExpire(t *testing.T) {
	s, app := newServer(t, 1, func(a *AppConfig) { a.CacheTTL = 10 })
	publish(s, app, []string{"cache-a"}, "e", []byte("1"), "")
	now := time.Now()
	s.Expire(now.UnixNano())
	if _, _, ok := s.CachedEvent(app, "cache-a"); !ok {
		t.Fatal("expired before its TTL")
	}
	s.Expire(now.Add(11 * time.Second).UnixNano())
	if n := len(app.hub.shard("cache-a").cache); n != 0 {
		t.Fatalf("%d cached events left after their TTL", n)
	}
}
