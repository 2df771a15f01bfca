package pusher

import (
	"testing"
)

func TestTap(t *testing.T) {
	s, app := newServer(t, 1)
	if app.Watched() {
		t.Fatal("watched before any viewer")
	}
	v := app.Watch(64)
	small := app.Watch(1)
	c := dial(t, s, 0)
	c.subscribe("private-a")
	publish(s, app, []string{"private-a"}, "greet", []byte(`"hi"`), "")
	c.send(`{"event":"pusher:subscribe","data":{"channel":"private-b","auth":"app-key:bad"}}`)
	s.Close(&c.sess)
	var got []TapEvent
	for len(v.Events()) > 0 {
		got = append(got, <-v.Events())
	}
	want := []struct {
		kind    TapKind
		channel string
	}{{TapConnected, ""}, {TapSubscribed, "private-a"}, {TapAPIEvent, "private-a"}, {TapError, "private-b"}, {TapUnsubscribed, "private-a"}, {TapDisconnected, ""}}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].Channel != w.channel || got[i].Time == 0 {
			t.Errorf("event %d = %+v, want %v on %q", i, got[i], w.kind, w.channel)
		}
	}
	if got[2].Event != "greet" || got[2].Data != `"hi"` || v.Messages() != 1 {
		t.Errorf("api event %+v, %d messages", got[2], v.Messages())
	}
	if n := small.Skipped(); n != uint64(len(want)-1) {
		t.Errorf("a full viewer skipped %d, want %d", n, len(want)-1)
	}
	v.Close()
	small.Close()
	v.Close()
	if app.Watched() {
		t.Fatal("watched after every viewer closed")
	}
}
