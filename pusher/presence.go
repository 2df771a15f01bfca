package pusher

import (
	"sort"
	"strconv"
)

// Presence channels (Pusher protocol: presence channels) know their
// members: users, not connections. A member comes with its user's first
// connection anywhere and goes with the last one; subscribers are told of
// both (pusher_internal:member_added, member_removed), and a new subscriber
// gets the whole list in its subscription_succeeded.
//
// Each shard keeps a roster per presence channel: the members this node
// knows of and its own connections of each. On a single node a user is
// listed as a member from its first connection. In a cluster the roster is
// this node's copy of the cluster's members: a user is listed when the
// broker announces it (Cluster.Member), whichever node it connected to, and
// this node's own connections only tell the broker their user's first and
// last. A roster lives while it lists anyone or this node has a connection
// in it, whether or not the channel has subscribers here.

// member is one user of a presence channel. Guarded by the shard lock; id
// never changes.
type member struct {
	id     string
	info   []byte // raw JSON of user_info, or nil
	conns  int    // this node's connections of the user in the channel
	listed bool   // announced: a member as the cluster goes
	// since is the shard's subscription number when the member became
	// visible here (listed, or connected here before the announcement):
	// subscriptions numbered after it have it in their member list, and
	// its announcement reaches only those numbered up to it.
	since seqNum
}

// visible reports whether new subscribers' member lists hold m: it is
// listed, or in a cluster it has a connection here whose announcement is
// on its way.
func (m *member) visible() bool { return m.listed || m.conns > 0 }

// roster is a presence channel's members.
type roster struct {
	members map[string]*member // by user id
	visible int                // how many of them are visible
}

func newRoster() *roster { return &roster{members: make(map[string]*member)} }

// change applies f to m, keeping the count of visible members and
// forgetting m once it is not visible; it reports whether the roster is
// empty then.
func (r *roster) change(m *member, f func()) bool {
	before := m.visible()
	f()
	switch after := m.visible(); {
	case before && !after:
		r.visible--
		delete(r.members, m.id)
	case !before && after:
		r.visible++
	}
	return len(r.members) == 0
}

// appendPresence appends {"presence":{"ids":[...],"hash":{...},"count":n}}
// for the visible members of r. The caller holds the roster's shard lock.
func appendPresence(dst []byte, r *roster) []byte {
	dst = append(dst, `{"presence":{"ids":[`...)
	n := 0
	for id, m := range r.members {
		if !m.visible() {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = AppendJSONString(dst, id)
	}
	dst = append(dst, `],"hash":{`...)
	first := true
	for id, m := range r.members {
		if !m.visible() {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = AppendJSONString(dst, id)
		dst = append(dst, ':')
		if m.info != nil {
			dst = append(dst, m.info...)
		} else {
			dst = append(dst, "null"...)
		}
	}
	dst = append(dst, `},"count":`...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, "}}"...)
}

// appendMemberAdded appends the data of pusher_internal:member_added.
func appendMemberAdded(dst []byte, id string, info []byte) []byte {
	dst = append(dst, `{"user_id":`...)
	dst = AppendJSONString(dst, id)
	dst = append(dst, `,"user_info":`...)
	if info != nil {
		dst = append(dst, info...)
	} else {
		dst = append(dst, "null"...)
	}
	return append(dst, '}')
}

// appendMemberRemoved appends the data of pusher_internal:member_removed.
func appendMemberRemoved(dst []byte, id string) []byte {
	dst = append(dst, `{"user_id":`...)
	dst = AppendJSONString(dst, id)
	return append(dst, '}')
}

// listMember makes the roster of channel name list user (info), or stop
// listing it, as the cluster announced, and tells this node's subscribers.
// A member announced twice is told once. except is the connection that
// joined, which is not told of itself.
func (s *Server) listMember(h *hub, name, user string, info []byte, added bool, except SocketID) {
	sh := h.shard(name)
	sh.mu.Lock()
	r := sh.rosters[name]
	var m *member
	if r != nil {
		m = r.members[user]
	}
	tell := false
	var upto seqNum // 0: every subscription so far
	switch {
	case added && (m == nil || !m.listed):
		if r == nil {
			r = newRoster()
			sh.rosters[name] = r
		}
		if m == nil {
			m = &member{id: user}
			r.members[user] = m
		}
		// Connected here already, m is in the lists of those who
		// subscribed since: they are not told again.
		if !m.visible() {
			m.since = sh.seq
		}
		m.info = info
		r.change(m, func() { m.listed = true })
		// Only the subscriptions numbered up to since lack m, and the bound
		// is fixed here, under the lock: one that comes after it lists m
		// and is not told (none, if the shard never had a subscription).
		tell, upto = m.since != 0, m.since
	case !added && m != nil && m.listed:
		if r.change(m, func() { m.listed = false }) {
			delete(sh.rosters, name)
		}
		// Still connected here (its join is on its way to the broker), it
		// stays in the lists.
		tell = !m.visible()
	}
	sh.mu.Unlock()
	if !tell {
		return
	}
	if added {
		s.publishInternal(h, name, "pusher_internal:member_added", appendMemberAdded(nil, user, info), target{except: except, upto: upto})
	} else {
		s.publishInternal(h, name, "pusher_internal:member_removed", appendMemberRemoved(nil, user), target{})
	}
}

// Users returns the ids of the members of presence channel name, sorted:
// the cluster's, as this node knows them.
func (s *Server) Users(app *App, name string) []string {
	sh := app.hub.shard(name)
	sh.mu.Lock()
	var ids []string
	if r := sh.rosters[name]; r != nil {
		for id, m := range r.members {
			if m.visible() {
				ids = append(ids, id)
			}
		}
	}
	sh.mu.Unlock()
	sort.Strings(ids)
	return ids
}
