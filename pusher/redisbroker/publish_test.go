package redisbroker

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// TestDeliveryAcrossNodes: an event published on one node reaches every
// subscriber on every node once, in publish order; socket_id exclusion
// works wherever the excluded socket lives.
func TestDeliveryAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 3, nodeConfig{})
	var subs []*client
	for i, n := range nodes {
		c := n.dial(i % 2)
		c.subscribe("feed")
		subs = append(subs, c)
	}
	const events = 100
	for i := 0; i < events; i++ {
		if err := nodes[0].publish("feed", "tick", strconv.Itoa(i), ""); err != nil {
			t.Fatal(err)
		}
	}
	for j, c := range subs {
		waitFor(t, "every tick on node "+strconv.Itoa(j), func() bool { return len(c.events("tick")) == events })
		for i, f := range c.events("tick") {
			if f.dataString() != strconv.Itoa(i) {
				t.Fatalf("node %d: event %d carries %s", j, i, f.dataString())
			}
		}
	}
	// Excluding a socket of node 2 from node 0.
	if err := nodes[0].publish("feed", "quiet", "x", subs[2].id()); err != nil {
		t.Fatal(err)
	}
	subs[0].wait("quiet", nil)
	subs[1].wait("quiet", nil)
	if err := nodes[0].publish("feed", "after", "x", ""); err != nil {
		t.Fatal(err)
	}
	subs[2].wait("after", nil)
	if got := subs[2].events("quiet"); len(got) != 0 {
		t.Fatal("the excluded socket on another node got the event")
	}
}

// TestClientEventsAcrossNodes: a client event reaches the channel's other
// subscribers on every node and never echoes to its sender.
func TestClientEventsAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 3, nodeConfig{})
	var cs []*client
	for _, n := range nodes {
		c := n.dial(0)
		c.subscribe("private-chat")
		cs = append(cs, c)
	}
	cs[0].send(`{"event":"client-typing","channel":"private-chat","data":{"who":"a"}}`)
	for _, c := range cs[1:] {
		if f := c.wait("client-typing", nil); string(f.Data) != `{"who":"a"}` {
			t.Fatalf("relayed %s", f.Data)
		}
	}
	cs[1].send(`{"event":"client-done","channel":"private-chat","data":{}}`)
	cs[0].wait("client-done", nil)
	if got := cs[0].events("client-typing"); len(got) != 0 {
		t.Fatal("a client event echoed to its sender")
	}
}

// TestSlowRedis: while Redis answers nothing for longer than Publish
// waits, a trigger is still answered and delivered to the node's own
// subscribers; once Redis wakes the other nodes get it, and the node's own
// subscribers do not get it a second time from the bus.
func TestSlowRedis(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{})
	here, there := nodes[0].dial(0), nodes[1].dial(1)
	here.subscribe("feed")
	there.subscribe("feed")
	if err := nodes[0].publish("feed", "tick", "0", ""); err != nil {
		t.Fatal(err)
	}
	here.wait("tick", nil)
	there.wait("tick", nil)

	r.Stall(3 * time.Second)
	if err := nodes[0].publish("feed", "tick", "1", ""); err != nil {
		t.Fatal(err)
	}
	here.wait("tick", func(f frame) bool { return f.dataString() == "1" })
	nodes[0].broker.skipMu.Lock()
	marked := len(nodes[0].broker.skipped)
	nodes[0].broker.skipMu.Unlock()
	if marked != 1 {
		t.Fatalf("%d broadcasts marked as delivered here while Redis slept, want 1", marked)
	}
	there.wait("tick", func(f frame) bool { return f.dataString() == "1" })
	// One more, through Redis awake: everything before it has been read off the bus.
	if err := nodes[0].publish("feed", "tick", "2", ""); err != nil {
		t.Fatal(err)
	}
	here.wait("tick", func(f frame) bool { return f.dataString() == "2" })
	there.wait("tick", func(f frame) bool { return f.dataString() == "2" })
	for name, c := range map[string]*client{"here": here, "there": there} {
		var got []string
		for _, f := range c.events("tick") {
			got = append(got, f.dataString())
		}
		if !slices.Equal(got, []string{"0", "1", "2"}) {
			t.Errorf("%s got ticks %v, want 0 1 2 once each", name, got)
		}
	}
}

// TestCacheAcrossNodes: a cache channel's last event, published on one
// node, is replayed to a subscriber on a node that started after it.
func TestCacheAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	n1 := newNode(t, nodeConfig{redis: r, prefix: "cache"})
	if err := n1.publish("cache-news", "headline", "first", ""); err != nil {
		t.Fatal(err)
	}
	if err := n1.publish("cache-news", "headline", "latest", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the event kept in Redis", func() bool { return r.Do("EXISTS", "cache:{app-id}:cache:cache-news") == int64(1) })
	n2 := newNode(t, nodeConfig{redis: r, prefix: "cache"})
	c := n2.dial(0)
	c.subscribe("cache-news")
	if f := c.wait("headline", nil); f.dataString() != "latest" {
		t.Fatalf("replayed %s", f.dataString())
	}
	if r.Do("ZCARD", "cache:{app-id}:cachex") != int64(1) {
		t.Fatal("the cache index holds more than the channel")
	}
}
