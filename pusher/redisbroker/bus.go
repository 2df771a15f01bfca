package redisbroker

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// The bus: every app's pub/sub channel, read through a client of its own
// (the commands never share its connections, so reading the bus never
// waits for a command's answer). On one Redis or Sentinel one SUBSCRIBE
// takes every app's channel; on a Redis Cluster the apps' channels are
// sharded (SSUBSCRIBE), one subscription per slot, each on the primary of
// its slot. A subscription that ends — Redis gone, a failover, the slot
// migrated — is made again, and its apps resynced: what was published
// meanwhile is lost.

// group is the apps one subscription reads.
type group struct {
	apps  []*app
	chans []string
}

// groups makes the subscriptions: one for every app, or, sharded, one per
// slot.
func (b *Broker) groups(bus rueidis.Client) []*group {
	if !b.sharded.Load() {
		g := &group{}
		for _, a := range b.apps {
			g.apps, g.chans = append(g.apps, a), append(g.chans, a.bus)
		}
		return []*group{g}
	}
	bySlot := map[uint16]*group{}
	var out []*group
	for _, a := range b.apps {
		cmd := bus.B().Ssubscribe().Channel(a.bus).Build()
		slot := cmd.Slot()
		g := bySlot[slot]
		if g == nil {
			g = &group{}
			bySlot[slot] = g
			out = append(out, g)
		}
		g.apps, g.chans = append(g.apps, a), append(g.chans, a.bus)
	}
	return out
}

// busClient returns the bus's client, nil before the first connection.
func (b *Broker) busClient() rueidis.Client {
	if c := b.bus.Load(); c != nil {
		return *c
	}
	return nil
}

// runGroup keeps g subscribed, asking for a resync of its apps each time
// it is: at start, that is their first load.
func (b *Broker) runGroup(g *group) {
	defer b.wg.Done()
	backoff := 50 * time.Millisecond
	for b.ctx.Err() == nil {
		bus := b.busClient()
		if bus == nil {
			if !b.sleep(50 * time.Millisecond) {
				return
			}
			continue
		}
		var confirmed atomic.Int64
		ctx := rueidis.WithOnSubscriptionHook(b.ctx, func(s rueidis.PubSubSubscription) {
			if (s.Kind == "subscribe" || s.Kind == "ssubscribe") && confirmed.Add(1) == int64(len(g.chans)) {
				b.askResync(g.apps...)
			}
		})
		cmd := bus.B().Subscribe().Channel(g.chans...).Build()
		if b.sharded.Load() {
			cmd = bus.B().Ssubscribe().Channel(g.chans...).Build()
		}
		_ = bus.Receive(ctx, cmd, b.handle)
		if b.ctx.Err() != nil {
			return
		}
		if confirmed.Load() > 0 {
			backoff = 50 * time.Millisecond
		}
		if !b.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// Reasons a bus message is refused, for metrics.
const (
	refusedSignature = iota
	refusedUnknownNode
	refusedSize
	refusedLimit
	refusedMalformed
	numReasons
)

var reasonNames = [numReasons]string{"signature", "unknown_node", "size", "limit", "malformed"}

// handle takes one message off the bus: it checks it — its size, its
// MAC, its fields against the app's limits, its node against those of the
// heartbeat set — and hands it to the cluster. It never waits on Redis.
func (b *Broker) handle(msg rueidis.PubSubMessage) {
	a := b.byBus[msg.Channel]
	if a == nil {
		return
	}
	if len(msg.Message) > a.lim.message {
		b.refused[refusedSize].Add(1)
		return
	}
	body, ok := a.sig.open([]byte(msg.Message))
	if !ok {
		b.refused[refusedSignature].Add(1)
		return
	}
	var m message
	if err := decode(body, &a.lim, &m); err != nil || m.app != a.id {
		switch err {
		case errSize:
			b.refused[refusedSize].Add(1)
		case errLimit:
			b.refused[refusedLimit].Add(1)
		default:
			b.refused[refusedMalformed].Add(1)
		}
		return
	}
	own := b.names.own(m.origin)
	if !own && !b.view.allow(m.origin, m.time, time.Now().UnixMilli()) {
		b.refused[refusedUnknownNode].Add(1)
		return
	}
	b.cmu.Lock()
	defer b.cmu.Unlock()
	switch m.kind {
	case kindBroadcast:
		// What this node published itself it has delivered already —
		// all but the HTTP API's broadcasts, which every node delivers
		// from the bus (unless it delivered one itself, Redis being slow).
		if own && (m.broadcast.ClientEvent || b.skippedOwn(m.seq)) {
			return
		}
		b.cluster.Broadcast(&m.broadcast)
	case kindCounts:
		if !own {
			b.counts(&m)
		}
	case kindTerminate:
		if !own {
			b.cluster.Terminate(m.app, m.user)
		}
	case kindHello:
		if !own {
			b.maint.owe(a.id) // answered off the bus, and at a bounded rate
		}
	case kindMember:
		b.logMember(a, &m.member)
		b.cluster.Member(&m.member)
	case kindGoodbye:
		switch {
		case m.node == b.names.get():
			b.reaped() // taken for dead while alive: rejoin
		case b.names.own(m.node):
		case b.view.goodbye(m.node, time.Now().UnixMilli()):
			b.forget(m.node)
		}
	case kindMarker:
		if own {
			b.marker(m.token)
		}
	case kindReset:
		b.askResync(a)
	}
}

// forget drops what is known of a node gone. The caller holds cmu.
func (b *Broker) forget(node string) {
	for k := range b.partials {
		if len(k) > len(node) && k[:len(node)] == node && k[len(node)] == 0 {
			delete(b.partials, k)
		}
	}
	b.cluster.Forget(node)
}

// partial is a node's full count of an app, arriving in parts.
type partial struct {
	gen      uint64
	channels []pusher.ChannelCount
}

// counts hands a node's counts to the cluster, a full count in parts once
// whole. The caller holds cmu.
func (b *Broker) counts(m *message) {
	if m.gen == 0 {
		b.cluster.Counts(&m.counts)
		return
	}
	key := m.origin + "\x00" + m.app
	p := b.partials[key]
	if p == nil || p.gen != m.gen {
		p = &partial{gen: m.gen}
		b.partials[key] = p
	}
	if len(p.channels)+len(m.counts.Channels) > maxFullCounts {
		delete(b.partials, key)
		b.refused[refusedLimit].Add(1)
		return
	}
	p.channels = append(p.channels, m.counts.Channels...)
	if m.last {
		delete(b.partials, key)
		c := m.counts
		c.Channels = p.channels
		b.cluster.Counts(&c)
	}
}

// nodeView is what this node knows of the others: the heartbeat set, as
// the heartbeat last read it, the nodes seen on the bus since that read
// (a node writes its beat before it publishes anything, so a node that
// joined after the read is taken on trust until the reads show it), and
// the nodes gone (left the set, or said goodbye). A message from a node
// gone, or from one unknown and older than the last read, is refused, and
// a node taken on trust that no read shows for pendingFor is forgotten:
// nothing is kept of a node that is not in the heartbeat set.
type nodeView struct {
	mu      sync.Mutex
	known   map[string]int64 // node → last beat, unix ms
	readAt  int64            // unix ms when the last read started; 0 before the first
	pending map[string]int64 // node → when first seen, not in the last read
	gone    map[string]int64 // node → when found gone
}

// Bounds of the node view.
const (
	maxPending = 1024
	maxGone    = 4096
	goneFor    = 10 * time.Minute
	clockSkew  = 5 * time.Second // between nodes' clocks, taken on trust
	pendingFor = 3 * time.Second // a node taken on trust must be in a read started this long after
)

func (v *nodeView) init() {
	v.known, v.pending, v.gone = map[string]int64{}, map[string]int64{}, map[string]int64{}
}

// allow reports whether a message node made at time at (its clock) may
// be taken.
func (v *nodeView) allow(node string, at, now int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.known[node]; ok {
		return true
	}
	if _, ok := v.gone[node]; ok {
		return false
	}
	if _, ok := v.pending[node]; ok {
		return true
	}
	if at < v.readAt-clockSkew.Milliseconds() || len(v.pending) >= maxPending {
		return false
	}
	v.pending[node] = now
	return true
}

// update takes a new read of the heartbeat set, started at readAt, and
// returns the nodes to forget: those known before that it lacks (gone),
// and those taken on trust that it still lacks long after.
func (v *nodeView) update(nodes map[string]int64, readAt, now int64) (forget []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for n := range v.known {
		if _, ok := nodes[n]; !ok {
			forget = append(forget, n)
			v.markGone(n, now)
		}
	}
	for n, first := range v.pending {
		if _, ok := nodes[n]; ok {
			delete(v.pending, n)
		} else if readAt-first >= pendingFor.Milliseconds() {
			delete(v.pending, n)
			forget = append(forget, n)
		}
	}
	v.known, v.readAt = nodes, readAt
	return forget
}

// goodbye records node gone, reporting whether it was not already.
func (v *nodeView) goodbye(node string, now int64) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.gone[node]; ok {
		return false
	}
	delete(v.known, node)
	delete(v.pending, node)
	v.markGone(node, now)
	return true
}

// markGone notes node gone, forgetting the oldest gone beyond the bounds.
// The caller holds mu.
func (v *nodeView) markGone(node string, now int64) {
	v.gone[node] = now
	if len(v.gone) <= maxGone/2 {
		return
	}
	for n, t := range v.gone {
		if now-t > goneFor.Milliseconds() || len(v.gone) > maxGone {
			delete(v.gone, n)
		}
	}
}

// dead returns the nodes whose last beat is older than cutoff.
func (v *nodeView) dead(cutoff int64) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for n, t := range v.known {
		if t < cutoff {
			out = append(out, n)
		}
	}
	return out
}

// snapshot is one channel's members as Redis held them at the point of
// the bus where its marker is: what a resync reloads. Its result comes
// back to the worker and its marker to the bus, in either order; it is
// applied when both are in, with the member events the bus carried after
// the marker (logged meanwhile) applied over it.
type snapshot struct {
	app     *app
	channel string
	first   bool // the app's first load: the cache channels' events come along
	made    time.Time
	seen    bool // the marker came
	arrived bool // the result came
	members []pusher.Member
	cached  []string
	log     []pusher.Membership
	broken  bool // the log overflowed
}

// maxSnapshotLog bounds the member events a snapshot logs while its
// result is on its way (a few milliseconds); past it, the app is resynced
// again.
const maxSnapshotLog = 4096

// logMember logs e for the snapshots of its channel waiting for their
// result. The caller holds cmu.
func (b *Broker) logMember(a *app, e *pusher.Membership) {
	for _, s := range b.waiting {
		if s.app != a || s.channel != e.Channel || s.broken {
			continue
		}
		if len(s.log) >= maxSnapshotLog {
			s.broken, s.log = true, nil
			continue
		}
		s.log = append(s.log, pusher.Membership{User: e.User, Info: e.Info, Added: e.Added})
	}
}

// marker notes that snapshot token's marker came. The caller holds cmu.
func (b *Broker) marker(token uint64) {
	s := b.snaps[token]
	if s == nil {
		return
	}
	s.seen = true
	if s.arrived {
		b.apply(token, s)
	} else {
		b.waiting = append(b.waiting, s)
	}
}

// arrived notes that snapshot token's result came.
func (b *Broker) arrived(token uint64, members []pusher.Member, cached []string) {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	s := b.snaps[token]
	if s == nil {
		return
	}
	s.members, s.cached, s.arrived = members, cached, true
	if s.seen {
		b.apply(token, s)
	}
}

// apply reloads the snapshot's channel, and at the app's first load its
// cache. The caller holds cmu.
func (b *Broker) apply(token uint64, s *snapshot) {
	delete(b.snaps, token)
	for i, w := range b.waiting {
		if w == s {
			b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
			break
		}
	}
	if s.broken {
		b.askResync(s.app)
		return
	}
	members := s.members
	if len(s.log) > 0 {
		at := map[string]int{}
		for i, m := range members {
			at[m.User] = i
		}
		for _, e := range s.log {
			i, ok := at[e.User]
			switch {
			case e.Added && ok:
				members[i].Info = e.Info
			case e.Added:
				at[e.User] = len(members)
				members = append(members, pusher.Member{User: e.User, Info: e.Info})
			case ok:
				last := len(members) - 1
				members[i] = members[last]
				at[members[i].User] = i
				members = members[:last]
				delete(at, e.User)
			}
		}
	}
	b.cluster.Reload(s.app.id, s.channel, members)
	if s.channel != "" {
		return
	}
	// The users are the last of an app's snapshots: every other one of
	// the app's is in.
	for _, raw := range s.cached {
		if !s.first || b.loaded[s.app.id] {
			break // delivered by an earlier first load
		}
		body, ok := s.app.sig.open([]byte(raw))
		var m message
		if !ok || decode(body, &s.app.lim, &m) != nil || m.kind != kindBroadcast {
			continue
		}
		b.cluster.Broadcast(&m.broadcast)
	}
	b.loaded[s.app.id] = true
	if len(b.loaded) == len(b.apps) && !b.ready.Swap(true) {
		b.cfg.Log.Info("redisbroker: joined the cluster: every app's members loaded", "node", b.names.get(), "apps", len(b.apps), "took", time.Since(b.started).Round(time.Millisecond).String())
	}
}

// expireSnapshots drops the snapshots whose marker or result never came
// (a subscription lost meanwhile), resyncing their apps again.
func (b *Broker) expireSnapshots(older time.Time) {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	for token, s := range b.snaps {
		if s.made.Before(older) {
			s.broken = true
			b.apply(token, s)
		}
	}
}
