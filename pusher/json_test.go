package pusher

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// referenceEnvelope is what encoding/json makes of a client message: the
// naive reference the scanner is checked against.
func referenceEnvelope(msg []byte) (e envelope, ok bool) {
	if !json.Valid(msg) {
		return e, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(msg, &m) != nil {
		return e, false
	}
	var event, channel string
	isString := func(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }
	if !isString(m["event"]) || json.Unmarshal(m["event"], &event) != nil {
		return e, false
	}
	e.event = []byte(event)
	if raw, has := m["channel"]; has {
		if !isString(raw) || json.Unmarshal(raw, &channel) != nil {
			return e, false
		}
		e.channel = []byte(channel)
	}
	e.data = m["data"]
	return e, true
}

func checkEnvelope(t *testing.T, msg []byte) {
	t.Helper()
	if !utf8.Valid(msg) {
		return // text frames are checked for UTF-8 before they get here
	}
	var got envelope
	err := parseEnvelope(msg, &got)
	want, ok := referenceEnvelope(msg)
	if bytes.Count(msg, []byte("["))+bytes.Count(msg, []byte("{")) > maxJSONDepth {
		return // the scanner refuses deep nesting that encoding/json takes
	}
	if dup := strings.Count(string(msg), `"event"`) + strings.Count(string(msg), `"channel"`) + strings.Count(string(msg), `"data"`); dup > 3 {
		return // repeated keys: which one wins is not specified
	}
	if (err == nil) != ok {
		t.Fatalf("parseEnvelope(%q) err = %v, encoding/json ok = %v", msg, err, ok)
	}
	if err != nil {
		return
	}
	if !bytes.Equal(got.event, want.event) || !bytes.Equal(got.channel, want.channel) {
		t.Fatalf("parseEnvelope(%q) = event %q channel %q, want %q %q", msg, got.event, got.channel, want.event, want.channel)
	}
	if !bytes.Equal(bytes.TrimSpace(got.data), bytes.TrimSpace(want.data)) {
		t.Fatalf("parseEnvelope(%q) data %q, want %q", msg, got.data, want.data)
	}
}

func TestParseEnvelopeMatchesEncodingJSON(t *testing.T) {
	for _, msg := range []string{
		`{"event":"pusher:ping","data":{}}`,
		` { "event" : "client-a" , "channel" : "private-x" , "data" : [1, -2.5e+3, true, false, null, "s\"\\\/\b\f\n\r\t\u00e9"] } `,
		`{"event":"e\u0041","channel":"c\n"}`,
		`{"event":"a","data":01}`,
		`{"event":"a","data":1.}`,
		`{"event":"a","data":-}`,
		`{"event":"a","data":1e}`,
		`{"event":"a","data":"\u12"}`,
		`{"event":"a",}`,
		`{"event":"a" "data":1}`,
		`{"event":"a","data":[1,]}`,
		`{"event":"a","data":{"x":1,}}`,
		`{"event":"a","data":tru}`,
		`{"event":"a"}}`,
		`{"event":null}`,
		`{"channel":"x"}`,
		`"event"`,
		``,
		`{"event":"a","data":"` + "\x7f\xc3\xa9" + `"}`,
		`{"event":"a","channel":5}`,
	} {
		checkEnvelope(t, []byte(msg))
	}
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"event":"client-a","channel":"private-x","data":{"a":[1,2,{"b":null}]}}`))
	f.Add([]byte(`{"event":"pusher:subscribe","data":{"channel":"a","auth":"k:s"}}`))
	f.Add([]byte(`{"event":"\u0041\n","data":"x"}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		checkEnvelope(t, msg)
	})
}

// FuzzHandle sends arbitrary messages from one subscribed, signed-in
// session to a server with other subscribers: nothing panics, and the
// others stay subscribed.
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"event":"pusher:subscribe","data":{"channel":"presence-x","auth":"app-key:00","channel_data":"{\"user_id\":1}"}}`,
		`{"event":"pusher:unsubscribe","data":{"channel":"private-chat"}}`,
		`{"event":"client-x","channel":"private-chat","data":{"a":1}}`,
		`{"event":"pusher:signin","data":{"auth":"app-key:00","user_data":"{\"id\":\"1\"}"}}`,
		`{"event":"pusher:subscribe","data":"{\"channel\":\"cache-a\"}"}`,
		`{"event":"pusher:ping"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, app := newServer(t, 2, func(a *AppConfig) { a.ClientEventRate = 0; a.MaxMessageRate = 0 })
		a, b := dial(t, s, 0), dial(t, s, 1)
		a.subscribe("private-chat")
		b.subscribe("private-chat")
		s.Handle(&a.sess, msg)
		s.Handle(&a.sess, msg)
		s.Close(&a.sess)
		if got := s.Channel(app, "private-chat").SubscriptionCount; got != 1 {
			t.Fatalf("after %q: %d subscribers, want 1", msg, got)
		}
		if n := len(s.Channels(app, "")); n != 1 {
			t.Fatalf("after %q: %d channels occupied, want 1", msg, n)
		}
	})
}
