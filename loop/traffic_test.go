package loop

import (
	"testing"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// fuzzConn is the part of gnet.Conn that traffic uses, recording closes.
type fuzzConn struct {
	gnet.Conn
	closed bool
}

func (f *fuzzConn) Write(b []byte) (int, error) { return len(b), nil }

func (f *fuzzConn) OutboundBuffered() int { return 0 }

func (f *fuzzConn) Close() error { f.closed = true; return nil }

// FuzzTraffic feeds arbitrary bytes, in two reads, to a connection that has
// already upgraded and subscribed: whatever arrives, traffic never panics
// and never claims more bytes than it was given.
func FuzzTraffic(f *testing.F) {
	mask := [4]byte{1, 2, 3, 4}
	f.Add(codec.AppendMaskedFrame(nil, ws.OpText, true, mask, []byte(`{"event":"client-x","channel":"private-chat","data":{}}`)), 3)
	f.Add(codec.AppendMaskedFrame(nil, ws.OpText, false, mask, []byte(`{"event":`)), 1)
	f.Add(codec.AppendMaskedFrame(nil, ws.OpPing, true, mask, []byte(`hi`)), 0)
	f.Add(codec.AppendMaskedFrame(nil, ws.OpClose, true, mask, []byte{3, 232}), 2)
	f.Add([]byte("GET /app/app-key HTTP/1.1\r\n\r\n"), 5)
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	srv, err := pusher.NewServer([]*pusher.App{app}, pusher.Options{})
	if err != nil {
		f.Fatal(err)
	}
	e, err := New(srv, Config{Addr: "127.0.0.1:0", Loops: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		c := &conn{gc: &fuzzConn{}, e: e}
		hs := []byte("GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		if n := c.traffic(hs); n != len(hs) || c.state != stateOpen {
			t.Fatalf("handshake: consumed %d, state %v", n, c.state)
		}
		auth := "app-key:" + pusher.Sign("app-secret", c.sess.ID()+":private-chat")
		sub := codec.AppendMaskedFrame(nil, ws.OpText, true, mask, []byte(`{"event":"pusher:subscribe","data":{"channel":"private-chat","auth":"`+auth+`"}}`))
		c.traffic(sub)
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		buf := append([]byte(nil), in[:split]...)
		n := c.traffic(buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("consumed %d of %d", n, len(buf))
		}
		buf = append(buf[n:], in[split:]...)
		if n := c.traffic(buf); n < 0 || n > len(buf) {
			t.Fatalf("consumed %d of %d", n, len(buf))
		}
		srv.Close(&c.sess)
		if srv.Channel(app, "private-chat").Occupied {
			t.Fatal("a closed session still occupies its channel")
		}
	})
}
