package redisbroker

import (
	"errors"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// TestResyncLockOrder: the maintenance, choosing the resyncs due, never
// holds maint.mu while it waits for cmu, which the bus holds when it
// notes a hello or asks for a resync: the two never wait for each other.
func TestResyncLockOrder(t *testing.T) {
	b, err := New(Config{URL: "redis://127.0.0.1:1", Apps: []pusher.AppConfig{pusher.DefaultApp("app-id", "app-key", "app-secret")},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a := b.appList()[0]
	b.askResync(a)
	b.cmu.Lock() // as the bus does, handing a message to the cluster
	ran := make(chan struct{})
	go func() { b.runResync(); close(ran) }()
	time.Sleep(100 * time.Millisecond) // the maintenance is waiting for cmu
	owed := make(chan struct{})
	go func() { b.maint.owe(a.id); close(owed) }()
	select {
	case <-owed:
	case <-time.After(5 * time.Second):
		t.Error("the bus, holding cmu, waited for maint.mu, held by the maintenance waiting for cmu")
	}
	b.cmu.Unlock()
	b.cancel() // no worker: the resync queued is given up
	<-ran
	<-owed
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
