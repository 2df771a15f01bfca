package redisbroker

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// TestBusRefuses: a message on an app's bus that is unsigned, signed with
// another key (a made-up node's), past the app's limits, from a node not
// in the heartbeat set, or carrying too many counts, is dropped and
// counted by reason; the node's clients get none of it, and what it keeps
// of the cluster does not change.
func TestBusRefuses(t *testing.T) {
	r := redistest.Start(t)
	n := newNode(t, nodeConfig{redis: r, prefix: "forge", app: func(a *pusher.AppConfig) { a.MaxConnections = 50 }})
	c := n.dial(0)
	c.subscribe("feed")
	a := n.broker.appByID("app-id")
	ours := a.sig
	theirs := newSigner(busKey("guessed", &pusher.AppConfig{ID: "app-id"}))
	now := time.Now().UnixMilli()
	fake := header{origin: "made-up", time: now, app: "app-id"}
	stale := header{origin: "long-gone", time: now - time.Hour.Milliseconds(), app: "app-id"}
	live := header{origin: n.broker.Node(), time: now, app: "app-id"}
	bc := func(data int) *pusher.Broadcast {
		return &pusher.Broadcast{Channels: []string{"feed"}, Event: "forged", Data: []byte(`"` + strings.Repeat("x", data) + `"`)}
	}
	many := make([]pusher.ChannelCount, maxCountsPerMessage+1)
	for i := range many {
		many[i] = pusher.ChannelCount{Channel: "c" + strconv.Itoa(i), Count: 1}
	}
	for _, tc := range []struct {
		name, reason string
		msg          []byte
	}{
		{"unsigned", "signature", appendBroadcast(nil, fake, bc(1), 1)},
		{"another key", "signature", theirs.sign(appendCounts(nil, fake, 1000, true, 0, true, []pusher.ChannelCount{{Channel: "feed", Count: 1000}}))},
		{"garbage", "signature", []byte("hello")},
		{"oversized data", "size", ours.sign(appendBroadcast(nil, live, bc(a.lim.data+1), 1))},
		{"oversized message", "size", ours.sign(appendBroadcast(nil, live, bc(a.lim.message), 1))},
		{"too many counts", "limit", ours.sign(appendCounts(nil, live, 1, false, 0, true, many))},
		{"an unknown node's old message", "unknown_node", ours.sign(appendCounts(nil, stale, 1000, true, 0, true, nil))},
		{"not a message", "malformed", ours.sign([]byte{version, 99})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n.broker.ClusterStats().Refused[tc.reason]
			r.Do("PUBLISH", a.bus, string(tc.msg))
			waitFor(t, "the message refused for "+tc.reason, func() bool { return n.broker.ClusterStats().Refused[tc.reason] == before+1 })
		})
	}
	// A signed one from the node itself goes through: the bus works.
	if err := n.publish("feed", "real", "1", ""); err != nil {
		t.Fatal(err)
	}
	c.wait("real", nil)
	if got := c.events("forged"); len(got) != 0 {
		t.Fatalf("a client got %d forged events", len(got))
	}
	if got := n.s.Connections(n.app); got != 1 {
		t.Fatalf("connections %d: forged counts were taken", got)
	}
	c2 := n.dial(1) // not locked out by max_connections
	c2.subscribe("feed")
}
