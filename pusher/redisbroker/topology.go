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

// The topology is found, not configured: the URL names one Redis, some
// Sentinels (master_set) or some nodes of a Redis Cluster, and connect
// asks the client which it reached — a Cluster makes the bus sharded.
// Then the maintenance reads the primaries every second, for the metrics.

// topology is what the maintenance last saw of the primaries, for
// metrics: who they are, and who serves each app on a Redis Cluster.
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
		var ok bool
		if masters, owners, ok = clusterPrimaries(ctx, c, b.appList()); !ok {
			return
		}
	} else {
		for addr := range c.Nodes() {
			masters = append(masters, addr)
		}
	}
	sort.Strings(masters)
	t.record(masters, owners)
}

// clusterPrimaries reads a Redis Cluster's primaries from CLUSTER SLOTS,
// and the one serving each app's bus; false if the cluster did not answer.
func clusterPrimaries(ctx context.Context, c rueidis.Client, apps []*app) (masters []string, owners map[string]string, ok bool) {
	slots, err := c.Do(ctx, c.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		return nil, nil, false
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
	for _, a := range apps {
		cmd := c.B().Spublish().Channel(a.bus).Message("").Build()
		slot := int64(cmd.Slot())
		for _, r := range rs {
			if r.lo <= slot && slot <= r.hi {
				owners[a.id] = r.addr
			}
		}
	}
	return masters, owners, true
}

// record takes a new read of the primaries (sorted) and of the apps'
// (nil: not a Redis Cluster), counting a failover for each primary gone
// and a redirection for each app served by another.
func (t *topology) record(masters []string, owners map[string]string) {
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
