package pusher

import (
	"context"

	json "github.com/goccy/go-json"
)

// serverToUserPrefix names the channel that carries events to one signed-in
// user on every connection it holds (Pusher protocol: users).
const serverToUserPrefix = "#server-to-user-"

// maxWatchlist caps the user ids one user may watch.
const maxWatchlist = 100

type signinData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

type userData struct {
	ID        *string  `json:"id"`
	Watchlist []string `json:"watchlist"`
}

// handleSignin authenticates the connection as a user: auth is a signature
// over socket_id::user::user_data (Pusher protocol: pusher:signin).
func (s *Server) handleSignin(sess *Session, data []byte) {
	var d signinData
	if decodeData(data, &d) != nil {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "Invalid pusher:signin data: auth and user_data must be strings"})
		return
	}
	if !sess.app.checkAuth(d.Auth, sess.id+"::user::"+d.UserData) {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "Invalid signature for pusher:signin"})
		return
	}
	var u userData
	if json.Unmarshal([]byte(d.UserData), &u) != nil || u.ID == nil || *u.ID == "" {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "user_data must be a JSON object with a non-empty string id"})
		return
	}
	if len(u.Watchlist) > maxWatchlist {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "watchlist has more than 100 user ids"})
		return
	}
	if sess.user != "" && sess.user != *u.ID {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "Already signed in as another user"})
		return
	}
	reply := append([]byte(`{"user_data":`), AppendJSONString(nil, d.UserData)...)
	s.send(sess, "pusher:signin_success", "", append(reply, '}'))
	if sess.user != "" {
		return
	}
	sess.user = *u.ID
	s.join(sess, serverToUserPrefix+sess.user, "", nil)
	s.online(sess, u.Watchlist)
}

// online registers sess as one of its user's connections and its watchlist;
// a user's first connection tells its watchers it is online, and the new
// connection learns which of the users it watches are online.
func (s *Server) online(sess *Session, watchlist []string) {
	h := sess.app.hub
	h.usersMu.Lock()
	conns := h.users[sess.user]
	first := len(conns) == 0
	h.users[sess.user] = append(conns, sess)
	var watchers []*Session
	if first {
		watchers = append(watchers, h.watchers[sess.user]...)
	}
	var onlineIDs []string
	for _, id := range watchlist {
		h.watchers[id] = append(h.watchers[id], sess)
		if len(h.users[id]) > 0 {
			onlineIDs = append(onlineIDs, id)
		}
	}
	h.usersMu.Unlock()
	sess.watchlist = watchlist
	if len(watchlist) > 0 {
		s.send(sess, "pusher_internal:watchlist_events", "", appendWatchlistEvent(nil, "online", onlineIDs))
	}
	s.tellWatchers(watchers, "online", sess.user)
}

// signout forgets sess as a connection of its user and as a watcher; the
// user's last connection tells its watchers it is offline.
func (s *Server) signout(sess *Session) {
	h := sess.app.hub
	h.usersMu.Lock()
	h.users[sess.user] = removeSession(h.users[sess.user], sess)
	last := len(h.users[sess.user]) == 0
	if last {
		delete(h.users, sess.user)
	}
	for _, id := range sess.watchlist {
		if h.watchers[id] = removeSession(h.watchers[id], sess); len(h.watchers[id]) == 0 {
			delete(h.watchers, id)
		}
	}
	var watchers []*Session
	if last {
		watchers = append(watchers, h.watchers[sess.user]...)
	}
	h.usersMu.Unlock()
	s.tellWatchers(watchers, "offline", sess.user)
}

func removeSession(list []*Session, sess *Session) []*Session {
	for i, x := range list {
		if x == sess {
			list[i] = list[len(list)-1]
			list[len(list)-1] = nil
			return list[:len(list)-1]
		}
	}
	return list
}

// appendWatchlistEvent appends {"events":[{"name":name,"user_ids":[...]}]}.
func appendWatchlistEvent(dst []byte, name string, ids []string) []byte {
	dst = append(dst, `{"events":[{"name":`...)
	dst = AppendJSONString(dst, name)
	dst = append(dst, `,"user_ids":[`...)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, id)
	}
	return append(dst, "]}]}"...)
}

// tellWatchers sends pusher_internal:watchlist_events about user to each
// watcher, on the watcher's own loop.
func (s *Server) tellWatchers(watchers []*Session, name, user string) {
	if len(watchers) == 0 {
		return
	}
	frame := appendFrameJSON(nil, appendEvent(nil, "pusher_internal:watchlist_events", "", appendWatchlistEvent(nil, name, []string{user})))
	for _, w := range watchers {
		_ = s.loops.Execute(w.loop, &sessionTask{s: s, sess: w, frame: frame})
	}
}

// sessionTask writes a frame to, or closes, one session on its own loop.
type sessionTask struct {
	s     *Server
	sess  *Session
	frame []byte
	close *Error
}

// Run does the task if the session is still open.
func (t *sessionTask) Run(context.Context) error {
	if !t.sess.open {
		return nil
	}
	defer t.s.leave(t.s.enter(t.sess.loop))
	if t.frame != nil {
		t.sess.conn.Write(t.frame)
	}
	if t.close != nil {
		t.s.fail(t.sess, t.close)
	}
	return nil
}

// TerminateUser closes every connection signed in as user on this node
// with pusher:error 4009 (HTTP API: terminate_connections). It returns how
// many it closed.
func (s *Server) TerminateUser(app *App, user string) int {
	h := app.hub
	h.usersMu.Lock()
	conns := append([]*Session(nil), h.users[user]...)
	h.usersMu.Unlock()
	for _, c := range conns {
		_ = s.loops.Execute(c.loop, &sessionTask{s: s, sess: c, close: &Error{Code: CodeUnauthorized, Message: "Connection terminated by the app"}})
	}
	return len(conns)
}
