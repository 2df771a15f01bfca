package pusher

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
)

// syncLoops runs every task at once on the caller: the tests drive all
// sessions from one goroutine, as one event loop per index would.
type syncLoops struct{ n int }

func (l syncLoops) Len() int { return l.n }

func (l syncLoops) Execute(_ int, t Task) error { return t.Run(context.Background()) }

// recConn records what the server writes to one connection.
type recConn struct {
	frames    [][]byte // payloads of the text frames, oldest first
	closeCode int
}

func (c *recConn) Write(frame []byte) {
	c.frames = append(c.frames, append([]byte(nil), frameJSON(frame)...))
}

func (c *recConn) Close(code int, _ string) { c.closeCode = code }

// client is one test connection.
type client struct {
	t    *testing.T
	s    *Server
	sess Session
	conn recConn
}

func newServer(t testing.TB, loops int, mods ...func(*AppConfig)) (*Server, *App) {
	t.Helper()
	app := DefaultApp("app-id", "app-key", "app-secret")
	for _, m := range mods {
		if m != nil {
			m(&app)
		}
	}
	s, err := NewServer([]AppConfig{app}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Attach(syncLoops{n: loops}); err != nil {
		t.Fatal(err)
	}
	return s, s.AppByID(app.ID)
}

// publish publishes one event and panics if the publish bound refuses it,
// which no test here provokes unless it says so.
func publish(s *Server, app *App, channels []string, name string, data []byte, except string) {
	ev := [1]Event{{Channels: channels, Name: name, Data: data, Except: except}}
	if err := s.Publish(context.Background(), app, ev[:]); err != nil {
		panic(err)
	}
}

// dial opens a session on loop with the given key and checks the
// connection is established.
func dial(t *testing.T, s *Server, loop int) *client {
	t.Helper()
	c := &client{t: t, s: s}
	if !s.Open(&c.sess, &c.conn, loop, "app-key", "7", "") {
		t.Fatalf("open refused: %s", c.conn.frames)
	}
	c.mustEvent("pusher:connection_established")
	return c
}

func (c *client) send(msg string) { c.s.Handle(&c.sess, []byte(msg)) }

// next pops the oldest frame, decoded.
func (c *client) next() map[string]any {
	c.t.Helper()
	if len(c.conn.frames) == 0 {
		c.t.Fatal("no frame was written")
	}
	f := c.conn.frames[0]
	c.conn.frames = c.conn.frames[1:]
	var m map[string]any
	if err := json.Unmarshal(f, &m); err != nil {
		c.t.Fatalf("frame is not JSON: %v: %s", err, f)
	}
	return m
}

// mustEvent pops the next frame and checks its event name.
func (c *client) mustEvent(event string) map[string]any {
	c.t.Helper()
	m := c.next()
	if m["event"] != event {
		c.t.Fatalf("event = %v, want %s (frame %v)", m["event"], event, m)
	}
	return m
}

// data decodes an event's data, which servers send as a JSON string.
func data(t *testing.T, m map[string]any) map[string]any {
	t.Helper()
	s, ok := m["data"].(string)
	if !ok {
		t.Fatalf("data is not a string: %v", m)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatalf("data is not JSON: %s", s)
	}
	return d
}

// errorCode pops the next frame, which must be a pusher:error, and returns
// its code (0 for null).
func (c *client) errorCode() int {
	c.t.Helper()
	m := c.mustEvent("pusher:error")
	d, ok := m["data"].(map[string]any)
	if !ok {
		c.t.Fatalf("pusher:error data is not an object: %v", m)
	}
	if d["message"] == "" {
		c.t.Fatalf("pusher:error without a message: %v", m)
	}
	code, _ := d["code"].(float64)
	return int(code)
}

func (c *client) none() {
	c.t.Helper()
	if len(c.conn.frames) > 0 {
		c.t.Fatalf("unexpected frames: %s", c.conn.frames)
	}
}

func (c *client) subscribe(channel string) {
	c.t.Helper()
	var auth, extra string
	switch kind, _ := ChannelKind(channel); kind {
	case Private, Encrypted:
		auth = "app-key:" + Sign("app-secret", c.sess.id.String()+":"+channel)
	}
	c.send(`{"event":"pusher:subscribe","data":{"channel":` + strconv.Quote(channel) + `,"auth":"` + auth + `"` + extra + `}}`)
	m := c.mustEvent("pusher_internal:subscription_succeeded")
	if m["channel"] != channel {
		c.t.Fatalf("succeeded on %v, want %s", m["channel"], channel)
	}
}

// join subscribes to a presence channel as user with info and returns the
// subscription_succeeded data.
func (c *client) join(channel, channelData string) map[string]any {
	c.t.Helper()
	auth := "app-key:" + Sign("app-secret", c.sess.id.String()+":"+channel+":"+channelData)
	c.send(`{"event":"pusher:subscribe","data":{"channel":` + strconv.Quote(channel) + `,"auth":"` + auth + `","channel_data":` + strconv.Quote(channelData) + `}}`)
	m := c.mustEvent("pusher_internal:subscription_succeeded")
	return data(c.t, m)
}

// countConn counts writes and keeps nothing, so that only the server's own
// allocations are measured.
type countConn struct{ writes, bytes int }

func (c *countConn) Write(frame []byte) { c.writes++; c.bytes += len(frame) }

func (c *countConn) Close(int, string) {}

// steady opens n sessions on loops round robin, all subscribed to channel.
func steady(tb testing.TB, s *Server, loops, n int, channel string) []*Session {
	tb.Helper()
	sessions := make([]*Session, n)
	for i := range sessions {
		sess := &Session{}
		if !s.Open(sess, &countConn{}, i%loops, "app-key", "7", "") {
			tb.Fatal("open refused")
		}
		auth := ""
		if kind, _ := ChannelKind(channel); kind == Private {
			auth = "app-key:" + Sign("app-secret", sess.ID().String()+":"+channel)
		}
		s.Handle(sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"`+channel+`","auth":"`+auth+`"}}`))
		sessions[i] = sess
	}
	return sessions
}

// dyingConn is a socket whose next write fails once armed: like gnet, it
// is closed at once, and package loop, in whose turn the write happened,
// closes its session when the turn ends (closeDead, here).
type dyingConn struct {
	recConn
	sess  *Session
	armed bool
	dead  bool
}

func (c *dyingConn) Write(frame []byte) {
	if c.armed {
		c.armed, c.dead = false, true
		return
	}
	if !c.dead {
		c.recConn.Write(frame)
	}
}

// closeDead ends the turn of a loop whose writes killed some of conns:
// their sessions are closed, as package loop does after the turn.
func closeDead(s *Server, conns []*dyingConn) {
	for _, c := range conns {
		if c.dead {
			s.Close(c.sess)
		}
	}
}

// frameJSON returns the payload of an unmasked server frame.
func frameJSON(frame []byte) []byte {
	switch n := frame[1] & 0x7f; n {
	case 126:
		return frame[4:]
	case 127:
		return frame[10:]
	}
	return frame[2:]
}
