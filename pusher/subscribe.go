package pusher

import (
	"strconv"
	"time"

	json "github.com/goccy/go-json"

	"github.com/revurb/revurb/codec"
)

// subscribeData is the data of pusher:subscribe.
type subscribeData struct {
	Channel     string  `json:"channel"`
	Auth        string  `json:"auth"`
	ChannelData *string `json:"channel_data"`
}

// presenceData is the channel_data of a presence subscription.
type presenceData struct {
	UserID   json.RawMessage `json:"user_id"`
	UserInfo json.RawMessage `json:"user_info"`
}

// decodeData unmarshals a message's data into v. The data may be an object
// or, as some clients send it, a string holding one.
func decodeData(data []byte, v any) error {
	if len(data) == 0 {
		return errFieldType
	}
	if data[0] == '"' {
		var inner string
		if err := json.Unmarshal(data, &inner); err != nil {
			return err
		}
		data = []byte(inner)
	}
	if len(data) == 0 || data[0] != '{' {
		return errFieldType
	}
	return json.Unmarshal(data, v)
}

func (s *Server) handleSubscribe(sess *Session, data []byte) {
	var d subscribeData
	if err := decodeData(data, &d); err != nil {
		s.refuse(sess, &Error{Message: "Invalid pusher:subscribe data: channel, auth and channel_data must be strings"})
		return
	}
	if sess.user != nil && d.Channel == serverToUserPrefix+sess.user.id {
		// pusher-js subscribes to its own user channel after signin; the
		// server already did, whatever characters the user id holds.
		s.subscribe(sess, d.Channel, "", nil)
		return
	}
	if !ValidChannelName(d.Channel, sess.app.MaxChannelNameLength) {
		s.subscriptionError(sess, d.Channel, "InvalidChannel", "Invalid channel name "+strconv.Quote(d.Channel), 400)
		return
	}
	kind, _ := ChannelKind(d.Channel)
	var userID string
	var userInfo []byte
	switch kind {
	case ServerOnly:
		s.subscriptionError(sess, d.Channel, "AuthError", "Channels starting with # are reserved for the server", 401)
		return
	case Private, Encrypted:
		id := sess.id.String()
		if !sess.app.checkAuth(d.Auth, id+":"+d.Channel) {
			s.subscriptionError(sess, d.Channel, "AuthError", "Invalid signature: expected HMAC SHA256 hex digest of "+id+":"+d.Channel, 401)
			return
		}
	case Presence:
		if d.ChannelData == nil {
			s.subscriptionError(sess, d.Channel, "AuthError", "Presence channels need channel_data", 401)
			return
		}
		id := sess.id.String()
		if !sess.app.checkAuth(d.Auth, id+":"+d.Channel+":"+*d.ChannelData) {
			s.subscriptionError(sess, d.Channel, "AuthError", "Invalid signature: expected HMAC SHA256 hex digest of "+id+":"+d.Channel+":channel_data", 401)
			return
		}
		var msg string
		userID, userInfo, msg = parsePresenceData(*d.ChannelData, sess.app.MaxUserInfoSize)
		if msg != "" {
			s.subscriptionError(sess, d.Channel, "AuthError", msg, 400)
			return
		}
	}
	s.subscribe(sess, d.Channel, userID, userInfo)
}

// parsePresenceData reads user_id (a string or a number, at most 128
// characters) and user_info from channel_data. It returns a reason when the
// data is not acceptable.
func parsePresenceData(channelData string, maxInfo int) (userID string, info []byte, reason string) {
	var p presenceData
	if err := json.Unmarshal([]byte(channelData), &p); err != nil {
		return "", nil, "channel_data must be a JSON object"
	}
	switch {
	case len(p.UserID) == 0:
		return "", nil, "channel_data must have a user_id"
	case p.UserID[0] == '"':
		if json.Unmarshal(p.UserID, &userID) != nil {
			return "", nil, "invalid user_id"
		}
	case p.UserID[0] == '-' || (p.UserID[0] >= '0' && p.UserID[0] <= '9'):
		userID = string(p.UserID)
	default:
		return "", nil, "user_id must be a string or a number"
	}
	if userID == "" || len(userID) > 128 {
		return "", nil, "user_id must be 1 to 128 characters"
	}
	if len(p.UserInfo) > maxInfo {
		return "", nil, "user_info is larger than " + strconv.Itoa(maxInfo) + " bytes"
	}
	if len(p.UserInfo) > 0 && string(p.UserInfo) != "null" {
		info = p.UserInfo
	}
	return userID, info, ""
}

// subscriptionError answers a refused subscription; the connection stays
// up (Pusher protocol: pusher:subscription_error).
func (s *Server) subscriptionError(sess *Session, channel, typ, msg string, status int) {
	if s.debug {
		s.log.Debug("send pusher:subscription_error", "socket_id", sess.id.String(), "channel", channel, "error", msg)
	}
	b := make([]byte, 0, 128+len(msg))
	b = append(b, `{"event":"pusher:subscription_error","channel":`...)
	b = codec.AppendJSONString(b, channel)
	b = append(b, `,"data":{"type":`...)
	b = codec.AppendJSONString(b, typ)
	b = append(b, `,"error":`...)
	b = codec.AppendJSONString(b, msg)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, "}}"...)
	sess.conn.Write(appendFrameJSON(nil, b))
	if sess.app.Watched() {
		sess.tell(TapError, channel, status, typ+": "+msg)
	}
}

// subscribe adds sess to the channel, then answers subscription_succeeded,
// replays a cache channel's last event, and tells the others of a new
// presence member and the new subscription count.
func (s *Server) subscribe(sess *Session, name, userID string, userInfo []byte) {
	if k := sess.find([]byte(name)); k >= 0 {
		// Already subscribed: one membership, the same reply again.
		s.succeeded(sess, sess.subs[k].ch, nil)
		return
	}
	if max := sess.app.MaxSubscriptions; max > 0 && len(sess.subs) >= max+sess.serverSubs() {
		s.subscriptionError(sess, name, "LimitReached", "Too many subscriptions on this connection (at most "+strconv.Itoa(max)+")", CodeOverCapacity)
		return
	}
	h := sess.app.hub
	kind, cache := ChannelKind(name)
	if kind == Presence {
		h.lockTell(name)
		defer h.unlockTell(name) // till member_added is queued (hub.go: lock order)
	}
	j := h.join(sess, name, &joining{kind: kind, cache: cache, user: userID, info: userInfo, maxMembers: sess.app.MaxPresenceMembers})
	if j.ch == nil {
		s.subscriptionError(sess, name, "LimitReached", "Presence channel is full ("+strconv.Itoa(sess.app.MaxPresenceMembers)+" members)", CodeOverCapacity)
		return
	}
	s.succeeded(sess, j.ch, j.presence)
	if sess.app.Watched() {
		sess.tell(TapSubscribed, name, 0, userID)
	}
	if j.ch.cache {
		if j.cached != nil {
			s.send(sess, j.cached.event, name, j.cached.data.b)
		} else {
			b := append([]byte(`{"event":"pusher:cache_miss","channel":`), codec.AppendJSONString(nil, name)...)
			sess.conn.Write(appendFrameJSON(nil, append(b, '}')))
		}
	}
	if j.announce {
		// Queued to every loop, this one too, behind the announcements
		// decided before it (shard.tell): never written ahead of them.
		s.publishInternal(h, name, "pusher_internal:member_added", appendMemberAdded(nil, userID, userInfo), target{except: sess.id, upto: j.seq})
		if !s.clustered { // in a cluster, the node whose join the cluster announces reports it
			s.observe(&Moment{App: sess.app, Name: MemberAdded, Channel: name, User: userID})
		}
	}
	if j.firstHere {
		s.broker.Join(&Membership{App: sess.app.ID, Channel: name, User: userID, Info: userInfo, Added: true, Except: sess.id.String()})
	}
	if j.created {
		s.occupied(sess.app, name, true)
	}
	if j.ch.cache && j.cached == nil {
		s.observe(&Moment{App: sess.app, Name: CacheMiss, Channel: name})
	}
	s.countChanged(sess, j.ch, j.count, j.seq)
}

// occupied reports a channel's first subscriber here coming (or, with
// false, its last going): on one node, as the webhook moment; in a
// cluster, to the broker, which announces the channel's first node and
// last node — when some webhook of the app wants them.
func (s *Server) occupied(app *App, name string, yes bool) {
	if s.obs == nil || !app.wants(ChannelOccupied) && !app.wants(ChannelVacated) {
		return
	}
	if kind, _ := ChannelKind(name); kind == ServerOnly {
		return // a #server-to-user channel is the server's, not an app's channel
	}
	if s.clustered {
		s.broker.Occupy(&Occupancy{App: app.ID, Channel: name, Occupied: yes})
		return
	}
	moment := ChannelVacated
	if yes {
		moment = ChannelOccupied
	}
	s.observe(&Moment{App: app, Name: moment, Channel: name})
}

// serverSubs is how many of the session's subscriptions the server made
// itself (its #server-to-user channel), which the cap does not count.
func (s *Session) serverSubs() int {
	if s.user != nil {
		return 1
	}
	return 0
}

// joining is what a subscription asks of the channel table.
type joining struct {
	kind       Kind
	cache      bool
	user       string // presence: the user id
	info       []byte // presence: its user_info
	maxMembers int
}

// joined is what join did.
type joined struct {
	ch        *channel     // nil: refused, the presence channel is full
	m         *member      // presence: the member the subscription counts for
	presence  []byte       // presence channels: the member list, self included
	cached    *cachedEvent // cache channels: the last event, if any
	announce  bool         // presence: the user is a member this node's subscribers do not know of, to announce
	created   bool         // the channel's first subscriber on this node
	firstHere bool         // presence, a cluster: the user's first connection here, for the broker
	count     int          // subscriptions after joining
	seq       seqNum       // the subscription's number (shard.seq)
}

// join counts sess, not subscribed yet, as a subscriber of channel name
// (creating it), with the presence identity j asks for, and numbers its
// subscription. It sends nothing. sh.mu is held.
func (sh *shard) join(h *hub, sess *Session, name string, j *joining) (got joined) {
	if j.kind == Presence {
		r := sh.rosters[name]
		var m *member
		if r != nil {
			m = r.members[j.user]
		}
		if (m == nil || !m.visible()) && r != nil && r.visible >= j.maxMembers {
			return joined{}
		}
		if r == nil {
			r = newRoster()
			sh.rosters[name] = r
		}
		if m == nil {
			m = &member{id: j.user, info: j.info}
			r.members[j.user] = m
		}
		// A member this node's subscribers do not know of yet is told to
		// them now, on one node or in a cluster alike (the cluster's
		// announcement, when it comes, changes nothing they see).
		got.announce = !m.visible()
		r.change(m, func() {
			if m.conns++; m.conns == 1 {
				if h.clustered {
					got.firstHere = true
				} else {
					m.listed = true
				}
			}
		})
		got.m = m
		got.presence = appendPresence(make([]byte, 0, 64+32*r.visible), r)
	}
	ch := sh.channels[name]
	if ch == nil {
		ch = &channel{name: name, kind: j.kind, cache: j.cache,
			perLoop: make([]int32, h.loops), subs: make([][]subscriber, h.loops)}
		sh.channels[name] = ch
		got.created = true
	}
	ch.count++
	ch.perLoop[sess.loop]++
	sh.seq = sh.seq.next()
	got.ch, got.count, got.seq = ch, ch.count, sh.seq
	if j.cache {
		got.cached = sh.cached(name, time.Now().UnixNano())
	}
	sh.markDirty(h, name)
	return got
}

// succeeded writes pusher_internal:subscription_succeeded. For presence
// channels presence is the member list; nil asks for a fresh one.
func (s *Server) succeeded(sess *Session, ch *channel, presence []byte) {
	if ch.kind == Presence && presence == nil {
		presence = sess.app.hub.presence(ch.name)
	}
	if presence == nil {
		presence = []byte("{}")
	}
	s.send(sess, "pusher_internal:subscription_succeeded", ch.name, presence)
}

// countChanged sends pusher_internal:subscription_count to a public,
// private or cache channel when its app asks for it (never to presence or
// #server-to-user channels).
func (s *Server) countChanged(sess *Session, ch *channel, count int, upto seqNum) {
	if ch.kind == Presence || ch.kind == ServerOnly {
		return
	}
	if s.clustered {
		count += sess.app.hub.remote.count(ch.name)
	}
	s.observe(&Moment{App: sess.app, Name: SubscriptionCount, Channel: ch.name, Count: count})
	if !sess.app.SubscriptionCount || count == 0 {
		return
	}
	d := strconv.AppendInt([]byte(`{"subscription_count":`), int64(count), 10)
	s.publishInternal(sess.app.hub, ch.name, "pusher_internal:subscription_count", append(d, '}'), target{from: sess, upto: upto})
}

func (s *Server) handleUnsubscribe(sess *Session, data []byte) {
	var d subscribeData
	if err := decodeData(data, &d); err != nil {
		s.refuse(sess, &Error{Message: "Invalid pusher:unsubscribe data: channel must be a string"})
		return
	}
	if k := sess.find([]byte(d.Channel)); k >= 0 {
		s.unsubscribe(sess, k)
	}
}

// unsubscribe drops subscription k of sess: presence members leave on
// their last connection, and empty channels are forgotten.
func (s *Server) unsubscribe(sess *Session, k int) {
	sub := sess.subs[k]
	h := sess.app.hub
	if sub.m != nil {
		h.lockTell(sub.ch.name)
		defer h.unlockTell(sub.ch.name) // till member_removed is queued (hub.go: lock order)
	}
	l := h.leave(sess, k)
	ch := sub.ch
	if sess.app.Watched() {
		sess.tell(TapUnsubscribed, ch.name, 0, "")
	}
	switch {
	case l.announce:
		s.publishInternal(h, ch.name, "pusher_internal:member_removed", appendMemberRemoved(nil, sub.m.id), target{except: sess.id, upto: l.upto}) // queued, as member_added
		s.observe(&Moment{App: sess.app, Name: MemberRemoved, Channel: ch.name, User: sub.m.id})
	case l.lastHere:
		s.broker.Leave(&Membership{App: sess.app.ID, Channel: ch.name, User: sub.m.id})
	}
	if l.vacated {
		s.occupied(sess.app, ch.name, false)
	}
	s.countChanged(sess, ch, l.count, l.upto)
}

// left is what leave did.
type left struct {
	count    int    // subscriptions after leaving
	upto     seqNum // the shard's last subscription then: those an announcement of it reaches
	announce bool   // presence, one node: the user's last connection left, to announce
	lastHere bool   // presence, a cluster: the user's last connection here, for the broker
	vacated  bool   // the channel's last subscriber on this node
}

// leave uncounts sub, a subscription of sess, from its channel: its
// presence member leaves with its last connection, an empty channel is
// forgotten. sh.mu is held.
func (sh *shard) leave(h *hub, sess *Session, sub subscription) (l left) {
	ch := sub.ch
	ch.count--
	ch.perLoop[sess.loop]--
	l.count, l.upto = ch.count, sh.seq
	if m := sub.m; m != nil {
		r := sh.rosters[ch.name]
		empty := r.change(m, func() {
			if m.conns--; m.conns == 0 {
				if h.clustered {
					// Gone here; whether it is gone from the cluster, the
					// broker announces. Not yet announced as joined, it
					// stays visible until that announcement comes.
					l.lastHere = true
					m.pending = !m.listed
				} else {
					m.listed = false
					l.announce = true
				}
			}
		})
		if empty {
			delete(sh.rosters, ch.name)
		}
	}
	l.vacated = ch.count == 0 && sh.channels[ch.name] == ch
	if l.vacated {
		delete(sh.channels, ch.name)
	}
	sh.markDirty(h, ch.name)
	return l
}

// publishInternal broadcasts a server event to the channel's subscribers
// that to reaches.
func (s *Server) publishInternal(h *hub, name, event string, data []byte, to target) {
	s.fanOut(h, name, eventFrame(event, name, data), to, nil)
}
