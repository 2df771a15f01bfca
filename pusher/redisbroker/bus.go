package redisbroker

import (
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

// groups makes the subscriptions of apps: one for them all, or, sharded,
// one per slot.
func (b *Broker) groups(bus rueidis.Client, apps []*app) []*group {
	if !b.sharded.Load() {
		g := &group{}
		for _, a := range apps {
			g.apps, g.chans = append(g.apps, a), append(g.chans, a.bus)
		}
		return []*group{g}
	}
	bySlot := map[uint16]*group{}
	var out []*group
	for _, a := range apps {
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
				b.askResync(b.current(g.apps)...)
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

// handle takes one message off the bus: it checks it and hands it to the
// cluster. It never waits on Redis.
func (b *Broker) handle(msg rueidis.PubSubMessage) {
	a := b.apps.Load().byBus[msg.Channel]
	if a == nil {
		return
	}
	var m message
	own, ok := b.check(a, msg.Message, &m)
	if !ok {
		return
	}
	b.cmu.Lock()
	defer b.cmu.Unlock()
	b.dispatch(a, &m, own)
}

// check reads raw, a message on a's bus, into m, checking its size, its
// MAC, its fields against the app's limits and its node against those of
// the heartbeat set; a message refused is counted by reason. own says the
// message comes from this node, under its name now or one it had.
func (b *Broker) check(a *app, raw string, m *message) (own, ok bool) {
	if len(raw) > a.lim.message {
		b.refused[refusedSize].Add(1)
		return false, false
	}
	body, ok := a.sig.open([]byte(raw))
	if !ok {
		b.refused[refusedSignature].Add(1)
		return false, false
	}
	if err := decode(body, &a.lim, m); err != nil || m.app != a.id {
		switch err {
		case errSize:
			b.refused[refusedSize].Add(1)
		case errLimit:
			b.refused[refusedLimit].Add(1)
		default:
			b.refused[refusedMalformed].Add(1)
		}
		return false, false
	}
	own = b.names.own(m.origin)
	if !own && !b.view.allow(m.origin, m.time, time.Now().UnixMilli()) {
		b.refused[refusedUnknownNode].Add(1)
		return false, false
	}
	return own, true
}

// dispatch acts on m, a message checked on a's bus. The caller holds cmu.
func (b *Broker) dispatch(a *app, m *message, own bool) {
	switch m.kind {
	case kindBroadcast:
		// What this node published itself it has delivered already —
		// all but the HTTP API's broadcasts, which every node delivers
		// from the bus (unless it delivered one itself, Redis being slow).
		if own && (m.broadcast.ClientEvent || b.skippedOwn(m.seq)) {
			return
		}
		b.cluster.Deliver(&m.broadcast)
	case kindCounts:
		if !own {
			b.counts(m)
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
		if ch, ok := occupancyOf(m.member.Channel); ok {
			b.cluster.Occupancy(&pusher.Occupancy{App: m.member.App, Channel: ch, Occupied: m.member.Added, Node: m.member.Node})
			return
		}
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
