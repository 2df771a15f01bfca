//go:build !race

package loop

import (
	"context"
	"crypto/tls"
	"runtime"
	"testing"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// sinkConn is the part of gnet.Conn that the hot path uses, writing to
// nowhere. Calling any other method panics (the embedded interface is nil).
type sinkConn struct {
	gnet.Conn
	written int
}

func (s *sinkConn) Write(b []byte) (int, error) { s.written += len(b); return len(b), nil }

func (s *sinkConn) OutboundBuffered() int { return 0 }

// TestTrafficAllocs feeds masked client-event frames through a connection's
// traffic path — frame decode, Pusher parse, dispatch, relay to the
// subscribers on the same loop — and requires that it allocates nothing.
func TestTrafficAllocs(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	app.ClientEventRate = 0
	app.MaxMessageRate = 0
	srv, e := newEngine(t, app)
	conns := make([]*conn, 8)
	for i := range conns {
		c := testConn(e, &sinkConn{})
		c.state = stateOpen
		if !srv.Open(&c.sess, c, 0, "app-key", "7", "") {
			t.Fatal("open refused")
		}
		c.dec.MaxMessage = app.MaxMessageSize
		auth := "app-key:" + pusher.Sign("app-secret", c.sess.ID().String()+":private-chat")
		sub := codec.AppendMaskedFrame(nil, ws.OpText, true, [4]byte{9, 8, 7, 6},
			[]byte(`{"event":"pusher:subscribe","data":{"channel":"private-chat","auth":"`+auth+`"}}`))
		if n := feed(c, sub); n != len(sub) {
			t.Fatalf("subscribe consumed %d of %d", n, len(sub))
		}
		conns[i] = c
	}
	msg := codec.AppendMaskedFrame(nil, ws.OpText, true, [4]byte{1, 2, 3, 4},
		[]byte(`{"event":"client-typing","channel":"private-chat","data":{"who":"a"}}`))
	buf := make([]byte, len(msg))
	sender, receiver := conns[0], conns[1].gc.(*sinkConn)
	before := receiver.written
	allocs := testing.AllocsPerRun(1000, func() {
		copy(buf, msg) // Decode unmasks in place, as in gnet's buffer
		if n := feed(sender, buf); n != len(buf) {
			t.Fatalf("consumed %d of %d", n, len(buf))
		}
	})
	if allocs != 0 {
		t.Fatalf("one relayed client event allocates %.1f times, want 0", allocs)
	}
	if receiver.written == before {
		t.Fatal("nothing was relayed")
	}
}

// wakeLoop is a gnet.EventLoop whose Execute does nothing: the test runs
// the loop's task queue itself.
type wakeLoop struct{ gnet.EventLoop }

func (wakeLoop) Execute(context.Context, gnet.Runnable) error { return nil }

// TestFanoutAllocs publishes events to subscribers on a loop and runs the
// loop's task queue — Publish, the ordered queue, the fan-out task, the
// staged writes and their flush — and requires that it allocates nothing.
func TestFanoutAllocs(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	app.MaxMessageRate = 0
	srv, e := newEngine(t, app)
	e.gnets = []gnet.EventLoop{wakeLoop{}}
	sinks := make([]*sinkConn, 8)
	for i := range sinks {
		sinks[i] = &sinkConn{}
		c := testConn(e, sinks[i])
		c.state = stateOpen
		if !srv.Open(&c.sess, c, 0, "app-key", "7", "") {
			t.Fatal("open refused")
		}
		c.dec.MaxMessage = app.MaxMessageSize
		sub := codec.AppendMaskedFrame(nil, ws.OpText, true, [4]byte{9, 8, 7, 6},
			[]byte(`{"event":"pusher:subscribe","data":{"channel":"news"}}`))
		if n := feed(c, sub); n != len(sub) {
			t.Fatalf("subscribe consumed %d of %d", n, len(sub))
		}
	}
	events := []pusher.Event{{Channels: []string{"news"}, Name: "update", Data: []byte(`{"n":1}`)}}
	a, ctx := srv.AppByID("app-id"), context.Background()
	before := sinks[7].written
	allocs := testing.AllocsPerRun(1000, func() {
		if err := srv.Publish(ctx, a, events); err != nil {
			t.Fatal(err)
		}
		_ = e.loops[0].q.Run(ctx)
	})
	if allocs != 0 {
		t.Fatalf("one event fanned out through the task queue allocates %.1f times, want 0", allocs)
	}
	if sinks[7].written == before {
		t.Fatal("nothing was written")
	}
}

// TestTLSTrafficAllocs is TestTrafficAllocs over TLS: the client event
// arrives in a record the loop opens, and is relayed in records sealed for
// each subscriber; none of it allocates.
func TestTLSTrafficAllocs(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	app.ClientEventRate = 0
	app.MaxMessageRate = 0
	srv, e := newEngine(t, app)
	k := testKeys(t, tls.TLS_AES_128_GCM_SHA256)
	l := e.loops[0]
	var sender *conn
	var senderIn *peekConn
	var receiver *sinkConn
	for i := range 8 {
		rec, err := newRecords(k)
		if err != nil {
			t.Fatal(err)
		}
		var gc gnet.Conn
		sink := &sinkConn{}
		in := &peekConn{}
		if i == 0 {
			gc = in
		} else {
			gc = sink
		}
		c := testConn(e, gc)
		c.state, c.tls = stateOpen, &tlsConn{rec: rec}
		in.ctx = c
		if !srv.Open(&c.sess, c, 0, "app-key", "7", "") {
			t.Fatal("open refused")
		}
		c.dec.MaxMessage = app.MaxMessageSize
		auth := "app-key:" + pusher.Sign("app-secret", c.sess.ID().String()+":private-chat")
		l.begin()
		srv.Handle(&c.sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"private-chat","auth":"`+auth+`"}}`))
		l.end()
		switch i {
		case 0:
			sender, senderIn = c, in
		case 1:
			receiver = sink
		}
	}
	cli := peerRecords(t, k)
	frame := codec.AppendMaskedFrame(nil, ws.OpText, true, [4]byte{1, 2, 3, 4},
		[]byte(`{"event":"client-typing","channel":"private-chat","data":{"who":"a"}}`))
	// One record per run, sealed beforehand with the sequence numbers the
	// runs will use.
	const runs = 1001
	wires := make([][]byte, runs+1)
	for i := range wires {
		wires[i] = cli.sealOne(nil, frame, recordApplicationData)
	}
	next := 0
	buf := make([]byte, 0, 256)
	before := receiver.written
	allocs := testing.AllocsPerRun(runs-1, func() {
		senderIn.in = append(buf[:0], wires[next]...)
		next++
		l.begin()
		sender.serve()
		l.end()
	})
	if allocs != 0 {
		t.Fatalf("one client event relayed over TLS allocates %.1f times, want 0", allocs)
	}
	if receiver.written == before {
		t.Fatal("nothing was relayed")
	}
}

// TestRecordsLiveBytes measures what an established TLS connection keeps
// of its handshake — its record layer: the two AEADs, the struct and the
// TLS 1.3 secrets — as the live heap that 2,000 of them add after a GC,
// and holds it at 2 KiB a connection (DESIGN: TLS in the loops; with
// TLS_AES_128_GCM_SHA256 it was 1,674 B, most of it two AES-GCM states).
func TestRecordsLiveBytes(t *testing.T) {
	const n, most = 2000, 2048
	for _, suite := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384,
		tls.TLS_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256} {
		t.Run(tls.CipherSuiteName(suite), func(t *testing.T) {
			keys := make([]*tlsKeys, n)
			for i := range keys {
				keys[i] = testKeys(t, suite)
			}
			kept := make([]*records, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range kept {
				r, err := newRecords(keys[i])
				if err != nil {
					t.Fatal(err)
				}
				kept[i] = r
			}
			keys = nil // the handshake's keys go; what records kept of them stays
			runtime.GC()
			runtime.ReadMemStats(&after)
			per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
			t.Logf("%d B live per connection", per)
			if per > most {
				t.Errorf("%d B live per connection's record layer, want at most %d", per, most)
			}
			// An idle connection's opening cipher is parked by the sweep:
			// what stays is the sealing one and the keys.
			for _, r := range kept {
				r.parkIn()
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			idle := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
			t.Logf("%d B live per idle connection", idle)
			if idle > most/2+64 {
				t.Errorf("%d B live per idle connection's record layer, want at most %d", idle, most/2+64)
			}
			runtime.KeepAlive(kept)
		})
	}
}
