package redisbroker

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// cluster starts n nodes meeting at r, under a prefix of the test's own.
func cluster(t *testing.T, r *redistest.Server, n int, cfg nodeConfig) []*node {
	t.Helper()
	cfg.redis = r
	if cfg.prefix == "" {
		cfg.prefix = "test-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = newNode(t, cfg)
	}
	return nodes
}

// TestBrokerContract runs the same single-node scenario with LocalBroker
// and with the Redis broker: a node that is a cluster of one behaves the
// same either way — broadcasts, exclusion, presence announcements, counts.
func TestBrokerContract(t *testing.T) {
	r := redistest.Start(t)
	for _, tc := range []struct {
		name string
		cfg  nodeConfig
	}{
		{name: "local", cfg: nodeConfig{}},
		{name: "redis", cfg: nodeConfig{redis: r, prefix: "contract"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, tc.cfg)
			a, b := n.dial(0), n.dial(1)
			a.subscribe("news")
			b.subscribe("news")
			if err := n.publish("news", "e", "1", b.id()); err != nil {
				t.Fatal(err)
			}
			if m := a.wait("e", nil); m.dataString() != "1" {
				t.Fatalf("a got %v", m)
			}
			if got := a.join("presence-room", "ann"); !slices.Equal(got, []string{"ann"}) {
				t.Fatalf("ann's list %v", got)
			}
			if got := b.join("presence-room", "bob"); len(got) != 2 {
				t.Fatalf("bob's list %v", got)
			}
			a.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"bob"`) })
			b.close()
			a.wait("pusher_internal:member_removed", func(f frame) bool { return contains(f.dataString(), `"bob"`) })
			if got := b.events("e"); len(got) != 0 {
				t.Fatalf("the excluded socket got %v", got)
			}
			if ci := n.s.Channel(n.app, "news"); ci.SubscriptionCount != 1 {
				t.Fatalf("news %+v", ci)
			}
			if users := n.s.Users(n.app, "presence-room"); !slices.Equal(users, []string{"ann"}) {
				t.Fatalf("users %v", users)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

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

// TestPresenceAcrossNodes: members are users, cluster-wide. A user on two
// nodes is one member: one member_added when it first appears anywhere,
// one member_removed when its last connection anywhere leaves; a new
// subscriber's list holds every node's members; the REST counts agree.
func TestPresenceAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 3, nodeConfig{})
	watcher := nodes[2].dial(0)
	watcher.join("presence-room", "watcher")
	ann0 := nodes[0].dial(0)
	ann0.join("presence-room", "ann")
	watcher.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"ann"`) })
	// Each node reads the bus at its own pace: node 1 knows both once it
	// has read as far as node 2 has.
	waitFor(t, "node 1 to know watcher and ann", func() bool {
		return slices.Equal(nodes[1].s.Users(nodes[1].app, "presence-room"), []string{"ann", "watcher"})
	})
	ann1 := nodes[1].dial(1)
	if got := ann1.join("presence-room", "ann"); !slices.Contains(got, "watcher") || !slices.Contains(got, "ann") || len(got) != 2 {
		t.Fatalf("ann's second connection listed %v", got)
	}
	bob := nodes[1].dial(0)
	bob.join("presence-room", "bob")
	watcher.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"bob"`) })
	if n := len(watcher.events("pusher_internal:member_added")); n != 2 {
		t.Fatalf("watcher heard of %d members, want ann and bob once each", n)
	}
	for i, n := range nodes {
		waitFor(t, "user_count on node "+strconv.Itoa(i), func() bool {
			ci := n.s.Channel(n.app, "presence-room")
			return ci.UserCount == 3 && ci.SubscriptionCount == 4
		})
	}
	ann0.close()
	// ann is still on node 1: nobody hears she left.
	bob.close()
	watcher.wait("pusher_internal:member_removed", func(f frame) bool { return contains(f.dataString(), `"bob"`) })
	ann1.close()
	watcher.wait("pusher_internal:member_removed", func(f frame) bool { return contains(f.dataString(), `"ann"`) })
	if n := len(watcher.events("pusher_internal:member_removed")); n != 2 {
		t.Fatalf("watcher heard %d leaves, want bob's and ann's", n)
	}
	waitFor(t, "node 0 to know only watcher", func() bool {
		return slices.Equal(nodes[0].s.Users(nodes[0].app, "presence-room"), []string{"watcher"})
	})
	late := nodes[0].dial(1)
	if got := late.join("presence-room", "late"); !slices.Equal(sorted(got), []string{"late", "watcher"}) {
		t.Fatalf("late's list %v", got)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestPresenceCapAcrossNodes: max_presence_members counts users of every
// node.
func TestPresenceCapAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{app: func(a *pusher.AppConfig) { a.MaxPresenceMembers = 2 }})
	nodes[0].dial(0).join("presence-full", "a")
	nodes[1].dial(0).join("presence-full", "b")
	waitFor(t, "both members on node 0", func() bool { return nodes[0].s.Channel(nodes[0].app, "presence-full").UserCount == 2 })
	c := nodes[0].dial(1)
	cd := `{"user_id":"c"}`
	c.send(`{"event":"pusher:subscribe","data":{"channel":"presence-full","auth":"app-key:` + pusher.Sign("app-secret", c.id()+":presence-full:"+cd) + `","channel_data":"{\"user_id\":\"c\"}"}}`)
	if f := c.wait("pusher:subscription_error", nil); !contains(string(f.Data), "LimitReached") {
		t.Fatalf("third member: %s", f.Data)
	}
}

// TestCountsAcrossNodes: the REST queries answer for the cluster on any
// node: subscription counts, occupied channels, connections; and they
// come down after leaves.
func TestCountsAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 3, nodeConfig{})
	var cs []*client
	for i, n := range nodes {
		for j := 0; j <= i; j++ {
			c := n.dial(j % 2)
			c.subscribe("counted")
			cs = append(cs, c)
		}
	}
	for i, n := range nodes {
		waitFor(t, "counts on node "+strconv.Itoa(i), func() bool {
			ci := n.s.Channel(n.app, "counted")
			list := n.s.Channels(n.app, "count")
			return ci.SubscriptionCount == 6 && len(list) == 1 && list[0].SubscriptionCount == 6 && n.s.Connections(n.app) == 6
		})
	}
	for _, c := range cs[:3] {
		c.close()
	}
	for i, n := range nodes {
		waitFor(t, "counts after leaves on node "+strconv.Itoa(i), func() bool {
			return n.s.Channel(n.app, "counted").SubscriptionCount == 3 && n.s.Connections(n.app) == 3
		})
	}
}

// TestUsersAcrossNodes: a watchlist hears of a user signing in on another
// node, and of its last connection leaving; terminate_connections closes
// the user's connections on every node.
func TestUsersAcrossNodes(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{})
	w := nodes[0].dial(0)
	w.signin("watcher", "ann")
	w.wait("pusher_internal:watchlist_events", nil)
	ann := nodes[1].dial(1)
	ann.signin("ann")
	w.wait("pusher_internal:watchlist_events", func(f frame) bool {
		return contains(f.dataString(), `"online"`) && contains(f.dataString(), `"ann"`)
	})
	ann2 := nodes[0].dial(1)
	ann2.signin("ann")
	if n, err := nodes[0].s.TerminateUser(context.Background(), nodes[0].app, "ann"); err != nil || n != 1 {
		t.Fatalf("terminate: %d here, %v", n, err)
	}
	waitFor(t, "ann closed on both nodes", func() bool {
		return ann.closeCode() == pusher.CodeUnauthorized && ann2.closeCode() == pusher.CodeUnauthorized
	})
	ann.close()
	ann2.close()
	w.wait("pusher_internal:watchlist_events", func(f frame) bool { return contains(f.dataString(), `"offline"`) })
}

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

// TestResyncEmptiesChannels: a member whose last connection on a node
// left while that node could not reach Redis (its leave lost) is removed
// for the cluster by the node's resync once Redis answers again.
func TestResyncEmptiesChannels(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{nodeTimeout: time.Hour})
	watcher := nodes[1].dial(0)
	watcher.join("presence-room", "watcher")
	leaver := nodes[0].dial(0)
	leaver.join("presence-room", "leaver")
	watcher.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"leaver"`) })
	// Node 0 takes Redis for gone (a blip): the leave cannot reach it. Its
	// next heartbeat finds Redis answering and resyncs.
	nodes[0].broker.down(errors.New("a blip, for the test"))
	leaver.close()
	watcher.wait("pusher_internal:member_removed", func(f frame) bool { return contains(f.dataString(), `"leaver"`) })
	waitFor(t, "node 1's roster without leaver", func() bool {
		return !slices.Contains(nodes[1].s.Users(nodes[1].app, "presence-room"), "leaver")
	})
}

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

// TestParseURL: the URL forms of one Redis, Sentinel and Redis Cluster, as
// rueidis reads them, with TLS and ACL users.
func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url          string
		addrs        []string
		user, pass   string
		masterSet    string
		tls          bool
		serverName   string
		sentinelPass string
		db           int
	}{
		{url: "redis://127.0.0.1:6379/2", addrs: []string{"127.0.0.1:6379"}, db: 2},
		{url: "rediss://revurb:s3cret@redis.example.com/0", addrs: []string{"redis.example.com:6379"}, user: "revurb", pass: "s3cret", tls: true, serverName: "redis.example.com"},
		{url: "redis://:pw@s1:26379?addr=s2:26379&addr=s3:26379&master_set=mymaster&sentinel_password=sp",
			addrs: []string{"s1:26379", "s2:26379", "s3:26379"}, pass: "pw", masterSet: "mymaster", sentinelPass: "sp"},
		{url: "rediss://u:p@n1:7000?addr=n2:7001&addr=n3:7002", addrs: []string{"n1:7000", "n2:7001", "n3:7002"}, user: "u", pass: "p", tls: true},
	} {
		t.Run(tc.url, func(t *testing.T) {
			opt, err := ParseURL(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(opt.InitAddress, tc.addrs) || opt.Username != tc.user || opt.Password != tc.pass ||
				opt.Sentinel.MasterSet != tc.masterSet || opt.Sentinel.Password != tc.sentinelPass || opt.SelectDB != tc.db {
				t.Fatalf("%+v", opt)
			}
			if (opt.TLSConfig != nil) != tc.tls || tc.tls && opt.TLSConfig.ServerName != tc.serverName {
				t.Fatalf("TLS %+v", opt.TLSConfig)
			}
			if !opt.DisableCache {
				t.Fatal("client-side caching on")
			}
		})
	}
	for _, bad := range []string{"http://h:1", "redis://", "redis://h:1/x", "::"} {
		if _, err := ParseURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
