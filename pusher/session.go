package pusher

// Session is the protocol state of one WebSocket connection. Package loop
// embeds one in its per-connection struct; every field is touched only on
// the event loop that owns the connection, except where noted.
type Session struct {
	conn    Conn
	app     *App
	loop    int
	id      string // socket_id
	open    bool   // Open succeeded and Close has not run
	closing bool   // Close is waiting for the loop to leave the server

	subs []subscription

	lastSeen int64 // unix nanoseconds of the last inbound message
	pingSent int64 // unix nanoseconds the server pinged, 0 when not waiting

	rateWindow int64 // unix second of the client-event rate window
	rateCount  int

	user      string   // signed-in user id ("" until pusher:signin)
	watchlist []string // user ids this user watches
}

// subscription is one channel a session is in. idx is its position in the
// channel's subs[loop].
type subscription struct {
	ch     *channel
	idx    int
	userID string // presence member id
}

// ID is the session's socket_id ("" before Open succeeds).
func (s *Session) ID() string { return s.id }

// App is the session's app, nil before Open succeeds.
func (s *Session) App() *App { return s.app }

// User is the id the session signed in as, "" if none.
func (s *Session) User() string { return s.user }

func (s *Session) find(ch *channel) int {
	for i := range s.subs {
		if s.subs[i].ch == ch {
			return i
		}
	}
	return -1
}

func (s *Session) findName(name []byte) int {
	for i := range s.subs {
		if s.subs[i].ch.name == string(name) {
			return i
		}
	}
	return -1
}

// addTo appends s to ch.subs[s.loop] as subscription number seq. Runs on
// s's loop.
func (s *Session) addTo(ch *channel, userID string, seq uint64) {
	list := ch.subs[s.loop]
	s.subs = append(s.subs, subscription{ch: ch, idx: len(list), userID: userID})
	ch.subs[s.loop] = append(list, subscriber{sess: s, seq: seq})
}

// removeFrom drops subscription k of s from its channel's loop list by
// moving the last subscriber into its slot. Runs on s's loop.
func (s *Session) removeFrom(k int) {
	sub := s.subs[k]
	list := sub.ch.subs[s.loop]
	last := len(list) - 1
	if sub.idx != last {
		moved := list[last]
		list[sub.idx] = moved
		moved.sess.subs[moved.sess.find(sub.ch)].idx = sub.idx
	}
	list[last] = subscriber{}
	sub.ch.subs[s.loop] = list[:last]
	s.subs[k] = s.subs[len(s.subs)-1]
	s.subs = s.subs[:len(s.subs)-1]
}
