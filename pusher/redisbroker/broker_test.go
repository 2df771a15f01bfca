package redisbroker

import (
	"slices"
	"testing"

	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

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
