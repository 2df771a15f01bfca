package loop

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// start runs an engine for app on a free loopback port.
func start(t *testing.T, app pusher.AppConfig, cfg Config) (*pusher.Server, string) {
	t.Helper()
	srv, e := startEngine(t, app, cfg)
	return srv, e.cfg.Addr
}

// startEngine is start, returning the engine itself.
func startEngine(t testing.TB, app pusher.AppConfig, cfg Config) (*pusher.Server, *Engine) {
	t.Helper()
	srv, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	ln.Close()
	e, err := New(srv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- e.Run() }()
	select {
	case <-e.Ready():
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("engine did not start")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
		<-errc
	})
	return srv, e
}

// publish publishes one event to channel of the server's only app.
func publish(t *testing.T, srv *pusher.Server, channel, name string, data []byte) {
	t.Helper()
	ev := []pusher.Event{{Channels: []string{channel}, Name: name, Data: data}}
	if err := srv.Publish(context.Background(), srv.Apps()[0], ev); err != nil {
		t.Fatal(err)
	}
}

// wsClient is a raw WebSocket client for the tests.
type wsClient struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialWS(t *testing.T, addr string) *wsClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return upgrade(t, c)
}

// upgrade sends the WebSocket upgrade over c and reads the response.
func upgrade(t testing.TB, c net.Conn) *wsClient {
	t.Helper()
	t.Cleanup(func() { c.Close() })
	req := "GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	w := &wsClient{t: t, c: c, br: bufio.NewReader(c)}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		line, err := w.br.ReadString('\n')
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	return w
}

func (w *wsClient) send(msg string) {
	w.t.Helper()
	if _, err := w.c.Write(codec.AppendMaskedFrame(nil, ws.OpText, true, [4]byte{1, 2, 3, 4}, []byte(msg))); err != nil {
		w.t.Fatal(err)
	}
}

// read returns the next frame's opcode and payload.
func (w *wsClient) read(timeout time.Duration) (ws.OpCode, []byte, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	p := make([]byte, n)
	_, err := io.ReadFull(w.br, p)
	return ws.OpCode(h[0] & 0x0f), p, err
}

// event reads the next frame, which must be a text frame with event name.
func (w *wsClient) event(name string, timeout time.Duration) map[string]any {
	w.t.Helper()
	op, p, err := w.read(timeout)
	if err != nil {
		w.t.Fatalf("waiting for %s: %v", name, err)
	}
	var m map[string]any
	if op != ws.OpText || json.Unmarshal(p, &m) != nil || m["event"] != name {
		w.t.Fatalf("got op %v %q, want event %s", op, p, name)
	}
	return m
}

// closeCode reads frames until a close frame and returns its code.
func (w *wsClient) closeCode(timeout time.Duration) int {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		op, p, err := w.read(time.Until(deadline))
		if err != nil {
			w.t.Fatalf("no close frame: %v", err)
		}
		if op == ws.OpClose {
			if len(p) < 2 {
				return 0
			}
			return int(binary.BigEndian.Uint16(p))
		}
	}
	w.t.Fatal("no close frame in time")
	return 0
}

func TestSlowConsumer(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	app.MaxEventDataSize = 64 << 10
	srv, addr := start(t, app, Config{Loops: 2, MaxOutbound: 256 << 10})
	console := srv.AppByID("app-id").Watch(8192)
	defer console.Close()
	slow := dialWS(t, addr)
	slow.event("pusher:connection_established", 5*time.Second)
	slow.send(`{"event":"pusher:subscribe","data":{"channel":"firehose"}}`)
	slow.event("pusher_internal:subscription_succeeded", 5*time.Second)
	fast := dialWS(t, addr)
	fast.event("pusher:connection_established", 5*time.Second)
	fast.send(`{"event":"pusher:subscribe","data":{"channel":"firehose"}}`)
	fast.event("pusher_internal:subscription_succeeded", 5*time.Second)

	// The slow client reads nothing while 64 MiB are published; the fast one
	// keeps up. The slow one must be cut off, the fast one must get it all.
	// Publishing waits for the fast client to stay within a few events, so
	// that only the slow one's backlog passes the limit, however loaded the
	// machine is.
	data := []byte(strings.Repeat("x", 32<<10))
	const events = 2048
	var read atomic.Int64
	done := make(chan int)
	go func() {
		got := 0
		for got < events {
			op, _, err := fast.read(10 * time.Second)
			if err != nil || op != ws.OpText {
				break
			}
			got++
			read.Store(int64(got))
		}
		done <- got
	}()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < events; i++ {
		for int64(i)-read.Load() > 4 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		publish(t, srv, "firehose", "big", data)
	}
	if got := <-done; got != events {
		t.Fatalf("fast client got %d of %d events", got, events)
	}
	if code := slow.closeCode(20 * time.Second); code != pusher.CodeOverCapacity {
		t.Fatalf("slow client closed with %d, want 4100", code)
	}
	// The console hears the code the loop closed it with.
	for {
		select {
		case e := <-console.Events():
			if e.Kind != pusher.TapDisconnected {
				continue
			}
			if e.Code != pusher.CodeOverCapacity {
				t.Fatalf("console: slow client disconnected with %d, want 4100", e.Code)
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatal("console: no disconnection of the slow client")
		}
	}
}

func TestKeepalive(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	app.ActivityTimeout, app.PongTimeout = 1, 1
	_, addr := start(t, app, Config{Loops: 1})
	c := dialWS(t, addr)
	m := c.event("pusher:connection_established", 5*time.Second)
	if !strings.Contains(m["data"].(string), `"activity_timeout":1`) {
		t.Fatalf("established %v", m)
	}
	c.event("pusher:ping", 4*time.Second)
	c.send(`{"event":"pusher:pong","data":{}}`)
	c.event("pusher:ping", 4*time.Second)
	// No answer this time: 4201.
	if code := c.closeCode(5 * time.Second); code != pusher.CodePongNotReceived {
		t.Fatalf("close %d, want 4201", code)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	_, addr := start(t, app, Config{Loops: 1, HandshakeTimeout: time.Second})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET /app/app-key HTTP/1.1\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("server sent bytes to a half handshake")
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("half handshake kept open")
	}
}

func TestStopSends4200(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	srv, err := pusher.NewServer([]pusher.AppConfig{app}, pusher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	e, err := New(srv, Config{Addr: addr, Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.Run() }()
	<-e.Ready()
	clients := make([]*wsClient, 4)
	for i := range clients {
		clients[i] = dialWS(t, addr)
		clients[i].event("pusher:connection_established", 5*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop(ctx) }()
	for i, c := range clients {
		m := c.event("pusher:error", 5*time.Second)
		if code := m["data"].(map[string]any)["code"]; code != float64(pusher.CodeReconnect) {
			t.Fatalf("client %d: error code %v", i, code)
		}
		if code := c.closeCode(5 * time.Second); code != pusher.CodeReconnect {
			t.Fatalf("client %d: close %d", i, code)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("still listening after Stop: " + strconv.Quote(addr))
	}
}

// seqTask records its number on the loop that runs it.
type seqTask struct {
	n   int
	out *[]int
}

func (t seqTask) Run(context.Context) error {
	*t.out = append(*t.out, t.n)
	return nil
}

// TestExecuteKeepsOrder queues tasks faster than a held loop runs them, and
// more than gnet's first task queue holds, and requires that they run in
// the order they were queued: broadcasts must not overtake each other.
func TestExecuteKeepsOrder(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	_, e := startEngine(t, app, Config{Loops: 1})
	c := dialWS(t, e.cfg.Addr) // makes loop 0 known
	c.event("pusher:connection_established", 5*time.Second)

	var got []int
	release := make(chan struct{})
	started := make(chan struct{})
	if err := e.Execute(0, gnetBlock{started, release}); err != nil {
		t.Fatal(err)
	}
	<-started
	const total = 6000
	for n := 0; n < total/2; n++ {
		if err := e.Execute(0, seqTask{n, &got}); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	for n := total / 2; n < total; n++ {
		if err := e.Execute(0, seqTask{n, &got}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	_ = e.Execute(0, gnetBlock{started: done, release: nil})
	<-done
	if len(got) != total {
		t.Fatalf("%d of %d tasks ran", len(got), total)
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("task %d ran in place %d", n, i)
		}
	}
}

// gnetBlock closes started, then waits for release (if any).
type gnetBlock struct {
	started chan struct{}
	release chan struct{}
}

func (b gnetBlock) Run(context.Context) error {
	close(b.started)
	if b.release != nil {
		<-b.release
	}
	return nil
}
