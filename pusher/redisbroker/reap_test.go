package redisbroker

import (
	"context"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// TestNodeDeath: a node that stops without a goodbye has its members
// removed, and its counts forgotten, by the others once its heartbeats
// are older than the node timeout.
func TestNodeDeath(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{nodeTimeout: 2 * time.Second})
	watcher := nodes[0].dial(0)
	watcher.join("presence-room", "watcher")
	ghost := nodes[1].dial(0)
	ghost.join("presence-room", "ghost")
	watcher.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"ghost"`) })
	waitFor(t, "the ghost's count", func() bool { return nodes[0].s.Channel(nodes[0].app, "presence-room").SubscriptionCount == 2 })
	nodes[1].broker.die()
	watcher.wait("pusher_internal:member_removed", func(f frame) bool { return contains(f.dataString(), `"ghost"`) })
	waitFor(t, "the dead node's count forgotten", func() bool {
		ci := nodes[0].s.Channel(nodes[0].app, "presence-room")
		return ci.SubscriptionCount == 1 && ci.UserCount == 1
	})
}

// TestGracefulLeave: a node that stops tells the others at once.
func TestGracefulLeave(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{nodeTimeout: time.Hour})
	watcher := nodes[0].dial(0)
	watcher.join("presence-room", "watcher")
	nodes[1].dial(0).join("presence-room", "leaver")
	watcher.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"leaver"`) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[1].s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	watcher.wait("pusher_internal:member_removed", func(f frame) bool { return contains(f.dataString(), `"leaver"`) })
}

// TestReapedAliveRejoins: a node the others took for dead while it was
// alive (its beat made old in Redis, as a node cut off that long would
// leave it) is reaped — its members removed for the cluster — finds out,
// rejoins under a new name and tells its state again: its member is back
// everywhere and broadcasts cross again both ways.
func TestReapedAliveRejoins(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{prefix: "rejoin", nodeTimeout: 2 * time.Second})
	watcher := nodes[0].dial(0)
	watcher.join("presence-room", "watcher")
	watcher.subscribe("feed")
	ann := nodes[1].dial(0)
	ann.join("presence-room", "ann")
	ann.subscribe("feed")
	watcher.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"ann"`) })
	old := nodes[1].broker.Node()
	// Node 1 reaps node 2, as it would a node whose beats stopped for a
	// node timeout (TestNodeDeath), and node 2 learns it on the bus.
	b := nodes[0].broker
	if _, err := b.reapApps(context.Background(), b.redis(), old, b.appList()); err != nil {
		t.Fatal(err)
	}
	watcher.wait("pusher_internal:member_removed", func(f frame) bool { return contains(f.dataString(), `"ann"`) })
	waitFor(t, "node 2 under a new name", func() bool { return nodes[1].broker.Node() != old && nodes[1].broker.registered.Load() })
	watcher.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"ann"`) })
	waitFor(t, "broadcasts crossing again", func() bool {
		_ = nodes[1].publish("feed", "again", "1", "")
		time.Sleep(20 * time.Millisecond)
		return len(watcher.events("again")) > 0
	})
	waitFor(t, "broadcasts crossing the other way", func() bool {
		_ = nodes[0].publish("feed", "back", "1", "")
		time.Sleep(20 * time.Millisecond)
		return len(ann.events("back")) > 0
	})
	if r.Do("SISMEMBER", "rejoin:{app-id}:nodes", old) != int64(0) {
		t.Fatal("the old name is still registered")
	}
}
