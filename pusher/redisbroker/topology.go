package redisbroker

import (
	"context"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/redis/rueidis"
)

// topology is what the heartbeat last saw of the primaries, for metrics:
// who they are, and who serves each app on a Redis Cluster.
type topology struct {
	mu           sync.Mutex
	masters      []string
	owners       map[string]string // app → its primary, on a Redis Cluster
	failovers    uint64
	redirections uint64
}

// poll reads the primaries: a Sentinel's current master or the one
// server, as the client uses it; a Redis Cluster's from CLUSTER SLOTS.
func (t *topology) poll(ctx context.Context, c rueidis.Client, b *Broker) {
	var masters []string
	var owners map[string]string
	if c.Mode() == rueidis.ClientModeCluster {
		slots, err := c.Do(ctx, c.B().ClusterSlots().Build()).ToArray()
		if err != nil {
			return
		}
		type rng struct {
			lo, hi int64
			addr   string
		}
		var rs []rng
		for _, s := range slots {
			f, err := s.ToArray()
			if err != nil || len(f) < 3 {
				continue
			}
			lo, _ := f[0].AsInt64()
			hi, _ := f[1].AsInt64()
			node, err := f[2].ToArray()
			if err != nil || len(node) < 2 {
				continue
			}
			host, _ := node[0].ToString()
			port, _ := node[1].AsInt64()
			addr := net.JoinHostPort(host, strconv.FormatInt(port, 10))
			rs = append(rs, rng{lo, hi, addr})
			if !slices.Contains(masters, addr) {
				masters = append(masters, addr)
			}
		}
		owners = map[string]string{}
		for _, a := range b.apps {
			cmd := c.B().Spublish().Channel(a.bus).Message("").Build()
			slot := int64(cmd.Slot())
			for _, r := range rs {
				if r.lo <= slot && slot <= r.hi {
					owners[a.id] = r.addr
				}
			}
		}
	} else {
		for addr := range c.Nodes() {
			masters = append(masters, addr)
		}
	}
	sort.Strings(masters)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, m := range t.masters {
		if !slices.Contains(masters, m) && len(masters) > 0 {
			t.failovers++
		}
	}
	for id, addr := range owners {
		if was, ok := t.owners[id]; ok && was != addr {
			t.redirections++
		}
	}
	if len(masters) > 0 {
		t.masters = masters
	}
	if owners != nil {
		t.owners = owners
	}
}
