package api

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/pusher"
)

// benchFixture is a handler in front of a pusher server with subs
// subscribers on channel "bench", and a signed POST events request.
func benchFixture(b *testing.B, subs int) (fasthttp.RequestHandler, *fasthttp.Request) {
	b.Helper()
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	p, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Attach(&syncLoops{}); err != nil {
		b.Fatal(err)
	}
	for range subs {
		s := &session{}
		p.Open(&s.sess, discard{}, 0, testKey, "7", "")
		p.Handle(&s.sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"bench"}}`))
	}
	body := []byte(`{"name":"App\\Events\\OrderShipped","channels":["bench"],"data":"{\"order\":{\"id\":12345,\"status\":\"shipped\"}}"}`)
	q, _ := signQuery("POST", eventsPath, nil, body, signing{}, time.Now())
	req := new(fasthttp.Request)
	req.Header.SetMethod("POST")
	req.SetRequestURI(eventsPath + "?" + q)
	req.Header.SetContentType("application/json")
	req.SetBody(body)
	return New(p, Config{}).Handler(), req
}

// discard is a pusher.Conn that drops what it is given.
type discard struct{}

func (discard) Write([]byte)      {}
func (discard) Close(int, string) {}

func benchmarkEvents(b *testing.B, subs int) {
	h, req := benchFixture(b, subs)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	for b.Loop() {
		ctx.Init(req, nil, nil)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}

// BenchmarkEvents_0Subs is a signed POST events, authenticated, decoded,
// validated and published to an empty channel.
func BenchmarkEvents_0Subs(b *testing.B) { benchmarkEvents(b, 0) }

// BenchmarkEvents_1Sub adds the fan-out task to one subscriber.
func BenchmarkEvents_1Sub(b *testing.B) { benchmarkEvents(b, 1) }

// BenchmarkEvents_1kSubs fans out to a thousand subscribers on one loop.
func BenchmarkEvents_1kSubs(b *testing.B) { benchmarkEvents(b, 1000) }

// BenchmarkAuthenticate is the signature check alone.
func BenchmarkAuthenticate(b *testing.B) {
	_, req := benchFixture(b, 0)
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	args := req.URI().QueryArgs()
	body := req.Body()
	now := time.Now()
	method := []byte("POST")
	b.ReportAllocs()
	for b.Loop() {
		if msg := authenticate(&app, method, eventsPath, args, body, now); msg != "" {
			b.Fatal(msg)
		}
	}
}
