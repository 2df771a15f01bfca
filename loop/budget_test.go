package loop

import (
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// TestBudgetReadsLaterInOrder: a client that sends more than its budget
// at once (5,000 subscriptions against a burst of 3,000 at 1,000 a
// second), in pieces split at random offsets, gets every reply, in the
// order it sent, none refused: past its budget it is read more slowly, not
// answered with an error.
func TestBudgetReadsLaterInOrder(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	app.MaxMessageRate, app.MaxSubscriptions = 1000, 0 // burst: DefaultMaxSubscriptions + 1000
	_, e := startEngine(t, app, Config{Loops: 2})
	c := dialWS(t, e.cfg.Addr)
	c.event("pusher:connection_established", 5*time.Second)

	const n = 5000
	var all []byte
	for i := range n {
		msg := `{"event":"pusher:subscribe","data":{"channel":"ch-` + strconv.Itoa(i) + `"}}`
		all = codec.AppendMaskedFrame(all, ws.OpText, true, [4]byte{1, 2, 3, 4}, []byte(msg))
	}
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for rest := all; len(rest) > 0; {
			k := min(1+rng.IntN(8<<10), len(rest))
			if _, err := c.c.Write(rest[:k]); err != nil {
				return
			}
			rest = rest[k:]
		}
	}()
	for i := range n {
		op, p, err := c.read(20 * time.Second)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		var m struct{ Event, Channel string }
		if op != ws.OpText || json.Unmarshal(p, &m) != nil {
			t.Fatalf("reply %d: op %v %q", i, op, p)
		}
		if m.Event != "pusher_internal:subscription_succeeded" || m.Channel != "ch-"+strconv.Itoa(i) {
			t.Fatalf("reply %d: %s on %q, want subscription_succeeded on ch-%d", i, m.Event, m.Channel, i)
		}
	}
	if st := e.Stats(); st.Throttles == 0 || st.InboundCloses != 0 {
		t.Fatalf("throttled %d times, closed %d for unread input: want read more slowly, not closed", st.Throttles, st.InboundCloses)
	}
}

// TestBudgetCapsUnread: a client that sends on past its budget regardless
// holds at most MaxInbound unread; past it, it is closed with 4100 (pusher-js
// backs off), and another client on the same loop is answered all along.
func TestBudgetCapsUnread(t *testing.T) {
	app := pusher.DefaultApp("app-id", "app-key", "app-secret")
	app.MaxMessageRate = 10
	_, e := startEngine(t, app, Config{Loops: 1, MaxInbound: 64 << 10})
	flood := dialWS(t, e.cfg.Addr)
	flood.event("pusher:connection_established", 5*time.Second)
	by := dialWS(t, e.cfg.Addr)
	by.event("pusher:connection_established", 5*time.Second)

	ping := codec.AppendMaskedFrame(nil, ws.OpText, true, [4]byte{1, 2, 3, 4}, []byte(`{"event":"pusher:ping","data":{}}`))
	var chunk []byte
	for range 1000 {
		chunk = append(chunk, ping...)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := flood.c.Write(chunk); err != nil {
				return
			}
		}
	}()
	// The bystander's pings are answered while the flood goes on.
	for range 20 {
		by.send(`{"event":"pusher:ping","data":{}}`)
		by.event("pusher:pong", 5*time.Second)
	}
	// The flooder gets its burst's pongs, then 4100 once it holds more
	// than 64 KiB unread.
	pongs := 0
	for {
		op, p, err := flood.read(10 * time.Second)
		if err != nil {
			t.Fatalf("flooder: no close after %d pongs: %v", pongs, err)
		}
		if op == ws.OpClose {
			if code := int(p[0])<<8 | int(p[1]); code != pusher.CodeOverCapacity {
				t.Fatalf("flooder closed with %d, want 4100", code)
			}
			break
		}
		pongs++
	}
	if want := int(app.MaxMessageRate + pusher.DefaultMaxSubscriptions); pongs < want {
		t.Fatalf("flooder got %d pongs before its close, want its burst of %d at least", pongs, want)
	}
	by.send(`{"event":"pusher:ping","data":{}}`)
	by.event("pusher:pong", 5*time.Second)
	if st := e.Stats(); st.InboundCloses != 1 {
		t.Fatalf("%d connections closed for unread input, want 1", st.InboundCloses)
	}
}
