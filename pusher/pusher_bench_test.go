package pusher

import (
	"strconv"
	"testing"

	json "github.com/goccy/go-json"
)

func benchmarkPublish(b *testing.B, subs int) {
	s, app := newServer(b, 2)
	app.MaxConnections = 0
	steady(b, s, 2, subs, "news")
	channels := []string{"news"}
	data := []byte(`{"title":"hello","body":"world"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		publish(s, app, channels, "flash", data, "")
	}
}

func BenchmarkPublish_1Sub(b *testing.B)     { benchmarkPublish(b, 1) }
func BenchmarkPublish_1kSubs(b *testing.B)   { benchmarkPublish(b, 1000) }
func BenchmarkPublish_100kSubs(b *testing.B) { benchmarkPublish(b, 100_000) }

func benchmarkClientEvent(b *testing.B, subs int) {
	s, _ := newServer(b, 1, func(a *AppConfig) { a.ClientEventRate = 0; a.MaxMessageRate = 0 })
	sessions := steady(b, s, 1, subs+1, "private-chat")
	msg := []byte(`{"event":"client-typing","channel":"private-chat","data":{"who":"a","n":12}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Handle(sessions[0], msg)
	}
}

func BenchmarkClientEvent_1Sub(b *testing.B)   { benchmarkClientEvent(b, 1) }
func BenchmarkClientEvent_1kSubs(b *testing.B) { benchmarkClientEvent(b, 1000) }

func BenchmarkParseEnvelope(b *testing.B) {
	msg := []byte(`{"event":"client-typing","channel":"private-chat","data":{"who":"a","n":12,"list":[1,2,3]}}`)
	var e envelope
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		if err := parseEnvelope(msg, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubscribe(b *testing.B) {
	s, _ := newServer(b, 1)
	sess := steady(b, s, 1, 1, "warmup")[0]
	msgs := make([][]byte, 1024)
	for i := range msgs {
		msgs[i] = []byte(`{"event":"pusher:subscribe","data":{"channel":"room-` + strconv.Itoa(i) + `"}}`)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Handle(sess, msgs[i%len(msgs)])
		if len(sess.subs) == len(msgs) {
			b.StopTimer()
			for len(sess.subs) > 1 {
				s.unsubscribe(sess, len(sess.subs)-1)
			}
			b.StartTimer()
		}
	}
}

// BenchmarkParseEnvelopeGoJSON is the reference for BenchmarkParseEnvelope:
// the same message unmarshalled with go-json into a struct, as a server
// without its own scanner would. Compare the two as a ratio from one run.
func BenchmarkParseEnvelopeGoJSON(b *testing.B) {
	msg := []byte(`{"event":"client-typing","channel":"private-chat","data":{"who":"a","n":12,"list":[1,2,3]}}`)
	var e struct {
		Event   string          `json:"event"`
		Channel string          `json:"channel"`
		Data    json.RawMessage `json:"data"`
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for i := 0; i < b.N; i++ {
		if err := json.Unmarshal(msg, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkSubscribeAt subscribes and unsubscribes one channel on a
// session that holds held subscriptions already: the cost must not grow
// with held (a session finds its subscriptions by name in O(1)).
func benchmarkSubscribeAt(b *testing.B, held int) {
	s, _ := newServer(b, 1, func(a *AppConfig) { a.MaxSubscriptions = 0; a.MaxMessageRate = 0 })
	sess := steady(b, s, 1, 1, "warmup")[0]
	for i := 1; i < held; i++ {
		s.Handle(sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"held-`+strconv.Itoa(i)+`"}}`))
	}
	sub := []byte(`{"event":"pusher:subscribe","data":{"channel":"room"}}`)
	unsub := []byte(`{"event":"pusher:unsubscribe","data":{"channel":"room"}}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.Handle(sess, sub)
		s.Handle(sess, unsub)
	}
	if len(sess.subs) != held {
		b.Fatalf("%d subscriptions, want %d", len(sess.subs), held)
	}
}

func BenchmarkSubscribeAt_1Sub(b *testing.B)    { benchmarkSubscribeAt(b, 1) }
func BenchmarkSubscribeAt_100Subs(b *testing.B) { benchmarkSubscribeAt(b, 100) }
func BenchmarkSubscribeAt_10kSubs(b *testing.B) { benchmarkSubscribeAt(b, 10_000) }
