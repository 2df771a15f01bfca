package redisbroker

import (
	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// Each node sends its subscription counts of an app on the app's bus, as
// pusher hands them over: what changed, and now and then a full count
// (and one in answer to a hello, and after a resync). A count of more
// than maxCountsPerMessage channels goes in parts, which the other nodes
// put together (partial) before they take it.

// Counts queues this node's counts of an app for its bus.
func (b *Broker) Counts(ct *pusher.Counts) {
	a := b.appByID(ct.App)
	if c := b.live(); a != nil && c != nil {
		for _, cmd := range b.countsCmds(c, a, ct) {
			b.queue(op{cmd: cmd}, false)
		}
	}
}

// countsCmds publish ct on a's bus, in parts of maxCountsPerMessage
// channels; a full count in parts is numbered, so that the other nodes
// take it as one.
func (b *Broker) countsCmds(c rueidis.Client, a *app, ct *pusher.Counts) []rueidis.Completed {
	h := b.header(a)
	chs := ct.Channels
	if len(chs) <= maxCountsPerMessage {
		return []rueidis.Completed{b.pub(c, a, a.sig.sign(appendCounts(nil, h, ct.Connections, ct.Full, 0, true, chs)))}
	}
	var gen uint64
	if ct.Full {
		gen = b.gen.Add(1)
	}
	var out []rueidis.Completed
	for len(chs) > 0 {
		n := min(len(chs), maxCountsPerMessage)
		out = append(out, b.pub(c, a, a.sig.sign(appendCounts(nil, h, ct.Connections, ct.Full, gen, n == len(chs), chs[:n]))))
		chs = chs[n:]
	}
	return out
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
