package redisbroker

import (
	"strconv"
	"testing"

	"github.com/revurb/revurb/pusher/redisbroker/redistest"
)

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
