package redisbroker

// Three nodes on a Sentinel set and on a Redis Cluster, with events
// flowing, while Redis fails over and an app's slot moves.

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// TestSentinelFailover: three nodes meet, as an ACL user that may touch
// only their prefix, at a primary watched by Sentinels; the primary is killed while every node publishes and users
// come and go. The nodes serve their own clients meanwhile, follow the
// promoted replica by themselves, and then deliver across again; nothing
// is delivered twice or out of order, and presence is exact.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t)
	s.AddUser("revurb", "revurb-pass", "sentinel")
	failover(t, nodeConfig{url: s.URLAs("revurb", "revurb-pass"), prefix: "sentinel", nodeTimeout: 5 * time.Second}, func() {
		killed, promoted := s.KillMaster()
		t.Logf("killed primary %s, the Sentinels promoted %s", killed.Addr(), promoted.Addr())
	}, func(cs pusher.ClusterStats) bool { return cs.Failovers >= 1 })
}

// TestClusterFailoverAndReshard: three nodes meet, as an ACL user that may
// touch only their prefix, at a Redis Cluster of three primaries with a
// replica each; while every node publishes, the
// app's slot (its hash tag, {app-id}) moves to another primary with its
// keys, and then that primary is killed and its replica takes over. The
// nodes follow both by themselves, deliver nothing twice or out of order,
// and keep presence exact. A second app, on another slot, makes the bus
// two subscriptions.
func TestClusterFailoverAndReshard(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	c.AddUser("revurb", "revurb-pass", "rc")
	slot := c.Slot("{app-id}")
	failover(t, nodeConfig{url: c.URLAs("revurb", "revurb-pass"), prefix: "rc", nodeTimeout: 5 * time.Second,
		more: []pusher.AppConfig{pusher.DefaultApp("other-app", "other-key", "other-secret")}}, func() {
		from := c.Owner(slot)
		to := c.MoveSlot(slot)
		t.Logf("moved slot %d from %s to %s", slot, from.Addr(), to.Addr())
		time.Sleep(300 * time.Millisecond) // events flow on the new primary
		killed, promoted := c.KillOwner(slot)
		t.Logf("killed %s, its replica %s took over", killed.Addr(), promoted.Addr())
	}, func(cs pusher.ClusterStats) bool { return cs.Failovers >= 1 && cs.Redirections >= 1 })
}

// failover runs the scenario: three nodes of cfg, each with a subscriber,
// a presence member and a watcher; every node publishing; disrupt in the
// middle; then the checks, and stats on some node's ClusterStats.
func failover(t *testing.T, cfg nodeConfig, disrupt func(), stats func(pusher.ClusterStats) bool) {
	const channel = "presence-room"
	cfg.app = func(a *pusher.AppConfig) { a.MaxPresenceMembers = 1000 }
	var nodes []*node
	for range 3 {
		nodes = append(nodes, newNode(t, cfg))
	}
	type watcher struct {
		c    *client
		name string
		list []string
	}
	var subs []*client
	var watchers []*watcher
	members := map[string]*client{}
	for i, n := range nodes {
		sub := n.dial(0)
		sub.subscribe("feed")
		subs = append(subs, sub)
		m := n.dial(1)
		m.join(channel, "user-"+strconv.Itoa(i))
		members["user-"+strconv.Itoa(i)] = m
	}
	for i, n := range nodes {
		waitFor(t, "node "+strconv.Itoa(i)+" to list every member", func() bool { return len(n.s.Users(n.app, channel)) == 3 })
	}
	for i, n := range nodes {
		w := n.dial(i % 2)
		name := "w-" + strconv.Itoa(i)
		watchers = append(watchers, &watcher{w, name, w.join(channel, name)})
	}
	// Every node publishes, numbered, as fast as a trigger is answered
	// but no more than every 10 ms.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ; k++ {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				_ = n.publish("feed", "tick", strconv.Itoa(i)+":"+strconv.Itoa(k), "")
			}
		}()
	}
	stopped := false
	stopPublishing := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopPublishing()
	for i, sub := range subs {
		waitFor(t, "ticks from every node on node "+strconv.Itoa(i), func() bool { return len(origins(sub.events("tick"))) == 3 })
	}

	disrupt()
	// Users come and go meanwhile: one leaves, one arrives.
	members["user-0"].close()
	delete(members, "user-0")
	late := nodes[1].dial(0)
	late.join(channel, "late-1")
	members["late-1"] = late

	// Each node delivers across again once it has followed the new
	// primary: a probe from every node reaches every node.
	waitFor(t, "delivery across nodes again", func() bool {
		for i, n := range nodes {
			_ = n.publish("feed", "probe", strconv.Itoa(i), "")
		}
		time.Sleep(50 * time.Millisecond)
		for _, sub := range subs {
			if len(origins(sub.events("probe"))) < 3 {
				return false
			}
		}
		return true
	})
	stopPublishing()
	const marks = 5
	for i, n := range nodes {
		for k := range marks {
			if err := n.publish("feed", "mark", strconv.Itoa(i)+":"+strconv.Itoa(k), ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, sub := range subs {
		waitFor(t, "every mark on node "+strconv.Itoa(i), func() bool { return len(sub.events("mark")) == 3*marks })
		for _, event := range []string{"tick", "mark"} {
			last := map[string]int{}
			for _, f := range sub.events(event) {
				from, k, _ := strings.Cut(f.dataString(), ":")
				n, _ := strconv.Atoi(k)
				if prev, ok := last[from]; ok && n <= prev {
					t.Fatalf("node %d: %s %s after %s:%d: delivered twice or out of order", i, event, f.dataString(), from, prev)
				}
				last[from] = n
			}
		}
	}
	want := []string{}
	for u := range members {
		want = append(want, u)
	}
	for _, w := range watchers {
		want = append(want, w.name)
	}
	slices.Sort(want)
	for i, n := range nodes {
		waitFor(t, "node "+strconv.Itoa(i)+"'s roster", func() bool { return slices.Equal(n.s.Users(n.app, channel), want) })
	}
	for _, w := range watchers {
		checkMembers(t, channel, w.name, w.c, w.list, want)
	}
	waitFor(t, "the failover in the metrics", func() bool {
		for _, n := range nodes {
			if stats(n.broker.ClusterStats()) {
				return true
			}
		}
		return false
	})
	cs := nodes[0].broker.ClusterStats()
	t.Logf("node 0: masters %v, failovers %d, redirections %d, resyncs %d (last %.3fs), refused %v",
		cs.Masters, cs.Failovers, cs.Redirections, cs.Resyncs, cs.ResyncSeconds, cs.Refused)
	for reason, n := range cs.Refused {
		if n != 0 && reason != "unknown_node" {
			t.Errorf("%d bus messages refused for %s", n, reason)
		}
	}
}

// origins is the nodes that frames' data ("node:n") came from.
func origins(frames []frame) map[string]bool {
	out := map[string]bool{}
	for _, f := range frames {
		from, _, _ := strings.Cut(f.dataString(), ":")
		out[from] = true
	}
	return out
}
