package redisbroker

// The cluster under the ways a busy production cluster breaks one: a node
// joining while another is loaded, a Redis shared with other software,
// churning clients, forged and oversized bus messages, a node taken for
// dead while alive, keys of the wrong type.

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// quietConn is a connection that reads nothing the server writes.
type quietConn struct{}

func (quietConn) Write([]byte)      {}
func (quietConn) Close(int, string) {}

// quietJoin opens a connection that reads nothing on loop of n and joins
// the presence channel as user; close closes it.
func (n *node) quietJoin(loop int, channel, user string) (close func()) {
	n.t.Helper()
	sess := new(pusher.Session)
	ok := false
	n.loops.on(loop, func() {
		if ok = n.s.Open(sess, quietConn{}, loop, "app-key", "7", ""); !ok {
			return
		}
		cd := `{"user_id":"` + user + `"}`
		auth := "app-key:" + pusher.Sign("app-secret", sess.ID().String()+":"+channel+":"+cd)
		msg, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{"channel": channel, "auth": auth, "channel_data": cd}})
		n.s.Handle(sess, msg)
	})
	if !ok {
		n.t.Fatal("open refused")
	}
	return func() { n.loops.on(loop, func() { n.s.Close(sess) }) }
}

// commandStats reads INFO commandstats: calls by command.
func commandStats(t *testing.T, r *redistest.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, line := range strings.Split(r.Do("INFO", "commandstats").(string), "\r\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		calls, _ := strconv.Atoi(strings.SplitN(rest, ",", 2)[0])
		out[name] = calls
	}
	return out
}

// TestJoinWhileBusy: a node joins a cluster whose other node holds 2,000
// presence members and publishes 400 events a second: the new node
// receives every broadcast from the moment its subscriber is in, lists
// every member, and no node is taken for dead however long it lasts (the
// node timeout is 3 s here, the traffic lasts twice that).
func TestJoinWhileBusy(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	cfg := nodeConfig{redis: r, prefix: "busy", nodeTimeout: 3 * time.Second, app: func(a *pusher.AppConfig) { a.MaxPresenceMembers = 5000 }}
	n1 := newNode(t, cfg)
	const members = 2000
	for i := range members {
		n1.quietJoin(i%2, "presence-big", "u"+strconv.Itoa(i))
	}
	waitFor(t, "node 1 to list every member", func() bool { return len(n1.s.Users(n1.app, "presence-big")) == members })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2500 * time.Microsecond) // 400 a second
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = n1.publish("feed", "tick", strconv.Itoa(i), "")
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	start := time.Now()
	n2 := newNode(t, cfg)
	c := n2.dial(0)
	c.subscribe("feed")
	const marks = 40
	for i := range marks {
		if err := n1.publish("feed", "mark", strconv.Itoa(i), ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every mark on node 2", func() bool { return len(c.events("mark")) == marks })
	for i, f := range c.events("mark") {
		if f.dataString() != strconv.Itoa(i) {
			t.Fatalf("mark %d carries %s", i, f.dataString())
		}
	}
	waitFor(t, "node 2 to list every member", func() bool { return len(n2.s.Users(n2.app, "presence-big")) == members })
	// Two node timeouts of traffic and more: nobody reaped, nobody renamed.
	for time.Since(start) < 2*cfg.nodeTimeout+time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	for i, n := range []*node{n1, n2} {
		n.broker.names.mu.Lock()
		renamed := len(n.broker.names.old)
		n.broker.names.mu.Unlock()
		if renamed != 0 || r.Do("ZSCORE", "busy:nodes", n.broker.Node()) == nil {
			t.Errorf("node %d was taken for dead", i+1)
		}
	}
	if got := len(c.events("tick")); got == 0 {
		t.Error("node 2 got no tick")
	}
}

// TestJoinSharedRedis: a node with 2,000 apps joins a Redis that holds
// 200,000 keys of other software: it never scans the keyspace, and what it
// asks Redis is in proportion to its apps.
func TestJoinSharedRedis(t *testing.T) {
	t.Parallel()
	r := redistest.Start(t)
	r.Do("DEBUG", "POPULATE", "200000", "other")
	const apps = 2000
	var more []pusher.AppConfig
	for i := 1; i < apps; i++ {
		id := "app-" + strconv.Itoa(i)
		more = append(more, pusher.DefaultApp(id, id+"-key", id+"-secret"))
	}
	r.Do("CONFIG", "RESETSTAT")
	start := time.Now()
	n := newNode(t, nodeConfig{redis: r, prefix: "shared", more: more})
	t.Logf("a node with %d apps joined a Redis of %v keys in %s", apps, r.Do("DBSIZE"), time.Since(start).Round(time.Millisecond))
	stats := commandStats(t, r)
	if stats["scan"] != 0 || stats["keys"] != 0 {
		t.Fatalf("the node scanned the keyspace: %v", stats)
	}
	total := 0
	for _, calls := range stats {
		total += calls
	}
	if total > 20*apps {
		t.Fatalf("%d commands to join with %d apps: %v", total, apps, stats)
	}
	if !n.broker.Ready() || r.Do("SISMEMBER", "shared:{app-1999}:nodes", n.broker.Node()) != int64(1) {
		t.Fatal("the node did not join every app")
	}
}

// occupancyObserver is an observer for the occupancy webhooks.
type occupancyObserver struct {
	mu      sync.Mutex
	moments map[string]int
}

func (o *occupancyObserver) Observe(m *pusher.Moment) {
	o.mu.Lock()
	o.moments[m.Name]++
	o.mu.Unlock()
}

func (o *occupancyObserver) count(name string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.moments[name]
}

// TestOccupancyBounded: with occupancy webhooks on, anonymous connections
// subscribing to random public channels leave nothing in Redis once they
// are gone: every channel's entry goes when the channel empties.
func TestOccupancyBounded(t *testing.T) {
	r := redistest.Start(t)
	obs := &occupancyObserver{moments: map[string]int{}}
	n := newNode(t, nodeConfig{redis: r, prefix: "occ", observer: obs, app: func(a *pusher.AppConfig) {
		a.Webhooks = []pusher.Webhook{{URL: "http://127.0.0.1:9/", EventTypes: []string{pusher.ChannelOccupied, pusher.ChannelVacated}}}
	}})
	baseline := len(keys(t, r, "occ:*"))
	rng := rand.New(rand.NewPCG(1, 2))
	var cs []*client
	for i := range 20 {
		cs = append(cs, n.dial(i%2))
	}
	const ops = 400
	for i := range ops {
		c := cs[rng.IntN(len(cs))]
		ch := "ch-" + strconv.Itoa(rng.IntN(1000))
		c.subscribe(ch)
		if i%3 == 0 {
			c.send(`{"event":"pusher:unsubscribe","data":{"channel":"` + ch + `"}}`)
		}
	}
	kk := "occ:{app-id}:k:" + n.broker.Node()
	waitFor(t, "the occupancy sets filled", func() bool { return r.Do("SCARD", kk).(int64) > 0 })
	for _, c := range cs {
		c.close()
	}
	waitFor(t, "every occupancy entry gone", func() bool { return r.Do("SCARD", kk).(int64) == 0 })
	waitFor(t, "vacated for every occupied", func() bool {
		return obs.count(pusher.ChannelVacated) == obs.count(pusher.ChannelOccupied)
	})
	if left := keys(t, r, "occ:*"); len(left) > baseline {
		t.Fatalf("%d keys before, %d after the clients left: %v", baseline, len(left), left)
	}
	if obs.count(pusher.ChannelOccupied) < 100 {
		t.Fatalf("only %d channels occupied", obs.count(pusher.ChannelOccupied))
	}
}

// keys lists the keys matching pattern (the test may scan; revurb never
// does).
func keys(t *testing.T, r *redistest.Server, pattern string) []string {
	t.Helper()
	var out []string
	for _, k := range r.Do("KEYS", pattern).([]any) {
		out = append(out, k.(string))
	}
	slices.Sort(out)
	return out
}

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
	a := n.broker.byID["app-id"]
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

// TestPresenceChurn: users join and leave a presence channel over many
// connections on two nodes, with watchers on both subscribed before and
// during the churn: every watcher hears member_added only of a user it
// does not list and member_removed only of one it does, and in the end
// lists exactly the members the cluster has — on one node and across
// nodes.
func TestPresenceChurn(t *testing.T) {
	r := redistest.Start(t)
	for _, tc := range []struct {
		name  string
		nodes int
		cfg   nodeConfig
	}{
		{"one node", 1, nodeConfig{}},
		{"one node of a cluster", 1, nodeConfig{redis: r, prefix: "churn1"}},
		{"two nodes", 2, nodeConfig{redis: r, prefix: "churn2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []*node
			for range tc.nodes {
				nodes = append(nodes, newNode(t, tc.cfg))
			}
			const channel = "presence-churn"
			type watcher struct {
				c    *client
				name string
				list []string
			}
			var watchers []*watcher
			watch := func(n *node, loop int, name string) {
				c := n.dial(loop)
				watchers = append(watchers, &watcher{c: c, name: name, list: c.join(channel, name)})
			}
			for i, n := range nodes {
				watch(n, 0, "w"+strconv.Itoa(i)+"a")
			}
			rng := rand.New(rand.NewPCG(3, 4))
			type conn struct {
				n    *node
				c    *client
				user string
			}
			var open []conn
			const ops = 600
			for i := range ops {
				if i == ops/3 || i == 2*ops/3 {
					for j, n := range nodes {
						watch(n, 1, "w"+strconv.Itoa(j)+"-"+strconv.Itoa(i))
					}
				}
				if len(open) > 0 && (len(open) > 12 || rng.IntN(2) == 0) {
					k := rng.IntN(len(open))
					open[k].c.close()
					open = append(open[:k], open[k+1:]...)
					continue
				}
				n := nodes[rng.IntN(len(nodes))]
				c := n.dial(rng.IntN(2))
				user := "u" + strconv.Itoa(rng.IntN(4))
				c.join(channel, user)
				open = append(open, conn{n, c, user})
			}
			want := map[string]bool{}
			for _, w := range watchers {
				want[w.name] = true
			}
			for _, o := range open {
				want[o.user] = true
			}
			wantList := make([]string, 0, len(want))
			for u := range want {
				wantList = append(wantList, u)
			}
			slices.Sort(wantList)
			for i, n := range nodes {
				waitFor(t, "node "+strconv.Itoa(i)+"'s roster", func() bool { return slices.Equal(n.s.Users(n.app, channel), wantList) })
			}
			for _, w := range watchers {
				checkMembers(t, channel, w.name, w.c, w.list, wantList)
			}
		})
	}
}

// checkMembers checks what c, in presence channel ch as name with list in
// its subscription_succeeded, heard: member_added only of users it did not
// list, member_removed only of users it did, and at the end it lists want.
func checkMembers(t *testing.T, ch, name string, c *client, list, want []string) {
	t.Helper()
	// Everything before a final event has been written to c.
	if err := c.n.publish(ch, "end", name, ""); err != nil {
		t.Fatal(err)
	}
	c.wait("end", func(f frame) bool { return f.dataString() == name })
	listed := map[string]bool{}
	for _, u := range list {
		listed[u] = true
	}
	var seq []string
	for _, f := range c.conn.all() {
		var d struct {
			ID string `json:"user_id"`
		}
		_ = json.Unmarshal([]byte(f.dataString()), &d)
		switch f.Event {
		case "pusher_internal:member_added":
			seq = append(seq, "+"+d.ID)
			if listed[d.ID] {
				t.Fatalf("%s heard %s added, already listed; it listed %v, then heard %v", name, d.ID, list, seq)
			}
			listed[d.ID] = true
		case "pusher_internal:member_removed":
			seq = append(seq, "-"+d.ID)
			if !listed[d.ID] {
				t.Fatalf("%s heard %s removed, not listed; it listed %v, then heard %v", name, d.ID, list, seq)
			}
			delete(listed, d.ID)
		}
	}
	var got []string
	for u := range listed {
		got = append(got, u)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%s lists %v, the cluster %v", name, got, want)
	}
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
	if _, err := b.reapApps(context.Background(), b.redis(), old, b.apps); err != nil {
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

// TestScriptsValidate: a key of the wrong type where a join writes makes
// the script fail with nothing written (Redis does not undo a failed
// script); the resync that follows repairs the key, and the member is
// announced.
func TestScriptsValidate(t *testing.T) {
	r := redistest.Start(t)
	// Each script alone: a count key of the wrong type, and nothing of
	// the others is written.
	a := &app{id: "raw", k: "raw:{raw}"}
	mkeys := a.memberKeys("n1", "presence-x")
	r.Do("SADD", mkeys[0], "n1")
	r.Do("SET", mkeys[3], "not a hash")
	for name, call := range map[string][]string{
		"luaJoin":  append([]string{luaJoin.body, "6"}, append(mkeys, "PUBLISH", "raw:bus", "n1", "presence-x", "u", "{}", "1", "msg")...),
		"luaLeave": append([]string{luaLeave.body, "6"}, append(mkeys, "PUBLISH", "raw:bus", "n1", "presence-x", "u", "1", "msg")...),
		"luaReap":  append([]string{luaReap.body, "6"}, append(mkeys, "PUBLISH", "raw:bus", "presence-x", "1", "u", "msg")...),
	} {
		if _, err := redistest.Do(r.Addr(), append([]string{"EVAL"}, call...)...); err == nil || !strings.Contains(err.Error(), "WRONGTYPE revurb") {
			t.Errorf("%s: %v", name, err)
		}
		if got := keys(t, r, "raw:*"); !slices.Equal(got, []string{mkeys[3], mkeys[0]}) && !slices.Equal(got, []string{mkeys[0], mkeys[3]}) {
			t.Errorf("%s wrote: %v", name, got)
		}
	}
	nodes := cluster(t, r, 2, nodeConfig{prefix: "types"})
	watcher := nodes[1].dial(0)
	watcher.join("presence-room", "watcher")
	waitFor(t, "node 0 to list the watcher", func() bool { return len(nodes[0].s.Users(nodes[0].app, "presence-room")) == 1 })
	r.Do("SET", "types:{app-id}:c:presence-room", "not a hash")
	node := nodes[0].broker.Node()
	nk := "types:{app-id}:n:" + node + ":presence-room"
	// Refused at first, then repaired by the resync the refusal asks for.
	ann := nodes[0].dial(0)
	ann.join("presence-room", "ann")
	watcher.wait("pusher_internal:member_added", func(f frame) bool { return contains(f.dataString(), `"ann"`) })
	if got := r.Do("TYPE", "types:{app-id}:c:presence-room"); got != "hash" {
		t.Fatalf("the counts are a %v", got)
	}
	if got := r.Do("SISMEMBER", nk, "ann"); got != int64(1) {
		t.Fatal("ann not in the node's set")
	}
	// The counts were rebuilt: the watcher's, on node 1, too.
	if got := r.Do("HGET", "types:{app-id}:c:presence-room", "watcher"); got != "1" {
		t.Fatalf("watcher's count %v", got)
	}
	ann.close()
	watcher.wait("pusher_internal:member_removed", func(f frame) bool { return contains(f.dataString(), `"ann"`) })
}

// TestHelloFlood: thousands of hellos on an app's bus (signed: from a node
// with the key) are answered at a bounded rate, a full count of the app at
// most once a second, and the node's bus keeps up.
func TestHelloFlood(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{prefix: "hello"})
	c := nodes[0].dial(0)
	c.subscribe("feed")
	a := nodes[0].broker.byID["app-id"]
	other := nodes[1].broker.Node()
	before := commandStats(t, r)["publish"]
	const hellos = 5000
	cmds := make([][]string, hellos)
	for i := range cmds {
		cmds[i] = []string{"PUBLISH", a.bus, string(a.sig.sign(appendHello(nil, header{origin: other, time: time.Now().UnixMilli(), app: "app-id"})))}
	}
	start := time.Now()
	if err := redistest.DoAll(r.Addr(), cmds...); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if err := nodes[1].publish("feed", "after", "1", ""); err != nil {
		t.Fatal(err)
	}
	c.wait("after", nil)
	time.Sleep(1500 * time.Millisecond) // answers still owed go out
	answers := commandStats(t, r)["publish"] - before - hellos - 1
	// Both nodes answer (node 1 ignores its own name's hellos: none), at
	// most once per second each, plus the counts every 100 ms while
	// something changes (nothing here) and every 30 s.
	limit := 2 * (int(took/time.Second) + 3)
	t.Logf("%d hellos in %s, %d messages published besides", hellos, took.Round(time.Millisecond), answers)
	if answers > limit {
		t.Fatalf("%d messages answered %d hellos in %s, want at most %d", answers, hellos, took, limit)
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

// TestClusterSecret: nodes with the same cluster secret hear each other; a
// node with another one (or none) is refused, counted, and hears nothing.
func TestClusterSecret(t *testing.T) {
	r := redistest.Start(t)
	a := newNode(t, nodeConfig{redis: r, prefix: "secret", secret: "s3cret"})
	b := newNode(t, nodeConfig{redis: r, prefix: "secret", secret: "s3cret"})
	other := newNode(t, nodeConfig{redis: r, prefix: "secret", secret: "another"})
	var cs []*client
	for _, n := range []*node{a, b, other} {
		c := n.dial(0)
		c.subscribe("feed")
		cs = append(cs, c)
	}
	if err := a.publish("feed", "tick", "1", ""); err != nil {
		t.Fatal(err)
	}
	cs[0].wait("tick", nil)
	cs[1].wait("tick", nil)
	waitFor(t, "the other secret's node to refuse it", func() bool { return other.broker.ClusterStats().Refused["signature"] > 0 })
	if err := other.publish("feed", "odd", "1", ""); err != nil {
		t.Fatal(err)
	}
	cs[2].wait("odd", nil) // delivered on its own node
	if err := a.publish("feed", "after", "1", ""); err != nil {
		t.Fatal(err)
	}
	cs[1].wait("after", nil)
	if len(cs[2].events("tick")) != 0 || len(cs[1].events("odd")) != 0 {
		t.Fatal("nodes with different secrets heard each other")
	}
}
