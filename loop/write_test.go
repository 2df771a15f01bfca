package loop

import (
	"bytes"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/pusher"
)

// recordConn is the part of gnet.Conn that the write path uses: it keeps
// every byte written and counts the writes, as one write system call each.
type recordConn struct {
	gnet.Conn
	buf     bytes.Buffer
	writes  int
	backlog int
}

func (r *recordConn) Write(b []byte) (int, error) {
	r.writes++
	return r.buf.Write(b)
}

func (r *recordConn) OutboundBuffered() int { return r.backlog }

// TestStagerKeepsOrder stages frames for many connections in one turn —
// interleaved, of every size, some of them the same bytes for several
// connections in a row (a fan-out), some in a buffer reused for other bytes
// of the same length — past the arena's and the segments' bounds, and
// requires that each connection receives exactly its frames, in order, in
// one write per flush.
func TestStagerKeepsOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	st := newStager()
	l := &loopState{st: st}
	conns := make([]*conn, 50)
	want := make([]bytes.Buffer, len(conns))
	for i := range conns {
		conns[i] = &conn{gc: &recordConn{}, l: l, state: stateOpen}
	}
	reused := make([]byte, 64)
	for turn := 0; turn < 10; turn++ {
		for op := 0; op < 1000; op++ {
			switch rng.IntN(200) {
			case 0: // a fan-out: the same frame to a run of connections
				frame := bytes.Repeat([]byte{byte(op)}, 1+rng.IntN(3000))
				for i := rng.IntN(len(conns)); i < len(conns); i += 1 + rng.IntN(3) {
					st.stage(conns[i], frame)
					want[i].Write(frame)
				}
			case 1, 2, 3, 4, 5, 6, 7, 8, 9, 10: // one buffer, refilled with other bytes of the same length
				for j := range reused {
					reused[j] = byte(rng.Uint32())
				}
				i := rng.IntN(len(conns))
				st.stage(conns[i], reused)
				want[i].Write(reused)
			case 11: // a big frame, past the arena's bound now and then
				frame := bytes.Repeat([]byte{'x', byte(op)}, rng.IntN(1_000_000))
				i := rng.IntN(len(conns))
				st.stage(conns[i], frame)
				want[i].Write(frame)
			default: // a small frame to one connection
				frame := []byte(strconv.Itoa(op))
				i := rng.IntN(len(conns))
				st.stage(conns[i], frame)
				want[i].Write(frame)
			}
		}
		st.flush()
	}
	for i, c := range conns {
		rc := c.gc.(*recordConn)
		if !bytes.Equal(rc.buf.Bytes(), want[i].Bytes()) {
			t.Fatalf("conn %d: got %d bytes, want %d, or in another order", i, rc.buf.Len(), want[i].Len())
		}
		if c.head != 0 || c.tail != 0 || c.staged != 0 {
			t.Fatalf("conn %d: staging left behind", i)
		}
	}
	if len(st.dirty) != 0 || len(st.segs) != 1 {
		t.Fatal("flush left staged work")
	}
}

// TestStagerOneWritePerTurn: however many frames one connection gets in a
// turn, they leave in one write.
func TestStagerOneWritePerTurn(t *testing.T) {
	st := newStager()
	l := &loopState{st: st}
	c := &conn{gc: &recordConn{}, l: l, state: stateOpen}
	for i := 0; i < 16; i++ {
		st.stage(c, []byte(`{"event":"e","data":"`+strconv.Itoa(i)+`"}`))
	}
	st.flush()
	if w := c.gc.(*recordConn).writes; w != 1 {
		t.Fatalf("16 frames left in %d writes, want 1", w)
	}
}

// TestSlowConsumerCountsStaged: frames staged in this turn count toward
// max_outbound with what gnet holds, so that a consumer over it is cut
// with 4100 before the flush, and the close frame still leaves after every
// frame staged before it.
func TestSlowConsumerCountsStaged(t *testing.T) {
	e := &Engine{cfg: Config{MaxOutbound: 1000}}
	st := newStager()
	l := &loopState{e: e, st: st}
	rc := &closingConn{}
	c := &conn{gc: rc, l: l, state: stateOpen}
	frame := bytes.Repeat([]byte{'a'}, 400)
	for i := 0; i < 4; i++ {
		c.Write(frame)
	}
	if c.state != stateClosing {
		t.Fatalf("state %v after 1,600 bytes over a limit of 1,000", c.state)
	}
	got := rc.buf.Bytes()
	// Three frames fit (1,200 > 1,000 is seen before the fourth), then the
	// close frame.
	if !bytes.Equal(got[:1200], bytes.Repeat([]byte{'a'}, 1200)) || len(got) <= 1200 {
		t.Fatalf("wrote %d bytes", len(got))
	}
	if op := ws.OpCode(got[1200] & 0x0f); op != ws.OpClose {
		t.Fatalf("after the frames: opcode %v, want close", op)
	}
	if code := int(got[1202])<<8 | int(got[1203]); code != pusher.CodeOverCapacity {
		t.Fatalf("close code %d, want 4100", code)
	}
	if e.slowConsumers.Load() != 1 {
		t.Fatal("slow consumer not counted")
	}
}

type closingConn struct {
	recordConn
	closed bool
}

func (c *closingConn) Close() error { c.closed = true; return nil }

// TestBroadcastsCoalesce holds the only event loop while 50 broadcasts are
// queued for its one subscriber, then lets it go: the subscriber receives
// all 50, in order, and the process made a handful of write system calls
// for them (its syscw in /proc/self/io), not 50.
func TestBroadcastsCoalesce(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	srv, e := startEngine(t, app, Config{Loops: 1})
	c := dialWS(t, e.cfg.Addr)
	c.event("pusher:connection_established", 5*time.Second)
	c.send(`{"event":"pusher:subscribe","data":{"channel":"news"}}`)
	c.event("pusher_internal:subscription_succeeded", 5*time.Second)

	release, started := make(chan struct{}), make(chan struct{})
	if err := e.Execute(0, gnetBlock{started, release}); err != nil {
		t.Fatal(err)
	}
	<-started
	for i := 0; i < 50; i++ {
		publish(t, srv, "news", "e", []byte(strconv.Itoa(i)))
	}
	before := writeSyscalls(t)
	close(release)
	for i := 0; i < 50; i++ {
		m := c.event("e", 5*time.Second)
		if m["data"] != strconv.Itoa(i) {
			t.Fatalf("event %d carries %v", i, m["data"])
		}
	}
	if n := writeSyscalls(t) - before; n > 10 {
		t.Fatalf("50 queued broadcasts to one connection took %d write system calls", n)
	}
}

// writeSyscalls is the number of write system calls the process has made.
func writeSyscalls(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no syscw in /proc/self/io")
	return 0
}
