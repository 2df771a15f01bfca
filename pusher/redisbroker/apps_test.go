package redisbroker

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/revurb/revurb/pusher"
	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

// TestSetAppsAddsAnApp: an app that every node's reload adds works across
// the cluster at once: its bus carries broadcasts, and its presence
// members are the cluster's. A removed app's bus is no longer read.
func TestSetAppsAddsAnApp(t *testing.T) {
	r := redistest.Start(t)
	nodes := cluster(t, r, 2, nodeConfig{})
	base := pusher.DefaultApp("app-id", "app-key", "app-secret")
	base.ClientEventRate, base.MaxMessageRate = 0, 0
	added := pusher.DefaultApp("new-id", "new-key", "new-secret")
	for _, n := range nodes {
		if _, err := n.s.SetApps([]pusher.AppConfig{base, added}); err != nil {
			t.Fatal(err)
		}
	}
	var cs []*client
	for i, n := range nodes {
		c := &client{n: n, loop: i % 2, conn: &recConn{}}
		ok := false
		n.loops.on(c.loop, func() { ok = n.s.Open(&c.sess, c.conn, c.loop, "new-key", "7", "") })
		if !ok {
			t.Fatal("the added app's key was refused")
		}
		c.wait("pusher:connection_established", nil)
		user := []string{"u0", "u1"}[i]
		cd := `{"user_id":"` + user + `"}`
		msg, _ := json.Marshal(map[string]any{"event": "pusher:subscribe", "data": map[string]string{
			"channel": "presence-room", "auth": "new-key:" + pusher.Sign("new-secret", c.id()+":presence-room:"+cd), "channel_data": cd}})
		c.send(string(msg))
		c.wait("pusher_internal:subscription_succeeded", nil)
		cs = append(cs, c)
	}
	// The first node hears of the second's member.
	cs[0].wait("pusher_internal:member_added", nil)
	app := nodes[0].s.AppByID("new-id")
	if err := nodes[0].s.Publish(context.Background(), app, []pusher.Event{{Channels: []string{"presence-room"}, Name: "hello", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		c.wait("hello", nil)
	}
	users := nodes[1].s.Users(nodes[1].s.AppByID("new-id"), "presence-room")
	slices.Sort(users)
	if !slices.Equal(users, []string{"u0", "u1"}) {
		t.Fatalf("the cluster's members of the added app: %v", users)
	}

	// Removed on both: the broker no longer knows it.
	for _, n := range nodes {
		if _, err := n.s.SetApps([]pusher.AppConfig{base}); err != nil {
			t.Fatal(err)
		}
		if n.broker.appByID("new-id") != nil {
			t.Fatal("the removed app is still served by the broker")
		}
	}
}
