package loop

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// dyingGnetConn fails its writes once armed, and then, as gnet does,
// closes the connection at once from inside the write: OnClose runs
// synchronously. With backlog it also reports an unsent backlog past any
// bound, so that the server closes it as a slow consumer during a
// fan-out, in the middle of the walk over its channel's subscribers.
type dyingGnetConn struct {
	recordConn
	e      *Engine
	ctx    any
	armed  bool
	closed bool
}

func (d *dyingGnetConn) Write(b []byte) (int, error) {
	if d.armed {
		d.armed, d.closed = false, true
		d.e.OnClose(d, nil)
		return 0, errors.New("write: broken pipe")
	}
	return d.recordConn.Write(b)
}

func (d *dyingGnetConn) Context() any       { return d.ctx }
func (d *dyingGnetConn) SetContext(ctx any) { d.ctx = ctx }

// TestCloseInsideTurn: a fan-out reaches three presence members on one
// loop; the first is a slow consumer whose close frame's write fails, so
// gnet closes it inside the fan-out's walk. The loop closes its session
// only when the turn ends: the others get the event once, then its
// member_removed, and the channel counts two.
func TestCloseInsideTurn(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	srv, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(srv, Config{Addr: "127.0.0.1:0", Loops: 1, MaxOutbound: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	l := e.loops[0]
	var conns []*dyingGnetConn
	for _, user := range []string{"a", "b", "c"} {
		gc := &dyingGnetConn{e: e}
		c := &conn{gc: gc, l: l, slot: int32(len(l.conns)), state: stateOpen}
		gc.ctx = c
		l.conns = append(l.conns, c)
		l.begin()
		if !srv.Open(&c.sess, c, 0, "app-key", "7", "") {
			t.Fatal("open refused")
		}
		cd := `{"user_id":"` + user + `"}`
		auth := "app-key:" + pusher.Sign("app-secret", c.sess.ID().String()+":presence-room:"+cd)
		srv.Handle(&c.sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"presence-room","auth":"`+auth+`","channel_data":`+string(codec.AppendJSONString(nil, cd))+`}}`))
		l.end()
		conns = append(conns, gc)
	}
	if err := l.q.Run(context.Background()); err != nil { // the member_added queued meanwhile
		t.Fatal(err)
	}
	for _, gc := range conns {
		gc.buf.Reset()
	}
	conns[0].armed, conns[0].backlog = true, 2<<20
	if err := srv.Publish(context.Background(), srv.Apps()[0], []pusher.Event{{Channels: []string{"presence-room"}, Name: "news", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the fan-out, then the member_removed the close queued
		if err := l.q.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if !conns[0].closed {
		t.Fatal("the slow consumer was not closed")
	}
	for i, gc := range conns[1:] {
		got := payloads(gc.buf.Bytes())
		want := []string{
			`{"event":"news","channel":"presence-room","data":"x"}`,
			`{"event":"pusher_internal:member_removed","channel":"presence-room","data":"{\"user_id\":\"a\"}"}`,
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("subscriber %d got %q, want %q", i+1, got, want)
		}
	}
	if info := srv.Channel(srv.Apps()[0], "presence-room"); info.SubscriptionCount != 2 || info.UserCount != 2 {
		t.Fatalf("after the close: %+v, want 2 subscriptions of 2 users", info)
	}
	if l.depth != 0 || len(l.closing) != 0 {
		t.Fatalf("turn left open: depth %d, %d closes waiting", l.depth, len(l.closing))
	}
}

// payloads splits unmasked server frames into their payloads.
func payloads(b []byte) []string {
	var out []string
	for len(b) > 0 {
		n := int(b[1] & 0x7f)
		h := 2
		switch n {
		case 126:
			n, h = int(b[2])<<8|int(b[3]), 4
		case 127:
			panic("frame too large for the test")
		}
		out = append(out, string(b[h:h+n]))
		b = b[h+n:]
	}
	return out
}

var _ gnet.Conn = (*dyingGnetConn)(nil)
