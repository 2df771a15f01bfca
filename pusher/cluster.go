package pusher

import (
	"slices"
)

// The Server's side of a cluster: what it does with what its Broker tells
// it (Server implements Cluster). What it tells the broker of its counts
// is in counts.go, what it does when it falls behind the others in
// overload.go. On a single node, with LocalBroker, none of it runs.

var _ Cluster = (*Server)(nil)

// Member records a member or a signed-in user coming or going cluster-wide
// (Cluster), and tells this node's subscribers or watchers.
func (s *Server) Member(e *Membership) {
	app := s.AppByID(e.App)
	if app == nil {
		return
	}
	mine := e.Node == s.broker.Node() // this node reports the webhook moment
	switch {
	case e.Channel == "":
		s.listUser(app.hub, e.User, e.Added)
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

// Occupancy reports a channel occupied or vacated cluster-wide (Cluster)
// as the webhook moment, on the node whose change it was.
func (s *Server) Occupancy(o *Occupancy) {
	app := s.AppByID(o.App)
	if app == nil || o.Node != s.broker.Node() {
		return
	}
	moment := ChannelVacated
	if o.Occupied {
		moment = ChannelOccupied
	}
	s.observe(&Moment{App: app, Name: moment, Channel: o.Channel})
}

// Reload makes this node's roster of one presence channel of app, or its
// signed-in users online (channel ""), exactly what the broker holds
// (Cluster), telling this node's subscribers or watchers what that
// changes. A member that left here before its joining was announced is
// unlisted too if the broker does not hold it: its join was lost.
func (s *Server) Reload(appID, channel string, members []Member) {
	app := s.AppByID(appID)
	if app == nil {
		return
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
	if app := s.AppByID(appID); app != nil {
		s.terminate(app, user)
	}
}

// State is this node's own truth (Cluster): its presence members, signed-in
// users and counts, app by app, of the apps named (all of them when none
// is).
func (s *Server) State(apps ...string) *NodeState {
	st := &NodeState{}
	for _, app := range s.Apps() {
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
					if kind, _ := ChannelKind(name); kind != ServerOnly {
						as.Occupied = append(as.Occupied, name)
					}
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

// Deliver delivers an event published through the cluster (Cluster),
// by another node or this one. It cannot be refused, so its work counts
// toward the publish bound without waiting; a node so far behind that it
// holds overloadFactor bounds of deliveries, or overloadBytes of frames,
// closes the subscribers of the event's channels with 4100 instead — they
// reconnect after a back-off — rather than skip it silently or queue
// without end.
func (s *Server) Deliver(b *Broadcast) {
	app := s.AppByID(b.App)
	if app == nil || (b.ClientEvent && b.Origin == s.broker.Node()) {
		return
	}
	if s.gate.pending() > overloadFactor*s.gate.limit || s.gate.pendingBytes() > overloadBytes {
		// The cache channels still keep the event, as every other node's
		// do: their subscribers, reconnecting, are replayed it.
		e := Event{Name: b.Event, Data: b.Data}
		ec := eventCache{until: b.cacheUntil()}
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
			s.fanOut(app.hub, ch, clientEventFrame([]byte(b.Event), ch, b.Data, b.User), target{except: except}, nil)
		}
		return
	}
	e := Event{Channels: b.Channels, Name: b.Event, Data: b.Data, Except: b.Except}
	s.deliverHere(app, &e, b.cacheUntil())
}
