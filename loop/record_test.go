package loop

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/gobwas/ws"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// testKeys makes random keys for suite.
func testKeys(t testing.TB, suite uint16) *tlsKeys {
	t.Helper()
	rnd := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256:
		return &tlsKeys{version: tls.VersionTLS13, suite: suite, clientSecret: rnd(32), serverSecret: rnd(32)}
	case tls.TLS_AES_256_GCM_SHA384:
		return &tlsKeys{version: tls.VersionTLS13, suite: suite, clientSecret: rnd(48), serverSecret: rnd(48)}
	}
	return &tlsKeys{version: tls.VersionTLS12, suite: suite, master: rnd(48), clientRandom: rnd(32), serverRandom: rnd(32)}
}

// peerRecords is the client's side of the record layer that k builds for
// the server: what one seals the other opens.
func peerRecords(t testing.TB, k *tlsKeys) *records {
	t.Helper()
	r, err := newRecords(k)
	if err != nil {
		t.Fatal(err)
	}
	r.in, r.out = r.out, r.in
	r.inIV, r.outIV = r.outIV, r.inIV
	r.inSecret, r.outSecret = r.outSecret, r.inSecret
	return r
}

var allSuites = []uint16{
	tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TestRecordsRoundTrip: what one side seals the other opens, in order,
// records of every size; a record altered or replayed is refused; and a
// TLS 1.3 KeyUpdate, asked for by the client, moves both directions on.
func TestRecordsRoundTrip(t *testing.T) {
	for _, suite := range allSuites {
		t.Run(fmt.Sprintf("%#x", suite), func(t *testing.T) {
			k := testKeys(t, suite)
			srv, err := newRecords(k)
			if err != nil {
				t.Fatal(err)
			}
			cli := peerRecords(t, k)
			for _, n := range []int{0, 1, 100, maxPlaintext - 1, maxPlaintext, maxPlaintext + 1, 3*maxPlaintext + 7} {
				msg := bytes.Repeat([]byte{byte(n)}, n)
				wire := srv.seal(nil, msg, recordApplicationData)
				var got []byte
				for len(wire) > 0 {
					l, err := recordLen(wire)
					if err != nil || l == 0 || l > len(wire) {
						t.Fatalf("record length %d %v of %d", l, err, len(wire))
					}
					typ, p, err := cli.open(wire[:l])
					if err != nil || typ != recordApplicationData {
						t.Fatalf("open: type %d, %v", typ, err)
					}
					got = append(got, p...)
					wire = wire[l:]
				}
				if !bytes.Equal(got, msg) {
					t.Fatalf("%d bytes: round trip differs", n)
				}
			}
			rec := cli.seal(nil, []byte("hello"), recordApplicationData)
			bad := bytes.Clone(rec)
			bad[len(bad)-1] ^= 1
			if _, _, err := srv.open(bad); err == nil {
				t.Fatal("an altered record was opened")
			}
			srv.inSeq-- // the failed open counted it
			if _, _, err := srv.open(bytes.Clone(rec)); err != nil {
				t.Fatalf("the record itself: %v", err)
			}
			if _, _, err := srv.open(bytes.Clone(rec)); err == nil {
				t.Fatal("a replayed record was opened")
			}
			srv.inSeq-- // back in step after the replay
			// Two sweeps without a record from the client and the opening
			// cipher goes; the next record builds it again from its key.
			parkAndOpen(t, srv, cli, "again")
			if k.version != tls.VersionTLS13 {
				return
			}
			// The client updates its keys and asks the server to.
			upd := cli.sealOne(nil, []byte{24, 0, 0, 1, 1}, recordHandshake)
			if _, err := cli.updateOut(nil); err != nil { // its keys move on; what it would send is the test's upd
				t.Fatal(err)
			}
			typ, p, err := srv.open(upd)
			if err != nil || typ != recordHandshake {
				t.Fatalf("KeyUpdate: type %d, %v", typ, err)
			}
			requested, err := srv.keyUpdate(p)
			if err != nil || !requested {
				t.Fatalf("KeyUpdate: requested %v, %v", requested, err)
			}
			parkAndOpen(t, srv, cli, "after") // the key it builds again is the new one
			wire, err := srv.updateOut(nil)
			if err != nil {
				t.Fatal(err)
			}
			wire = srv.seal(wire, []byte("server after"), recordApplicationData)
			l, _ := recordLen(wire)
			typ, p, err = cli.open(wire[:l])
			if err != nil || typ != recordHandshake {
				t.Fatalf("server's KeyUpdate: %d %v", typ, err)
			}
			if _, err := cli.keyUpdate(p); err != nil {
				t.Fatal(err)
			}
			if _, p, err := cli.open(wire[l:]); err != nil || string(p) != "server after" {
				t.Fatalf("after the server's update: %q %v", p, err)
			}
		})
	}
}

// parkAndOpen parks srv's opening cipher as two idle sweeps do, then has
// it open a record of cli's carrying msg.
func parkAndOpen(t *testing.T, srv, cli *records, msg string) {
	t.Helper()
	srv.parkIn()
	if srv.in == nil {
		t.Fatal("a cipher just used was parked")
	}
	srv.parkIn()
	if srv.in != nil {
		t.Fatal("the opening cipher outlived two idle sweeps")
	}
	if _, p, err := srv.open(cli.seal(nil, []byte(msg), recordApplicationData)); err != nil || string(p) != msg {
		t.Fatalf("after parking: %q %v", p, err)
	}
}

// TestTLSSplitRecords feeds a connection whose handshake is done the
// records of a subscribe and 50 pings, split at every byte offset into two
// reads: every reply comes, in order, whatever the split.
func TestTLSSplitRecords(t *testing.T) {
	k := testKeys(t, tls.TLS_AES_128_GCM_SHA256)
	cli := peerRecords(t, k)
	var plain []byte
	plain = codec.AppendMaskedFrame(plain, ws.OpText, true, [4]byte{1, 2, 3, 4}, []byte(`{"event":"pusher:subscribe","data":{"channel":"a"}}`))
	for range 50 {
		plain = codec.AppendMaskedFrame(plain, ws.OpText, true, [4]byte{5, 6, 7, 8}, []byte(`{"event":"pusher:ping","data":{}}`))
	}
	// Records of 100 bytes of plaintext each, so frames straddle them.
	var wire []byte
	for p := plain; len(p) > 0; {
		n := min(100, len(p))
		wire = cli.sealOne(wire, p[:n], recordApplicationData)
		p = p[n:]
	}
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	srv, e := newEngine(t, app)
	for split := 0; split <= len(wire); split++ {
		rec, err := newRecords(k)
		if err != nil {
			t.Fatal(err)
		}
		out := &peekConn{}
		c := &conn{gc: out, l: e.loops[0], state: stateOpen, tls: &tlsConn{rec: rec}}
		out.ctx = c
		if !srv.Open(&c.sess, c, 0, "app-key", "7", "") {
			t.Fatal("open refused")
		}
		c.dec.MaxMessage = app.MaxMessageSize
		for _, part := range [][]byte{wire[:split], wire[split:]} {
			out.in = append(out.in, part...)
			c.l.begin()
			c.serve()
			c.l.end()
		}
		// What the server sent, through the client's keys.
		srvOut := peerRecords(t, k) // fresh sequence numbers for reading the server's records
		var frames []byte
		for b := out.buf.Bytes(); len(b) > 0; {
			l, err := recordLen(b)
			if err != nil || l == 0 || l > len(b) {
				t.Fatalf("split %d: server record %d %v", split, l, err)
			}
			_, p, err := srvOut.open(bytes.Clone(b[:l]))
			if err != nil {
				t.Fatalf("split %d: %v", split, err)
			}
			frames = append(frames, p...)
			b = b[l:]
		}
		got := payloads(frames)
		if len(got) != 52 {
			t.Fatalf("split %d: %d replies, want 52", split, len(got))
		}
		var m struct{ Event string }
		if json.Unmarshal([]byte(got[1]), &m); m.Event != "pusher_internal:subscription_succeeded" {
			t.Fatalf("split %d: second reply %s", split, got[1])
		}
		for i, f := range got[2:] {
			if json.Unmarshal([]byte(f), &m); m.Event != "pusher:pong" {
				t.Fatalf("split %d: reply %d is %s", split, i+2, f)
			}
		}
		srv.Close(&c.sess)
	}
}

// FuzzTLSRecords feeds an established TLS connection a valid record of a
// ping, then arbitrary bytes where records should be (garbled, truncated,
// of any header), in two reads: whatever arrives, serve never panics, and
// once it refuses what came the connection is on its way out.
func FuzzTLSRecords(f *testing.F) {
	k := testKeys(f, tls.TLS_AES_128_GCM_SHA256)
	cli := peerRecords(f, k)
	ping := codec.AppendMaskedFrame(nil, ws.OpText, true, [4]byte{1, 2, 3, 4}, []byte(`{"event":"pusher:ping","data":{}}`))
	valid := cli.sealOne(nil, ping, recordApplicationData)
	next := cli.sealOne(nil, ping, recordApplicationData) // the record after valid
	f.Add(next, 3)
	f.Add(next[:len(next)-1], 2)
	f.Add(append(bytes.Clone(next[:10]), 0xff), 7)
	f.Add([]byte{recordAlert, 3, 3, 0, 2, 1, 0}, 1)
	f.Add([]byte{recordApplicationData, 3, 3, 0xff, 0xff}, 5)
	f.Add([]byte{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0}, 4)
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	srv, e := newEngine(f, app)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		rec, err := newRecords(k)
		if err != nil {
			t.Fatal(err)
		}
		in := &peekConn{}
		c := &conn{gc: in, l: e.loops[0], state: stateOpen, tls: &tlsConn{rec: rec}}
		in.ctx = c
		if !srv.Open(&c.sess, c, 0, "app-key", "7", "") {
			t.Fatal("open refused")
		}
		c.dec.MaxMessage = app.MaxMessageSize
		cut = max(0, min(cut, len(b)))
		for _, part := range [][]byte{append(bytes.Clone(valid), b[:cut]...), b[cut:]} {
			in.in = append(in.in, part...)
			c.l.begin()
			c.serve()
			c.l.end()
		}
		if c.state == stateOpen && len(c.tls.pending) > len(b) {
			t.Fatalf("%d bytes pending from %d sent", len(c.tls.pending), len(b))
		}
		srv.Close(&c.sess)
	})
}
