package pusher

import (
	"strconv"
	"sync"
	"time"
)

// A cluster's subscription counts: each node tells the others its own
// (every countsEvery what changed, whole every fullCountsEvery) and keeps
// theirs (remoteCounts), so that queries and subscription_count answer
// for the cluster without waiting on another node.

// How often a node tells the others its counts: what changed, and all of
// them (which mends what a lost message left wrong).
const (
	countsEvery     = 100 * time.Millisecond
	fullCountsEvery = 30 * time.Second
)

// remoteCounts is what the other nodes have of an app: subscriptions by
// channel and node, and connections by node.
type remoteCounts struct {
	mu       sync.Mutex
	channels map[string]map[string]int // channel → node → subscriptions
	conns    map[string]int            // node → connections
	total    int                       // sum of conns
}

func (r *remoteCounts) init() {
	r.channels = make(map[string]map[string]int)
	r.conns = make(map[string]int)
}

// count is the other nodes' subscriptions of channel.
func (r *remoteCounts) count(channel string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.channels[channel] {
		n += c
	}
	return n
}

// set records that node has n subscriptions of channel.
func (r *remoteCounts) set(channel, node string, n int) {
	byNode := r.channels[channel]
	if n <= 0 {
		delete(byNode, node)
		if len(byNode) == 0 {
			delete(r.channels, channel)
		}
		return
	}
	if byNode == nil {
		byNode = make(map[string]int, 2)
		r.channels[channel] = byNode
	}
	byNode[node] = n
}

// forget drops node. The caller holds mu.
func (r *remoteCounts) forget(node string) {
	for ch := range r.channels {
		r.set(ch, node, 0)
	}
	r.total -= r.conns[node]
	delete(r.conns, node)
}

// connections is the other nodes' connections of the app.
func (r *remoteCounts) connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// runCluster tells the broker this node's counts, every countsEvery what
// changed and every fullCountsEvery all of them, until done is closed.
func (s *Server) runCluster(done <-chan struct{}) {
	t := time.NewTicker(countsEvery)
	defer t.Stop()
	lastFull := time.Now()
	s.sendCounts(true)
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			full := now.Sub(lastFull) >= fullCountsEvery
			if full {
				lastFull = now
			}
			s.sendCounts(full)
		}
	}
}

// sendCounts gives the broker each app's counts: those that changed, or
// all of them; and its connections, which change without a channel
// changing.
func (s *Server) sendCounts(full bool) {
	for _, app := range s.Apps() {
		c, connsChanged := s.counts(app, full)
		if full || len(c.Channels) > 0 || connsChanged {
			s.broker.Counts(c)
		}
	}
}

// counts collects app's counts, of the channels marked dirty or of all,
// for the broker to send, and says whether the connections differ from
// what was last collected. Whatever collects counts sends them (the ticker
// or State), so a connection that opens and closes between two ticks,
// seen by a State in between, is still sent as closed.
func (s *Server) counts(app *App, full bool) (*Counts, bool) {
	n := app.Connections()
	c := &Counts{Node: s.broker.Node(), App: app.ID, Full: full, Connections: n}
	changed := app.sentConns.Swap(int64(n)) != int64(n)
	app.hub.each(func(sh *shard) {
		if full {
			for name, ch := range sh.channels {
				c.Channels = append(c.Channels, ChannelCount{Channel: name, Count: ch.count})
			}
		} else {
			for name := range sh.dirty {
				c.Channels = append(c.Channels, ChannelCount{Channel: name, Count: sh.count(name)})
			}
		}
		clear(sh.dirty)
	})
	return c, changed
}

// Counts records another node's counts (Cluster) and, for the channels
// whose count changed that have subscribers here asking for it, sends
// them the cluster's new subscription_count.
func (s *Server) Counts(c *Counts) {
	app := s.AppByID(c.App)
	if app == nil || c.Node == s.broker.Node() {
		return
	}
	r := &app.hub.remote
	var changed []string
	var listed map[string]struct{} // a full count's channels, to find those it no longer has
	if c.Full {
		listed = make(map[string]struct{}, len(c.Channels))
		for _, cc := range c.Channels {
			listed[cc.Channel] = struct{}{}
		}
	}
	r.mu.Lock()
	if c.Full {
		for ch, byNode := range r.channels {
			if _, ok := byNode[c.Node]; ok {
				if _, still := listed[ch]; !still {
					r.set(ch, c.Node, 0)
					changed = append(changed, ch)
				}
			}
		}
	}
	for _, cc := range c.Channels {
		if r.channels[cc.Channel][c.Node] != cc.Count {
			r.set(cc.Channel, c.Node, cc.Count)
			changed = append(changed, cc.Channel)
		}
	}
	r.total += c.Connections - r.conns[c.Node]
	r.conns[c.Node] = c.Connections
	r.mu.Unlock()
	if app.SubscriptionCount {
		for _, ch := range changed {
			s.remoteCountChanged(app, ch)
		}
	}
}

// remoteCountChanged sends pusher_internal:subscription_count with the
// cluster's count to this node's subscribers of channel name, if any.
func (s *Server) remoteCountChanged(app *App, name string) {
	if kind, _ := ChannelKind(name); kind == Presence {
		return
	}
	local := app.hub.count(name)
	if local == 0 {
		return
	}
	total := local + app.hub.remote.count(name)
	d := strconv.AppendInt([]byte(`{"subscription_count":`), int64(total), 10)
	s.publishInternal(app.hub, name, "pusher_internal:subscription_count", append(d, '}'), target{})
}

// Forget drops what is known of a node that left or died (Cluster): its
// counts. Its members and users are announced gone by the broker.
func (s *Server) Forget(node string) {
	for _, app := range s.Apps() {
		r := &app.hub.remote
		r.mu.Lock()
		var changed []string
		for ch, byNode := range r.channels {
			if _, ok := byNode[node]; ok {
				changed = append(changed, ch)
			}
		}
		r.forget(node)
		r.mu.Unlock()
		if app.SubscriptionCount {
			for _, ch := range changed {
				s.remoteCountChanged(app, ch)
			}
		}
	}
}
