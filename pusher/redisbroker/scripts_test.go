package redisbroker

import (
	"slices"
	"strings"
	"testing"

	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

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
