package redisbroker

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/revurb/revurb/pusher"
)

var testLimits = newLimits(func() *pusher.AppConfig { a := pusher.DefaultApp("app", "key", "secret"); return &a }())

func testHeader(kind byte) header {
	return header{kind: kind, origin: "n1", time: 1700000000123, app: "app"}
}

// TestMessageRoundTrip: every message reads back as it was written.
func TestMessageRoundTrip(t *testing.T) {
	h := testHeader(0)
	bc := pusher.Broadcast{Origin: "n1", App: "app", Channels: []string{"a", "cache-b"}, Event: "e",
		Data: []byte(`{"x":"ü"}`), Except: "1.2", CacheUntilMs: 1700000000123, ClientEvent: true, User: "u"}
	mb := pusher.Membership{App: "app", Channel: "presence-x", User: "ann", Info: []byte(`{"n":1}`), Added: true, Except: "1.2", Node: "n1"}
	cc := []pusher.ChannelCount{{Channel: "a", Count: 3}, {Channel: "b", Count: 0}}
	for _, tc := range []struct {
		name  string
		msg   []byte
		check func(m *message) bool
	}{
		{"broadcast", appendBroadcast(nil, h, &bc, 1<<40+3), func(m *message) bool {
			return m.kind == kindBroadcast && reflect.DeepEqual(m.broadcast, bc) && m.seq == 1<<40+3
		}},
		{"counts", appendCounts(nil, h, 7, true, 9, true, cc), func(m *message) bool {
			want := pusher.Counts{Node: "n1", App: "app", Full: true, Channels: cc, Connections: 7}
			return m.kind == kindCounts && reflect.DeepEqual(m.counts, want) && m.gen == 9 && m.last
		}},
		{"terminate", appendTerminate(nil, h, "42"), func(m *message) bool { return m.kind == kindTerminate && m.user == "42" }},
		{"hello", appendHello(nil, h), func(m *message) bool { return m.kind == kindHello }},
		{"member", appendMember(nil, h, &mb), func(m *message) bool { return m.kind == kindMember && reflect.DeepEqual(m.member, mb) }},
		{"goodbye", appendGoodbye(nil, h, "dead"), func(m *message) bool { return m.kind == kindGoodbye && m.node == "dead" }},
		{"marker", appendMarker(nil, h, 77), func(m *message) bool { return m.kind == kindMarker && m.token == 77 }},
		{"reset", appendReset(nil, h), func(m *message) bool { return m.kind == kindReset }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m message
			if err := decode(tc.msg, &testLimits, &m); err != nil || !tc.check(&m) {
				t.Fatalf("%v %+v", err, m)
			}
			if m.origin != "n1" || m.app != "app" || m.time != 1700000000123 {
				t.Fatalf("header %+v", m.header)
			}
		})
	}
}

// TestMessageSignature: a message reads only under the key it was signed
// with, whole.
func TestMessageSignature(t *testing.T) {
	a := pusher.DefaultApp("app", "key", "secret")
	s := newSigner(busKey("", &a))
	msg := s.sign(appendHello(nil, testHeader(0)))
	if body, ok := s.open(msg); !ok || !bytes.Equal(body, msg[:len(msg)-macSize]) {
		t.Fatal("a signed message does not open")
	}
	for name, other := range map[string]*signer{
		"another secret":        newSigner(busKey("", &pusher.AppConfig{ID: "app", Key: "key", Secret: "other"})),
		"another app":           newSigner(busKey("", &pusher.AppConfig{ID: "app2", Key: "key", Secret: "secret"})),
		"a cluster secret":      newSigner(busKey("cluster", &a)),
		"another cluster's one": newSigner(busKey("cluster2", &a)),
	} {
		if _, ok := other.open(msg); ok {
			t.Errorf("opened under %s", name)
		}
	}
	for i := range msg {
		bad := bytes.Clone(msg)
		bad[i] ^= 1
		if _, ok := s.open(bad); ok {
			t.Fatalf("opened with byte %d changed", i)
		}
	}
	if _, ok := s.open(msg[:macSize-1]); ok {
		t.Fatal("opened a message shorter than a MAC")
	}
}

// TestMessageLimits: a message past the app's limits is refused, naming
// the limit.
func TestMessageLimits(t *testing.T) {
	h := testHeader(0)
	many := make([]string, testLimits.channels+1)
	for i := range many {
		many[i] = "c"
	}
	counts := make([]pusher.ChannelCount, maxCountsPerMessage+1)
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"data", appendBroadcast(nil, h, &pusher.Broadcast{Channels: []string{"c"}, Event: "e", Data: make([]byte, testLimits.data+1)}, 1), errSize},
		{"event name", appendBroadcast(nil, h, &pusher.Broadcast{Channels: []string{"c"}, Event: strings.Repeat("e", testLimits.event+1)}, 1), errSize},
		{"channel name", appendBroadcast(nil, h, &pusher.Broadcast{Channels: []string{strings.Repeat("c", testLimits.name+1)}, Event: "e"}, 1), errSize},
		{"channels", appendBroadcast(nil, h, &pusher.Broadcast{Channels: many, Event: "e"}, 1), errLimit},
		{"no channel", appendBroadcast(nil, h, &pusher.Broadcast{Event: "e"}, 1), errLimit},
		{"counts", appendCounts(nil, h, 0, false, 0, true, counts), errLimit},
		{"user_info", appendMember(nil, h, &pusher.Membership{Channel: "presence-c", User: "u", Info: make([]byte, testLimits.info+1)}), errSize},
		{"user", appendTerminate(nil, h, strings.Repeat("u", maxID+1)), errSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m message
			if err := decode(tc.msg, &testLimits, &m); err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	var m message
	if err := decode(appendBroadcast(nil, h, &pusher.Broadcast{Channels: many[:testLimits.channels], Event: "e", Data: make([]byte, testLimits.data)}, 1), &testLimits, &m); err != nil {
		t.Fatalf("a message at every limit: %v", err)
	}
}

// TestMessageMalformed: a message cut short, padded, of an unknown kind
// or version is refused.
func TestMessageMalformed(t *testing.T) {
	b := appendBroadcast(nil, testHeader(0), &pusher.Broadcast{Channels: []string{"c"}, Event: "e", Data: []byte("d")}, 7)
	var m message
	for i := 0; i < len(b); i++ {
		if decode(b[:i], &testLimits, &m) == nil {
			t.Fatalf("accepted %d of %d bytes", i, len(b))
		}
	}
	for _, in := range [][]byte{append(bytes.Clone(b), 0), {version, 99, 0, 0, 0}, append([]byte{version + 1}, b[1:]...), []byte(`{"k":"m"}`)} {
		if decode(in, &testLimits, &m) == nil {
			t.Fatalf("accepted %q", in)
		}
	}
}

// FuzzDecode: whatever arrives on the bus, decode neither panics nor
// accepts a message it would not write the same way again.
func FuzzDecode(f *testing.F) {
	h := testHeader(0)
	f.Add(appendBroadcast(nil, h, &pusher.Broadcast{Channels: []string{"c"}, Event: "e", Data: []byte("d"), CacheUntilMs: 5}, 9))
	f.Add(appendCounts(nil, h, 3, false, 0, true, []pusher.ChannelCount{{Channel: "c", Count: 2}}))
	f.Add(appendTerminate(nil, h, "u"))
	f.Add(appendHello(nil, h))
	f.Add(appendMember(nil, h, &pusher.Membership{Channel: "presence-c", User: "u", Info: []byte("{}"), Added: true}))
	f.Add(appendGoodbye(nil, h, "d"))
	f.Add(appendMarker(nil, h, 3))
	f.Fuzz(func(t *testing.T, in []byte) {
		var m message
		if decode(in, &testLimits, &m) != nil {
			return
		}
		var again []byte
		switch m.kind {
		case kindBroadcast:
			again = appendBroadcast(nil, m.header, &m.broadcast, m.seq)
		case kindCounts:
			again = appendCounts(nil, m.header, m.counts.Connections, m.counts.Full, m.gen, m.last, m.counts.Channels)
		case kindTerminate:
			again = appendTerminate(nil, m.header, m.user)
		case kindHello:
			again = appendHello(nil, m.header)
		case kindMember:
			again = appendMember(nil, m.header, &m.member)
		case kindGoodbye:
			again = appendGoodbye(nil, m.header, m.node)
		case kindMarker:
			again = appendMarker(nil, m.header, m.token)
		case kindReset:
			again = appendReset(nil, m.header)
		}
		var m2 message
		if err := decode(again, &testLimits, &m2); err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("%q decoded to %+v, which writes as %q and reads back as %+v (%v)", in, m, again, m2, err)
		}
	})
}
