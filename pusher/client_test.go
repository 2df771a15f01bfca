package pusher

import (
	"strings"
	"testing"
)

func TestClientEvents(t *testing.T) {
	s, _ := newServer(t, 2)
	a, b, c := dial(t, s, 0), dial(t, s, 1), dial(t, s, 0)
	for _, x := range []*client{a, b, c} {
		x.subscribe("private-chat")
	}
	a.send(`{"event":"client-typing","channel":"private-chat","data":{"who":"a"}}`)
	for _, x := range []*client{b, c} {
		m := x.mustEvent("client-typing")
		if m["channel"] != "private-chat" || m["data"].(map[string]any)["who"] != "a" {
			t.Fatalf("relayed %v", m)
		}
		if _, ok := m["user_id"]; ok {
			t.Fatal("user_id on a private channel")
		}
	}
	a.none() // never echoed

	// Presence: the frame carries the sender's user_id.
	a.join("presence-room", `{"user_id":"ann"}`)
	b.join("presence-room", `{"user_id":"bob"}`)
	a.mustEvent("pusher_internal:member_added")
	b.send(`{"event":"client-wave","channel":"presence-room","data":"hi"}`)
	if m := a.mustEvent("client-wave"); m["user_id"] != "bob" || m["data"] != "hi" {
		t.Fatalf("presence client event %v", m)
	}
	b.none()
}

func TestClientEventRefused(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*AppConfig)
		msg  string
	}{
		{name: "disabled", mod: func(a *AppConfig) { a.ClientEvents = false }, msg: `{"event":"client-x","channel":"private-chat","data":{}}`},
		{name: "public channel", msg: `{"event":"client-x","channel":"public","data":{}}`},
		{name: "encrypted channel", msg: `{"event":"client-x","channel":"private-encrypted-x","data":{}}`},
		{name: "not subscribed", msg: `{"event":"client-x","channel":"private-other","data":{}}`},
		{name: "no channel", msg: `{"event":"client-x","data":{}}`},
		{name: "no data", msg: `{"event":"client-x","channel":"private-chat"}`},
		{name: "name too long", msg: `{"event":"client-` + strings.Repeat("x", 200) + `","channel":"private-chat","data":{}}`},
		{name: "data too large", mod: func(a *AppConfig) { a.MaxEventDataSize = 10 }, msg: `{"event":"client-x","channel":"private-chat","data":"0123456789abc"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newServer(t, 1, tt.mod)
			a, b := dial(t, s, 0), dial(t, s, 0)
			for _, x := range []*client{a, b} {
				x.subscribe("private-chat")
				x.subscribe("public")
				x.subscribe("private-encrypted-x")
			}
			a.send(tt.msg)
			if got := a.errorCode(); got != CodeClientEventLimit {
				t.Fatalf("code %d, want 4301", got)
			}
			b.none()
			if a.conn.closeCode != 0 {
				t.Fatal("connection closed")
			}
		})
	}
}

func TestClientEventRate(t *testing.T) {
	s, _ := newServer(t, 1, func(a *AppConfig) { a.ClientEventRate = 3 })
	a, b := dial(t, s, 0), dial(t, s, 0)
	a.subscribe("private-chat")
	b.subscribe("private-chat")
	for i := 0; i < 3; i++ {
		a.send(`{"event":"client-x","channel":"private-chat","data":{}}`)
		b.mustEvent("client-x")
	}
	a.send(`{"event":"client-x","channel":"private-chat","data":{}}`)
	if got := a.errorCode(); got != CodeClientEventLimit {
		t.Fatalf("code %d, want 4301", got)
	}
	b.none()
	if a.conn.closeCode != 0 {
		t.Fatal("closed over the rate limit; pusher-js would stop reconnecting")
	}
	// The next second's window is open again.
	a.sess.rate.second--
	a.send(`{"event":"client-x","channel":"private-chat","data":{}}`)
	b.mustEvent("client-x")
}
