//go:build !race

package pusher

import (
	"testing"
	"unsafe"
)

func TestClientEventAllocs(t *testing.T) {
	s, _ := newServer(t, 1, func(a *AppConfig) { a.ClientEventRate = 0; a.MaxMessageRate = 0 })
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
	allocs := testing.AllocsPerRun(1000, func() { publish(s, app, channels, "flash", data, "") })
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

// TestLoopCountersSize: each loop's counters fill one cache line, so that loops
// counting never write a line another loop uses.
func TestLoopCountersSize(t *testing.T) {
	if n := unsafe.Sizeof(loopCounters{}); n != 64 {
		t.Fatalf("loopCounters is %d bytes, want 64: mend its padding", n)
	}
}
