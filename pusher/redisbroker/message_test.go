package redisbroker

import (
	"reflect"
	"testing"

	"github.com/revurb/revurb/pusher"
)

// TestMessageRoundTrip: every binary message reads back as it was written.
func TestMessageRoundTrip(t *testing.T) {
	b := pusher.Broadcast{Origin: "n1", App: "app", Channels: []string{"a", "cache-b"}, Event: "e",
		Data: []byte(`{"x":"ü"}`), Except: "1.2", CacheUntil: 1700000000123, ClientEvent: true, User: "u"}
	var m message
	if err := decode(appendBroadcast(nil, &b, 1<<40+3), &m); err != nil || m.kind != kindBroadcast || !reflect.DeepEqual(m.broadcast, b) || m.seq != 1<<40+3 {
		t.Fatalf("broadcast: %v %+v", err, m.broadcast)
	}
	c := pusher.Counts{Node: "n2", App: "app", Full: true, Connections: 7,
		Channels: []pusher.ChannelCount{{Channel: "a", Count: 3}, {Channel: "b", Count: 0}}}
	if err := decode(appendCounts(nil, &c), &m); err != nil || m.kind != kindCounts || !reflect.DeepEqual(m.counts, c) {
		t.Fatalf("counts: %v %+v", err, m.counts)
	}
	if err := decode(appendTerminate(nil, "n3", "app", "42"), &m); err != nil || m.origin != "n3" || m.app != "app" || m.user != "42" {
		t.Fatalf("terminate: %v %+v", err, m)
	}
	if err := decode(appendHello(nil, "n4"), &m); err != nil || m.kind != kindHello || m.origin != "n4" {
		t.Fatalf("hello: %v %+v", err, m)
	}
}

// TestMessageJSON reads what the Lua scripts write.
func TestMessageJSON(t *testing.T) {
	var m message
	if err := decode([]byte(`{"k":"m","a":"app","c":"presence-x","u":"ann","i":"{\"n\":1}","x":"1.2","d":1}`), &m); err != nil {
		t.Fatal(err)
	}
	want := pusher.Membership{App: "app", Channel: "presence-x", User: "ann", Info: []byte(`{"n":1}`), Added: true, Except: "1.2"}
	if m.kind != 'm' || !reflect.DeepEqual(m.member, want) {
		t.Fatalf("member %+v", m.member)
	}
	if err := decode([]byte(`{"k":"g","n":"dead"}`), &m); err != nil || m.kind != 'g' || m.node != "dead" {
		t.Fatalf("gone: %v %+v", err, m)
	}
}

// TestMessageMalformed: a message cut short, padded, or of an unknown kind
// is refused.
func TestMessageMalformed(t *testing.T) {
	b := appendBroadcast(nil, &pusher.Broadcast{Origin: "n", App: "a", Channels: []string{"c"}, Event: "e", Data: []byte("d")}, 7)
	var m message
	for i := 0; i < len(b); i++ {
		if decode(b[:i], &m) == nil {
			t.Fatalf("accepted %d of %d bytes", i, len(b))
		}
	}
	for _, in := range [][]byte{append(append([]byte(nil), b...), 0), {99}, {kindCounts, 1, 'n', 1, 'a', 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, []byte(`{"k":"?"}`), []byte(`{`)} {
		if decode(in, &m) == nil {
			t.Fatalf("accepted %q", in)
		}
	}
}

// FuzzDecode: whatever arrives on the bus, decode neither panics nor
// accepts a message it would not write the same way again.
func FuzzDecode(f *testing.F) {
	f.Add(appendBroadcast(nil, &pusher.Broadcast{Origin: "n", App: "a", Channels: []string{"c"}, Event: "e", Data: []byte("d"), CacheUntil: 5}, 9))
	f.Add(appendCounts(nil, &pusher.Counts{Node: "n", App: "a", Channels: []pusher.ChannelCount{{Channel: "c", Count: 2}}}))
	f.Add(appendTerminate(nil, "n", "a", "u"))
	f.Add(appendHello(nil, "n"))
	f.Add([]byte(`{"k":"m","a":"a","c":"presence-c","u":"u","d":0}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var m message
		if decode(in, &m) != nil {
			return
		}
		var again []byte
		switch m.kind {
		case kindBroadcast:
			again = appendBroadcast(nil, &m.broadcast, m.seq)
		case kindCounts:
			again = appendCounts(nil, &m.counts)
		case kindTerminate:
			again = appendTerminate(nil, m.origin, m.app, m.user)
		case kindHello:
			again = appendHello(nil, m.origin)
		default:
			return // JSON
		}
		var m2 message
		if err := decode(again, &m2); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("%q decoded to %+v, which writes as %q and reads back as %+v (%v)", in, m, again, m2, err)
		}
	})
}
