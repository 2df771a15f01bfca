package loop

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// peekConn is a gnet.Conn holding the bytes a read brought in, recording
// what is written.
type peekConn struct {
	recordConn
	in  []byte
	ctx any
}

func (p *peekConn) Peek(int) ([]byte, error)    { return p.in, nil }
func (p *peekConn) Discard(n int) (int, error)  { p.in = p.in[n:]; return n, nil }
func (p *peekConn) Context() any                { return p.ctx }
func (p *peekConn) SetContext(ctx any)          { p.ctx = ctx }
func (p *peekConn) RemoteAddr() net.Addr        { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (p *peekConn) Close() error                { return nil }
func (p *peekConn) EventLoop() gnet.EventLoop   { return nil }
func (p *peekConn) OutboundBuffered() int       { return 0 }
func (p *peekConn) InboundBuffered() int        { return len(p.in) }
func (p *peekConn) Write(b []byte) (int, error) { return p.recordConn.Write(b) }

// syncLog is a log destination safe to read while loops write to it.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncLog) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestPanicClosesOneConnection: a bug reached while serving one
// connection's traffic (here a protocol core that is not there) is logged
// once with its stack; that connection is told 1011 and dropped; the
// frames the loop's turn had staged for another connection still leave.
func TestPanicClosesOneConnection(t *testing.T) {
	logs := &syncLog{}
	e := &Engine{cfg: Config{MaxOutbound: 1 << 20, Log: slog.New(slog.NewTextHandler(logs, nil))}}
	l := &loopState{e: e, st: newStager()}
	other := &conn{gc: &recordConn{}, l: l, state: stateOpen}
	other.Write([]byte("staged for another"))
	bad := &peekConn{in: codec.AppendMaskedFrame(nil, ws.OpBinary, true, [4]byte{1, 2, 3, 4}, []byte("x"))}
	c := &conn{gc: bad, l: l, state: stateOpen}
	bad.ctx = c
	if action := e.OnTraffic(bad); action != gnet.Close {
		t.Fatalf("action %v after a panic, want Close", action)
	}
	out := bad.buf.Bytes()
	if len(out) < 4 || ws.OpCode(out[0]&0x0f) != ws.OpClose || int(out[2])<<8|int(out[3]) != int(ws.StatusInternalServerError) {
		t.Fatalf("wrote %q, want a close frame with 1011", out)
	}
	if got := other.gc.(*recordConn).buf.String(); got != "staged for another" {
		t.Fatalf("the other connection got %q", got)
	}
	if n := strings.Count(logs.String(), "loop: panic"); n != 1 || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("log %q: want the panic once, with its stack", logs.String())
	}
}

// panicConn panics when written to, as a bug reached inside gnet's
// close of a failed write would.
type panicConn struct{ recordConn }

func (*panicConn) Write([]byte) (int, error) { panic("a bug in a write") }

// TestPanicInFlush: a write that panics while a turn's staged frames
// leave is survived — after a connection's traffic and at the end of a
// task turn — and the frames staged for the other connections still go.
func TestPanicInFlush(t *testing.T) {
	logs := &syncLog{}
	e := &Engine{cfg: Config{MaxOutbound: 1 << 20, Log: slog.New(slog.NewTextHandler(logs, nil))}}
	l := &loopState{e: e, st: newStager()}
	broken := &conn{gc: &panicConn{}, l: l, state: stateOpen}
	other := &conn{gc: &recordConn{}, l: l, state: stateOpen}
	broken.Write([]byte("to the broken one"))
	other.Write([]byte("to another"))
	reader := &peekConn{in: codec.AppendMaskedFrame(nil, ws.OpBinary, true, [4]byte{1, 2, 3, 4}, []byte("x"))}
	reader.ctx = &conn{gc: reader, l: l, state: stateOpen}
	e.OnTraffic(reader) // its own panic (no protocol core), then the flush's
	if got := other.gc.(*recordConn).buf.String(); got != "to another" {
		t.Fatalf("the other connection got %q after a traffic turn", got)
	}

	broken.Write([]byte("again"))
	other.Write([]byte(", and more"))
	q := &taskQueue{l: l}
	if err := q.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := other.gc.(*recordConn).buf.String(); got != "to another, and more" {
		t.Fatalf("the other connection got %q after a task turn", got)
	}
	if !strings.Contains(logs.String(), "panic flushing") {
		t.Fatalf("log %q: want the flush's panic", logs.String())
	}
}

// panicTask is a task with a bug.
type panicTask struct{}

func (panicTask) Run(context.Context) error { panic("a bug in a task") }

// TestPanicInTask: a task that panics is logged and the loop goes on with
// the next one; its connections stay up.
func TestPanicInTask(t *testing.T) {
	logs := &syncLog{}
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	_, e := startEngine(t, app, Config{Loops: 1, Log: slog.New(slog.NewTextHandler(logs, nil))})
	c := dialWS(t, e.cfg.Addr)
	c.event("pusher:connection_established", 5*time.Second)
	if err := e.Execute(0, panicTask{}); err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{})
	if err := e.Execute(0, gnetBlock{started: ran}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not run the task after the one that panicked")
	}
	c.send(`{"event":"pusher:ping","data":{}}`)
	c.event("pusher:pong", 5*time.Second)
	if !strings.Contains(logs.String(), "panic in a task") {
		t.Fatalf("log %q", logs.String())
	}
}
