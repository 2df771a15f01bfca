package api

import (
	"testing"
)

// TestOccupied runs the API against channels with subscribers: counts,
// users, delivery, socket_id exclusion, all-or-nothing batches, the cache
// and terminate_connections.
func TestOccupied(t *testing.T) {
	f := newFixture(t, Config{})
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
