package redisbroker

import (
	"slices"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// TestRedisRestart: with Redis gone, each node goes on serving its own
// clients and triggers are answered at once; once Redis is back (empty),
// the nodes deliver across again, and what Redis lost — members, counts —
// is there again for new subscribers and queries.
func TestRedisRestart(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{})
	a := nodes[0].dial(0)
	a.subscribe("feed")
	a.join("presence-room", "ann")
	b := nodes[1].dial(0)
	b.subscribe("feed")

	r.Kill()
	waitFor(t, "node 0 to see Redis gone", func() bool { return !nodes[0].broker.Up() })
	start := time.Now()
	if err := nodes[0].publish("feed", "local", "1", ""); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a trigger took %s with Redis gone", took)
	}
	a.wait("local", nil)
	// A subscribe during the outage is served locally.
	c := nodes[0].dial(1)
	c.subscribe("feed")

	r.Restart()
	waitFor(t, "both nodes to see Redis back", func() bool { return nodes[0].broker.Up() && nodes[1].broker.Up() })
	waitFor(t, "delivery across nodes again", func() bool {
		_ = nodes[0].publish("feed", "again", "1", "")
		time.Sleep(50 * time.Millisecond)
		return len(b.events("again")) > 0
	})
	late := nodes[1].dial(1)
	waitFor(t, "node 0's member back in the cluster's view", func() bool {
		return slices.Contains(nodes[1].s.Users(nodes[1].app, "presence-room"), "ann")
	})
	if got := late.join("presence-room", "late"); !slices.Contains(got, "ann") {
		t.Fatalf("late's list after Redis came back: %v", got)
	}
	waitFor(t, "counts of both nodes again", func() bool {
		return nodes[1].s.Channel(nodes[1].app, "feed").SubscriptionCount == 3
	})
}
