package pusher

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// This file is the Server's side of a cluster: what it tells its Broker,
// and what it does with what the broker tells it (Server implements
// Cluster). On a single node, with LocalBroker, none of it runs but the
// queries, which then read this node alone.
//
// Every node answers the HTTP API's queries for the whole cluster from
// what it holds: its own channels, its copy of every presence roster and
// of the signed-in users (kept by the broker's announcements), and the
// other nodes' subscription counts (remoteCounts, kept by the counts each
// node sends every countsEvery while they change, and whole every
// fullCountsEvery). A query never waits for another node.

var _ Cluster = (*Server)(nil)

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
	for _, app := range s.apps {
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
	app := s.byID[c.App]
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
	for _, app := range s.apps {
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

// Member records a member or a signed-in user coming or going cluster-wide
// (Cluster), and tells this node's subscribers or watchers.
func (s *Server) Member(e *Membership) {
	app := s.byID[e.App]
	if app == nil {
		return
	}
	mine := e.Node == s.broker.Node() // this node reports the webhook moment
	switch {
	case e.Channel == "":
		s.listUser(app.hub, e.User, e.Added)
	case strings.HasPrefix(e.Channel, occupancy):
		if mine {
			moment := ChannelVacated
			if e.Added {
				moment = ChannelOccupied
			}
			s.observe(&Moment{App: app, Name: moment, Channel: strings.TrimPrefix(e.Channel, occupancy)})
		}
	default:
		except, _ := ParseSocketID(e.Except)
		s.listMember(app.hub, e.Channel, e.User, e.Info, e.Added, except)
		if mine {
			moment := MemberRemoved
			if e.Added {
				moment = MemberAdded
			}
			s.observe(&Moment{App: app, Name: moment, Channel: e.Channel, User: e.User})
		}
	}
}

// Reload makes this node's roster of one presence channel of app, or its
// signed-in users online (channel ""), exactly what the broker holds
// (Cluster), telling this node's subscribers or watchers what that
// changes. A member that left here before its joining was announced is
// unlisted too if the broker does not hold it: its join was lost.
func (s *Server) Reload(appID, channel string, members []Member) {
	app := s.byID[appID]
	if app == nil || strings.HasPrefix(channel, occupancy) {
		return // which nodes have subscribers is the broker's business
	}
	h := app.hub
	held := memberSet(members)
	if channel == "" {
		h.usersMu.Lock()
		var offline []string
		for id := range h.online {
			if _, ok := held[id]; !ok {
				offline = append(offline, id)
			}
		}
		h.usersMu.Unlock()
		for _, id := range offline {
			s.listUser(h, id, false)
		}
		for _, m := range members {
			s.listUser(h, m.User, true)
		}
		return
	}
	// Members listed here (or pending) that the cluster no longer has.
	for _, id := range h.unheld(channel, held) {
		s.unlistMember(h, channel, id)
	}
	for _, m := range members {
		s.listMember(h, channel, m.User, m.Info, true, 0)
	}
}

// memberSet indexes list by user id, so that comparing a roster with it
// is linear: a reload may list every signed-in user of the cluster.
func memberSet(list []Member) map[string]struct{} {
	set := make(map[string]struct{}, len(list))
	for _, m := range list {
		set[m.User] = struct{}{}
	}
	return set
}

// Terminate closes this node's connections of user in app (Cluster).
func (s *Server) Terminate(appID, user string) {
	if app := s.byID[appID]; app != nil {
		s.terminate(app, user)
	}
}

// State is this node's own truth (Cluster): its presence members, signed-in
// users and counts, app by app, of the apps named (all of them when none
// is).
func (s *Server) State(apps ...string) *NodeState {
	st := &NodeState{}
	for _, app := range s.apps {
		if len(apps) > 0 && !slices.Contains(apps, app.ID) {
			continue
		}
		as := AppState{App: app.ID, Presence: map[string][]Member{}}
		h := app.hub
		occupancyWanted := s.obs != nil && (app.wants(ChannelOccupied) || app.wants(ChannelVacated))
		h.each(func(sh *shard) {
			for name, r := range sh.rosters {
				as.Rosters = append(as.Rosters, name)
				for id, m := range r.members {
					if m.conns > 0 {
						as.Presence[name] = append(as.Presence[name], Member{User: id, Info: m.info})
					}
				}
			}
			if occupancyWanted {
				for name := range sh.channels {
					as.Presence[occupancy+name] = []Member{{User: occupant}}
				}
			}
		})
		h.usersMu.Lock()
		for id := range h.users {
			as.Users = append(as.Users, id)
		}
		h.usersMu.Unlock()
		c, _ := s.counts(app, true)
		as.Counts = *c
		st.Apps = append(st.Apps, as)
	}
	return st
}

// Broadcast delivers an event published through the cluster (Cluster),
// by another node or this one. It cannot be refused, so its work counts
// toward the publish bound without waiting; a node so far behind that it
// holds overloadFactor bounds of deliveries, or overloadBytes of frames,
// closes the subscribers of the event's channels with 4100 instead — they
// reconnect after a back-off — rather than skip it silently or queue
// without end.
func (s *Server) Broadcast(b *Broadcast) {
	app := s.byID[b.App]
	if app == nil || (b.ClientEvent && b.Origin == s.broker.Node()) {
		return
	}
	if s.gate.pending() > overloadFactor*s.gate.limit || s.gate.pendingBytes() > overloadBytes {
		// The cache channels still keep the event, as every other node's
		// do: their subscribers, reconnecting, are replayed it.
		e := Event{Name: b.Event, Data: b.Data}
		ec := eventCache{until: b.CacheUntil * int64(time.Millisecond)}
		for _, ch := range b.Channels {
			var keep *cachedEvent
			if !b.ClientEvent {
				keep = ec.entry(app, &e, ch)
			}
			s.overloaded(app, ch, keep)
		}
		return
	}
	if b.ClientEvent {
		except, _ := ParseSocketID(b.Except)
		for _, ch := range b.Channels {
			f := newFrame()
			f.buf = appendClientEvent(f.buf, []byte(b.Event), ch, b.Data, b.User)
			f.seal()
			s.broadcast(app.hub, ch, f, target{except: except}, nil)
		}
		return
	}
	e := Event{Channels: b.Channels, Name: b.Event, Data: b.Data, Except: b.Except}
	s.deliver(app, &e, b.CacheUntil*int64(time.Millisecond))
}

// What makes a node refuse what other nodes send. Other nodes are paced
// by their own loops, not by this node's, so a node that is slower (its
// CPU shared, more subscribers) falls behind; it must not drop everyone at
// the first hiccup: overloadFactor bounds of deliveries are a second or
// more of delivery work (64 × 4096 by default, against 100k–300k
// deliveries a second per node here), fifteen events of a channel with
// 17,000 subscribers on the node. overloadBytes bounds the memory that
// holds when the events are many, to channels of few subscribers.
const (
	overloadFactor = 64
	overloadBytes  = 64 << 20
)

// overloaded closes this node's subscribers of channel name with 4100: it
// is too far behind to deliver to them. keep, if not nil, becomes the
// channel's cached event all the same.
func (s *Server) overloaded(app *App, name string, keep *cachedEvent) {
	var to target
	r := app.hub.route(name, keep, &to)
	for i, mask := 0, r.mask; mask != 0; i, mask = i+1, mask>>1 {
		if mask&1 != 0 {
			_ = s.loops.Execute(i, &overloadTask{s: s, ch: r.ch, loop: i})
		}
	}
}

// overloadTask closes a channel's subscribers on one loop with 4100.
type overloadTask struct {
	s    *Server
	ch   *channel
	loop int
}

func (t *overloadTask) Run(context.Context) error {
	for _, sub := range t.ch.subs[t.loop] {
		t.s.overloadCloses.Add(1)
		t.s.fail(sub.sess, &Error{Code: CodeOverCapacity, Message: "Server over capacity: events for this channel could not be delivered"})
	}
	return nil
}

// ChannelInfo is what the cluster knows of one channel.
type ChannelInfo struct {
	Name              string
	Occupied          bool
	SubscriptionCount int // connections subscribed
	UserCount         int // presence channels: distinct users
}

// Channel returns what is known of the channel name of app, cluster-wide.
func (s *Server) Channel(app *App, name string) ChannelInfo {
	n, users := app.hub.info(name)
	if s.clustered {
		n += app.hub.remote.count(name)
	}
	return ChannelInfo{Name: name, Occupied: n > 0, SubscriptionCount: n, UserCount: users}
}

// Channels returns the occupied channels of app whose names start with
// prefix, cluster-wide, sorted by name.
func (s *Server) Channels(app *App, prefix string) []ChannelInfo {
	counts := map[string]int{}
	app.hub.each(func(sh *shard) {
		for name, ch := range sh.channels {
			if ch.count > 0 && strings.HasPrefix(name, prefix) {
				counts[name] += ch.count
			}
		}
	})
	if s.clustered {
		r := &app.hub.remote
		r.mu.Lock()
		for name, byNode := range r.channels {
			if strings.HasPrefix(name, prefix) {
				for _, n := range byNode {
					counts[name] += n
				}
			}
		}
		r.mu.Unlock()
	}
	out := make([]ChannelInfo, 0, len(counts))
	for name, n := range counts {
		ci := ChannelInfo{Name: name, Occupied: true, SubscriptionCount: n}
		if kind, _ := ChannelKind(name); kind == Presence {
			_, ci.UserCount = app.hub.info(name)
		}
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Connections is the open connections of app, cluster-wide.
func (s *Server) Connections(app *App) int {
	return app.Connections() + s.remoteConnections(app)
}

// remoteConnections is the open connections of app on the other nodes, as
// they last told this one; 0 on a single node.
func (s *Server) remoteConnections(app *App) int {
	if !s.clustered {
		return 0
	}
	return app.hub.remote.connections()
}
