package pusher

// Session is the protocol state of one WebSocket connection. Package loop
// embeds one in its per-connection struct; every field is touched only on
// the event loop that owns the connection.
//
// A session is kept small: an idle subscribed connection is this struct,
// one subscription and one channel entry. What only some sessions need (a
// signed-in user, an index over many subscriptions) hangs off a pointer
// that stays nil until it is needed.
type Session struct {
	conn Conn
	app  *App
	id   SocketID

	subs   []subscription
	byName map[string]int32 // index of subs by channel name, once there are more than linearSubs
	user   *user            // nil until pusher:signin

	lastSeen    int64 // unix nanoseconds of the last inbound message
	pingSent    int64 // unix nanoseconds the server pinged, 0 when not waiting
	nextMessage int64 // the inbound budget: unix nanoseconds of the next message's turn (budget.go)

	rate      rateWindow
	appIdx    int32  // its place in app.sessions[loop]
	closeCode uint16 // the code revurb closed it with, for the tap
	loop      uint8
	open      bool // Open succeeded and Close has not run
}

// user is what a signed-in session knows of its user.
type user struct {
	id        string
	watchlist []string // user ids this user watches
}

// rateWindow counts a session's client events in the current wall-clock
// second.
type rateWindow struct {
	second       int32 // unix second the count is for (only equality matters)
	clientEvents uint16
}

// subscription is one channel a session is in. idx is its position in the
// channel's subs[loop]; m is the presence member it counts for.
type subscription struct {
	ch  *channel
	m   *member
	idx int32
}

// linearSubs is how many subscriptions a session finds by a scan; past it
// the session keeps a map from name to position, so that a subscribe,
// unsubscribe or client event costs the same at 5 subscriptions or 5,000.
const linearSubs = 8

// ID is the session's socket_id (0 before Open succeeds).
func (s *Session) ID() SocketID { return s.id }

// App is the session's app, nil before Open succeeds.
func (s *Session) App() *App { return s.app }

// ClosingWith records the close code the transport closes the session's
// connection with (a slow consumer's 4100, a protocol error's 1002, ...),
// for the console; the first code recorded stays. Its loop calls it.
func (s *Session) ClosingWith(code int) {
	if s.closeCode == 0 {
		s.closeCode = uint16(code)
	}
}

// User is the id the session signed in as, "" if none.
func (s *Session) User() string {
	if s.user == nil {
		return ""
	}
	return s.user.id
}

// find returns the position of the subscription to the channel named name,
// or -1.
func (s *Session) find(name []byte) int {
	if s.byName != nil {
		if k, ok := s.byName[string(name)]; ok {
			return int(k)
		}
		return -1
	}
	for i := range s.subs {
		if s.subs[i].ch.name == string(name) {
			return i
		}
	}
	return -1
}

// addTo appends s to ch.subs[s.loop] as subscription number seq, for
// member m. Runs on s's loop.
func (s *Session) addTo(ch *channel, m *member, seq seqNum) {
	list := ch.subs[s.loop]
	k := int32(len(s.subs))
	s.subs = append(s.subs, subscription{ch: ch, m: m, idx: int32(len(list))})
	ch.subs[s.loop] = append(list, subscriber{sess: s, seq: seq, k: k})
	switch {
	case s.byName != nil:
		s.byName[ch.name] = k
	case len(s.subs) > linearSubs:
		s.byName = make(map[string]int32, 2*len(s.subs))
		for i := range s.subs {
			s.byName[s.subs[i].ch.name] = int32(i)
		}
	}
}

// removeFrom drops subscription k of s from both lists, each time by moving
// the last entry into the freed slot and pointing its twin at the new
// place. Runs on s's loop.
func (s *Session) removeFrom(k int) {
	sub := s.subs[k]
	list := sub.ch.subs[s.loop]
	last := len(list) - 1
	if int(sub.idx) != last {
		moved := list[last]
		list[sub.idx] = moved
		moved.sess.subs[moved.k].idx = sub.idx
	}
	list[last] = subscriber{}
	sub.ch.subs[s.loop] = list[:last]

	last = len(s.subs) - 1
	if k != last {
		moved := s.subs[last]
		s.subs[k] = moved
		moved.ch.subs[s.loop][moved.idx].k = int32(k)
		if s.byName != nil {
			s.byName[moved.ch.name] = int32(k)
		}
	}
	s.subs[last] = subscription{}
	s.subs = s.subs[:last]
	if s.byName != nil {
		delete(s.byName, sub.ch.name)
	}
	if len(s.subs) == 0 {
		// A session that subscribed widely and left keeps nothing.
		s.subs, s.byName = nil, nil
	}
}
