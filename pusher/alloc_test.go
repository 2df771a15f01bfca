//go:build !race

package pusher

import "testing"

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
			auth = "app-key:" + Sign("app-secret", sess.ID()+":"+channel)
		}
		s.Handle(sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"`+channel+`","auth":"`+auth+`"}}`))
		sessions[i] = sess
	}
	return sessions
}

func TestClientEventAllocs(t *testing.T) {
	s, _ := newServer(t, 1, func(a *App) { a.ClientEventRate = 0 })
	sessions := steady(t, s, 1, 10, "private-chat")
	msg := []byte(`{"event":"client-typing","channel":"private-chat","data":{"who":"a","n":12}}`)
	allocs := testing.AllocsPerRun(1000, func() { s.Handle(sessions[0], msg) })
	if allocs != 0 {
		t.Fatalf("a relayed client event allocates %.1f times, want 0", allocs)
	}
	if got := sessions[1].conn.(*countConn).writes; got < 1000 {
		t.Fatalf("subscriber got %d frames", got)
	}
}

func TestBroadcastAllocs(t *testing.T) {
	s, app := newServer(t, 4)
	sessions := steady(t, s, 4, 40, "news")
	channels := []string{"news"}
	data := []byte(`{"title":"hello","body":"world"}`)
	allocs := testing.AllocsPerRun(1000, func() { s.Publish(app, channels, "flash", data, "") })
	if allocs != 0 {
		t.Fatalf("a broadcast allocates %.1f times, want 0", allocs)
	}
	if got := sessions[3].conn.(*countConn).writes; got < 1000 {
		t.Fatalf("subscriber got %d frames", got)
	}
}

func TestPingAllocs(t *testing.T) {
	s, _ := newServer(t, 1)
	sess := steady(t, s, 1, 1, "news")[0]
	msg := []byte(`{"event":"pusher:ping","data":{}}`)
	if allocs := testing.AllocsPerRun(1000, func() { s.Handle(sess, msg) }); allocs != 0 {
		t.Fatalf("pusher:ping allocates %.1f times, want 0", allocs)
	}
}
