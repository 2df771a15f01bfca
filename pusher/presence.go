package pusher

import (
	"sort"
	"strconv"

	"github.com/revurb/revurb/codec"
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
//
// Exactly once. What this node's subscribers are told follows one thing:
// whether a member is visible here (listed, connected here, or left here
// before the cluster's announcement of its joining arrived). Every change
// of it is told, at once and under the shard lock that fixes which
// subscriptions it reaches, to the subscriptions made before it; the
// subscriptions made after it list the member, or not, in their
// subscription_succeeded. So each subscriber hears member_added only of a
// user it does not list and member_removed only of one it does, once per
// change, however joins, leaves and the cluster's announcements
// interleave. A member that left here before its joining was announced
// stays visible (pending) until the cluster says what became of it, so
// that its subscribers are not told it left and came back.

// member is one user of a presence channel. Guarded by the shard lock; id
// never changes.
type member struct {
	id     string
	info   []byte // raw JSON of user_info, or nil
	conns  int    // this node's connections of the user in the channel
	listed bool   // announced: a member as the cluster goes
	// pending: in a cluster, the user's last connection here left before
	// the cluster announced the user; the announcement is on its way (or,
	// if the broker lost the join, the next reload unlists it).
	pending bool
}

// visible reports whether new subscribers' member lists hold m, and so
// whether this node's subscribers know of it: it is listed, or in a
// cluster it has a connection here, or had one, whose announcement is on
// its way.
func (m *member) visible() bool { return m.listed || m.conns > 0 || m.pending }

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
		dst = codec.AppendJSONString(dst, id)
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
		dst = codec.AppendJSONString(dst, id)
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
	dst = codec.AppendJSONString(dst, id)
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
	dst = codec.AppendJSONString(dst, id)
	return append(dst, '}')
}

// listMember makes the roster of channel name list user (info), or stop
// listing it, as the cluster announced, and tells this node's subscribers
// if that changed whether it is visible here. except is the connection
// that joined, which is not told of itself.
func (s *Server) listMember(h *hub, name, user string, info []byte, added bool, except SocketID) {
	s.setListed(h, name, user, info, added, added, except)
}

// unlistMember stops listing user in channel name, pending or not, as a
// reload found the cluster no longer has it, and tells this node's
// subscribers if it is not visible any more.
func (s *Server) unlistMember(h *hub, name, user string) {
	s.setListed(h, name, user, nil, false, true, 0)
}

// setListed makes user listed in channel name or not, and no longer
// pending if settled, telling this node's subscribers when that changes
// whether it is visible.
func (s *Server) setListed(h *hub, name, user string, info []byte, listed, settled bool, except SocketID) {
	h.setListed(name, user, info, listed, settled, func(upto seqNum) {
		if listed {
			s.publishInternal(h, name, "pusher_internal:member_added", appendMemberAdded(nil, user, info), target{except: except, upto: upto})
		} else {
			s.publishInternal(h, name, "pusher_internal:member_removed", appendMemberRemoved(nil, user), target{upto: upto})
		}
	})
}

// setListed makes user listed in channel name or not, and no longer
// pending if settled, and reports whether that changed whether it is
// visible here, and the subscriptions that are to be told: those made so
// far (changed is false if the shard never had one, as upto 0 would mean
// "every one when the broadcast runs"). sh.mu is held.
func (sh *shard) setListed(name, user string, info []byte, listed, settled bool) (changed bool, upto seqNum) {
	r := sh.rosters[name]
	var m *member
	if r != nil {
		m = r.members[user]
	}
	if !listed && m == nil {
		return false, 0
	}
	if r == nil {
		r = newRoster()
		sh.rosters[name] = r
	}
	if m == nil {
		m = &member{id: user}
		r.members[user] = m
	}
	was := m.visible()
	if listed {
		m.info = info
	}
	if r.change(m, func() { m.listed, m.pending = listed, m.pending && !settled }) {
		delete(sh.rosters, name)
	}
	return was != m.visible() && sh.seq != 0, sh.seq
}

// Users returns the ids of the members of presence channel name, sorted:
// the cluster's, as this node knows them.
func (s *Server) Users(app *App, name string) []string {
	ids := app.hub.members(name)
	sort.Strings(ids)
	return ids
}

// members returns the ids of the visible members of presence channel
// name, unsorted. sh.mu is held.
func (sh *shard) members(name string) []string {
	var ids []string
	if r := sh.rosters[name]; r != nil {
		for id, m := range r.members {
			if m.visible() {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
