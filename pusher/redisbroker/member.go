package redisbroker

import (
	"strings"
	"time"

	"github.com/revurb/revurb/pusher"
)

// Join queues m's first connection here for the Lua script that decides
// whether it is the user's first anywhere.
func (b *Broker) Join(m *pusher.Membership) { b.member(m, true) }

// Leave queues m's last connection here leaving.
func (b *Broker) Leave(m *pusher.Membership) { b.member(m, false) }

// Occupy queues a channel's first subscriber here coming, or its last
// going. Redis keeps which nodes have subscribers of a channel as the
// members of its occupancy channel (occupancyChannel), one per node, so
// the same scripts that announce a user's first and last connection
// anywhere announce the channel's first and last node.
func (b *Broker) Occupy(o *pusher.Occupancy) {
	b.member(&pusher.Membership{App: o.App, Channel: occupancyChannel(o.Channel), User: occupant}, o.Occupied)
}

// occupancy is the prefix of the channel names under which Redis keeps,
// per channel, which nodes have subscribers: every node with a subscriber
// of a channel is the member occupant of occupancy+channel. No client
// channel starts with a NUL, and a reload never reads these (indexed).
const (
	occupancy = "\x00occupied:"
	occupant  = "*"
)

func occupancyChannel(name string) string { return occupancy + name }

// occupancyOf returns the channel whose occupancy channel is name, if it
// is one.
func occupancyOf(name string) (string, bool) { return strings.CutPrefix(name, occupancy) }

// member queues a join or leave; if it cannot reach Redis now, or the
// queue is full, a resync of the app makes up for it.
func (b *Broker) member(m *pusher.Membership, join bool) {
	a := b.appByID(m.App)
	if a == nil {
		return
	}
	c := b.live()
	if c == nil {
		b.lost.Add(1) // the resync when Redis is back, or at joining, tells it
		return
	}
	node := b.names.get()
	mm := *m
	mm.Added = join
	msg := string(a.sig.sign(appendMember(nil, header{origin: node, time: time.Now().UnixMilli(), app: a.id}, &mm)))
	keys := a.memberKeys(node, m.Channel)
	var o op
	if join {
		o = scriptOp(c, luaJoin, a, keys, []string{b.pubCmd(), a.bus, node, m.Channel, m.User, string(m.Info), indexed(m.Channel), msg})
	} else {
		o = scriptOp(c, luaLeave, a, keys, []string{b.pubCmd(), a.bus, node, m.Channel, m.User, indexed(m.Channel), msg})
	}
	o.node = node
	if !b.queue(o, false) {
		b.askResync(a)
	}
}
