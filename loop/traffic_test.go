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

// testConn returns a connection on loop 0 of e over gc, as OnOpen makes
// one, without a socket.
func testConn(e *Engine, gc gnet.Conn) *conn {
	l := e.loops[0]
	c := &conn{gc: gc, l: l, slot: int32(len(l.conns))}
	l.conns = append(l.conns, c)
	return c
}

// newEngine makes a server for app and an engine of one loop that does
// not listen: the tests drive its connections by hand.
func newEngine(t testing.TB, app pusher.AppConfig) (*pusher.Server, *Engine) {
	t.Helper()
	srv, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(srv, Config{Addr: "127.0.0.1:0", Loops: 1})
	if err != nil {
		t.Fatal(err)
	}
	return srv, e
}

// feed runs one turn of traffic on c, as OnTraffic does: traffic, then the
// loop's staged writes leave.
func feed(c *conn, buf []byte) int {
	n := c.traffic(buf)
	c.l.st.flush()
	return n
}

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
	srv, e := newEngine(f, app)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		c := testConn(e, &fuzzConn{})
		hs := []byte("GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		if n := feed(c, hs); n != len(hs) || c.state != stateOpen {
			t.Fatalf("handshake: consumed %d, state %v", n, c.state)
		}
		auth := "app-key:" + pusher.Sign("app-secret", c.sess.ID().String()+":private-chat")
		sub := codec.AppendMaskedFrame(nil, ws.OpText, true, mask, []byte(`{"event":"pusher:subscribe","data":{"channel":"private-chat","auth":"`+auth+`"}}`))
		feed(c, sub)
		if split < 0 || split > len(in) {
			split = len(in) / 2
		}
		buf := append([]byte(nil), in[:split]...)
		n := feed(c, buf)
		if n < 0 || n > len(buf) {
			t.Fatalf("consumed %d of %d", n, len(buf))
		}
		buf = append(buf[n:], in[split:]...)
		if n := feed(c, buf); n < 0 || n > len(buf) {
			t.Fatalf("consumed %d of %d", n, len(buf))
		}
		srv.Close(&c.sess)
		if srv.Channel(srv.AppByID(app.ID), "private-chat").Occupied {
			t.Fatal("a closed session still occupies its channel")
		}
	})
}
