package pusher

import (
	"context"
	"slices"

	json "github.com/goccy/go-json"

	"github.com/revurb/revurb/codec"
)

// serverToUserPrefix names the channel that carries events to one signed-in
// user on every connection it holds (Pusher protocol: users).
const serverToUserPrefix = "#server-to-user-"

// maxWatchlist caps the user ids one user may watch.
const maxWatchlist = 100

// maxUserID caps the length of a user id, a signed-in user's or one it
// watches, as a presence member's (Pusher: user ids up to 128 characters).
const maxUserID = 128

type signinData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

type userData struct {
	ID        *string  `json:"id"`
	Watchlist []string `json:"watchlist"`
}

// handleSignin authenticates the connection as a user: auth is a signature
// over socket_id::user::user_data (Pusher protocol: pusher:signin). Signing
// in again as the same user replaces the watchlist; as another user is
// refused.
func (s *Server) handleSignin(sess *Session, data []byte) {
	var d signinData
	if decodeData(data, &d) != nil {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "Invalid pusher:signin data: auth and user_data must be strings"})
		return
	}
	if !sess.app.checkAuth(d.Auth, sess.id.String()+"::user::"+d.UserData) {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "Invalid signature for pusher:signin"})
		return
	}
	var u userData
	if json.Unmarshal([]byte(d.UserData), &u) != nil || u.ID == nil || *u.ID == "" {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "user_data must be a JSON object with a non-empty string id"})
		return
	}
	if len(*u.ID) > maxUserID {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "user_data id is longer than 128 characters"})
		return
	}
	if len(u.Watchlist) > maxWatchlist {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "watchlist has more than 100 user ids"})
		return
	}
	if msg := dedupeWatchlist(&u.Watchlist); msg != "" {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: msg})
		return
	}
	if sess.user != nil && sess.user.id != *u.ID {
		s.refuse(sess, &Error{Code: CodeUnauthorized, Message: "Already signed in as another user"})
		return
	}
	reply := append([]byte(`{"user_data":`), codec.AppendJSONString(nil, d.UserData)...)
	s.send(sess, "pusher:signin_success", "", append(reply, '}'))
	if sess.user != nil {
		s.watch(sess, u.Watchlist)
		return
	}
	sess.user = &user{id: *u.ID}
	sess.app.hub.join(sess, serverToUserPrefix+sess.user.id, &joining{kind: ServerOnly})
	s.online(sess)
	s.watch(sess, u.Watchlist)
}

// dedupeWatchlist keeps the first of each id in list, so that a watcher
// hears one event per change of each user however often it names it, and
// says what is wrong with an id too long or empty.
func dedupeWatchlist(list *[]string) string {
	ids := *list
	kept := ids[:0]
	for _, id := range ids {
		if id == "" || len(id) > maxUserID {
			return "watchlist ids must be 1 to 128 characters"
		}
		if !slices.Contains(kept, id) {
			kept = append(kept, id)
		}
	}
	*list = kept
	return ""
}

// online registers sess as one of its user's connections. The user's
// first connection here makes it online: on one node at once, telling its
// watchers; in a cluster when the broker announces it, if it is its first
// anywhere.
func (s *Server) online(sess *Session) {
	h := sess.app.hub
	id := sess.user.id
	h.usersMu.Lock()
	conns := h.users[id]
	h.users[id] = append(conns, sess)
	first := len(conns) == 0
	h.usersMu.Unlock()
	switch {
	case first && s.clustered:
		s.broker.Join(&Membership{App: sess.app.ID, User: id, Added: true, Except: sess.id.String()})
	case first:
		s.listUser(h, id, true)
	}
}

// listUser makes user online or offline as the cluster goes, and tells
// its watchers on this node if that changed.
func (s *Server) listUser(h *hub, user string, online bool) {
	h.usersMu.Lock()
	changed := h.online[user] != online
	if online {
		h.online[user] = true
	} else {
		delete(h.online, user)
	}
	var watchers []*Session
	if changed {
		watchers = append(watchers, h.watchers[user]...)
	}
	h.usersMu.Unlock()
	if changed {
		name := "offline"
		if online {
			name = "online"
		}
		s.tellWatchers(watchers, name, user)
	}
}

// watch makes watchlist the users sess watches, in place of any it watched
// before, and tells it which of them are online now.
func (s *Server) watch(sess *Session, watchlist []string) {
	h := sess.app.hub
	var onlineIDs []string
	h.usersMu.Lock()
	h.unwatch(sess)
	for _, id := range watchlist {
		h.watchers[id] = append(h.watchers[id], sess)
		if h.online[id] {
			onlineIDs = append(onlineIDs, id)
		}
	}
	h.usersMu.Unlock()
	sess.user.watchlist = watchlist
	if len(watchlist) > 0 {
		s.send(sess, "pusher_internal:watchlist_events", "", appendWatchlistEvent(nil, "online", onlineIDs))
	}
}

// unwatch forgets sess as a watcher of its watchlist. The caller holds
// usersMu.
func (h *hub) unwatch(sess *Session) {
	for _, id := range sess.user.watchlist {
		if h.watchers[id] = removeSession(h.watchers[id], sess); len(h.watchers[id]) == 0 {
			delete(h.watchers, id)
		}
	}
}

// signout forgets sess as a connection of its user and as a watcher; the
// user's last connection here makes it offline, as online makes it online.
func (s *Server) signout(sess *Session) {
	h := sess.app.hub
	id := sess.user.id
	h.usersMu.Lock()
	h.users[id] = removeSession(h.users[id], sess)
	last := len(h.users[id]) == 0
	if last {
		delete(h.users, id)
	}
	h.unwatch(sess)
	h.usersMu.Unlock()
	switch {
	case last && s.clustered:
		s.broker.Leave(&Membership{App: sess.app.ID, User: id})
	case last:
		s.listUser(h, id, false)
	}
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
	dst = codec.AppendJSONString(dst, name)
	dst = append(dst, `,"user_ids":[`...)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = codec.AppendJSONString(dst, id)
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
		_ = s.loops.Execute(int(w.loop), &sessionTask{s: s, sess: w, frame: frame})
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
	if t.frame != nil {
		t.sess.conn.Write(t.frame)
	}
	if t.close != nil {
		t.s.fail(t.sess, t.close)
	}
	return nil
}

// TerminateUser closes every connection signed in as user, on this node
// and, through the broker, on every other, with pusher:error 4009 (HTTP
// API: terminate_connections). It returns how many it closed here.
func (s *Server) TerminateUser(ctx context.Context, app *App, user string) (int, error) {
	n := s.terminate(app, user)
	return n, s.broker.Terminate(ctx, app.ID, user)
}

// terminate closes this node's connections of user.
func (s *Server) terminate(app *App, user string) int {
	h := app.hub
	h.usersMu.Lock()
	conns := append([]*Session(nil), h.users[user]...)
	h.usersMu.Unlock()
	for _, c := range conns {
		_ = s.loops.Execute(int(c.loop), &sessionTask{s: s, sess: c, close: &Error{Code: CodeUnauthorized, Message: "Connection terminated by the app"}})
	}
	return len(conns)
}
