package redisbroker

import (
	"context"
	"net"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// runHeartbeat connects, then beats every second: it writes this node's
// time into P:nodes and reads the whole set back (the node view the bus
// checks messages against, and the dead the maintenance reaps). It does
// nothing else, and nothing else waits on it, so that a node never stops
// beating while it runs and Redis answers. A beat that finds this node's
// entry gone means the others took it for dead (or Redis lost everything):
// the node rejoins under a new name.
func (b *Broker) runHeartbeat() {
	defer b.wg.Done()
	backoff := 50 * time.Millisecond
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for b.ctx.Err() == nil {
		c := b.redis()
		if c == nil {
			if c = b.connect(); c == nil {
				if !b.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
		err := b.beat(ctx, c)
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			b.down(err)
			if !b.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		b.upAgain()
		select {
		case <-t.C:
		case <-b.ctx.Done():
			return
		}
	}
}

// connect makes the two clients, commands' and bus's, and starts reading
// the bus; nil if Redis cannot be reached yet.
func (b *Broker) connect() rueidis.Client {
	c, err := rueidis.NewClient(b.opt)
	if err != nil {
		b.down(err)
		return nil
	}
	bus, err := rueidis.NewClient(b.busOpt)
	if err != nil {
		c.Close()
		b.down(err)
		return nil
	}
	b.sharded.Store(c.Mode() == rueidis.ClientModeCluster)
	b.bus.Store(&bus)
	b.client.Store(&c)
	for _, g := range b.groups(bus) {
		b.wg.Add(1)
		go b.runGroup(g)
	}
	return c
}

// beat writes this node's beat, if it has registered, and reads the set.
func (b *Broker) beat(ctx context.Context, c rueidis.Client) error {
	key := b.p + ":nodes"
	now := time.Now().UnixMilli()
	if b.registered.Load() && !b.closed.Load() {
		node := b.names.get()
		changed, err := c.Do(ctx, c.B().Zadd().Key(key).Xx().Ch().ScoreMember().ScoreMember(float64(now), node).Build()).AsInt64()
		if err != nil {
			return err
		}
		if changed == 0 && node == b.names.get() && b.registered.Load() {
			// Gone from the set: reaped while alive (cut off longer than
			// the node timeout), or Redis restarted empty.
			b.reaped()
		}
	}
	all, err := c.Do(ctx, c.B().Zrange().Key(key).Min("0").Max("-1").Withscores().Build()).AsZScores()
	if err != nil {
		return err
	}
	nodes := make(map[string]int64, len(all))
	for _, z := range all {
		nodes[z.Member] = int64(z.Score)
	}
	if gone := b.view.update(nodes, now, time.Now().UnixMilli()); len(gone) > 0 {
		b.cmu.Lock()
		for _, n := range gone {
			if !b.names.own(n) {
				b.forget(n)
			}
		}
		b.cmu.Unlock()
	}
	return nil
}

func (b *Broker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

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
