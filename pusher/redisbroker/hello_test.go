package redisbroker

import (
	"testing"
	"time"

	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// TestHelloFlood: thousands of hellos on an app's bus (signed: from a node
// with the key) are answered at a bounded rate, a full count of the app at
// most once a second, and the node's bus keeps up.
func TestHelloFlood(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{prefix: "hello"})
	c := nodes[0].dial(0)
	c.subscribe("feed")
	a := nodes[0].broker.appByID("app-id")
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
