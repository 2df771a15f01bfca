package redisbroker

import (
	"testing"

	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

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
