package redisbroker

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

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
