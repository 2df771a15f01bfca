package pusher

import (
	"strconv"
	"time"
)

// A session's life on its loop: opened after the upgrade, kept alive by
// the keepalive sweep, closed however it ends.

// Open starts the session of a connection upgraded on /app/{key} on event
// loop loop. protocol and origin are the query's protocol value and the
// Origin header. It writes pusher:connection_established, or a pusher:error
// and closes the connection (Pusher protocol: connection). It reports
// whether the session is open.
func (s *Server) Open(sess *Session, c Conn, loop int, key, protocol, origin string) bool {
	*sess = Session{conn: c, loop: uint8(loop)}
	app := s.AppByKey(key)
	var err *Error
	switch {
	case app == nil:
		err = &Error{Code: CodeUnknownApp, Message: "App key " + key + " not in this cluster"}
	case !validProtocol(protocol):
		err = &Error{Code: CodeBadProtocol, Message: "Unsupported protocol version " + protocol}
	case !app.Enabled:
		err = &Error{Code: CodeAppDisabled, Message: "Application disabled"}
	case !app.OriginAllowed(origin):
		err = &Error{Code: CodeUnauthorized, Message: "Origin not allowed"}
	case app.MaxConnections > 0 && app.connections.Add(1)+int64(s.remoteConnections(app)) > int64(app.MaxConnections):
		app.connections.Add(-1)
		err = &Error{Code: CodeOverQuota, Message: "Application is over connection quota"}
	case app.MaxConnections <= 0:
		app.connections.Add(1)
	}
	if err != nil {
		if app != nil && app.Watched() {
			app.Tell(TapEvent{Kind: TapError, Code: err.Code, Detail: err.Message + " (origin " + strconv.Quote(origin) + ")"})
		}
		s.fail(sess, err)
		return false
	}
	now := time.Now().UnixNano()
	sess.app, sess.id, sess.open, sess.lastSeen = app, s.ids.id(), true, now
	app.enlist(sess)
	var buf [80]byte
	data := append(buf[:0], `{"socket_id":"`...)
	data = sess.id.AppendTo(data)
	data = append(data, `","activity_timeout":`...)
	data = strconv.AppendInt(data, int64(app.ActivityTimeout), 10)
	data = append(data, '}')
	s.send(sess, "pusher:connection_established", "", data)
	if app.Watched() {
		sess.tell(TapConnected, "", 0, origin)
	}
	if s.debug {
		s.log.Debug("open", "socket_id", sess.id.String(), "app", app.ID, "origin", origin)
	}
	return true
}

// validProtocol accepts a missing protocol (as 7) and 5..7.
func validProtocol(p string) bool {
	return p == "" || p == "5" || p == "6" || p == "7"
}

// Close ends the session: its subscriptions, its presence memberships and
// its user. It runs when the connection is gone, however it went.
func (s *Server) Close(sess *Session) {
	if !sess.open {
		return
	}
	sess.open = false
	for len(sess.subs) > 0 {
		s.unsubscribe(sess, len(sess.subs)-1)
	}
	if sess.user != nil {
		s.signout(sess)
	}
	sess.app.connections.Add(-1)
	sess.app.delist(sess)
	if sess.app.Watched() {
		sess.tell(TapDisconnected, "", int(sess.closeCode), "")
	}
	if s.debug {
		s.log.Debug("close", "socket_id", sess.id.String())
	}
}

// Reconnect tells the client to reconnect at once, elsewhere: pusher:error
// 4200 then close 4200 (Pusher protocol: 4200-4299).
func (s *Server) Reconnect(sess *Session) {
	s.fail(sess, &Error{Code: CodeReconnect, Message: "Server is restarting, reconnect"})
}

// Unauthenticated closes a connection that has not signed in within its
// app's user_authentication_timeout: pusher:error 4009, then close 4009
// (Pusher protocol: authorized connections).
func (s *Server) Unauthenticated(sess *Session) {
	if !sess.open {
		return
	}
	s.fail(sess, &Error{Code: CodeUnauthorized, Message: "Connection not authorized within timeout"})
}

// Touch records inbound traffic that is not a Pusher message (a WebSocket
// ping or pong frame) as activity.
func (s *Server) Touch(sess *Session) {
	sess.lastSeen = time.Now().UnixNano()
	sess.pingSent = 0
}

var pingFrame = appendFrameJSON(nil, []byte(`{"event":"pusher:ping","data":"{}"}`))

// Check runs the keepalive of sess at now (unix nanoseconds): after
// activity_timeout of silence it sends pusher:ping; if that goes unanswered
// for pong_timeout it closes with 4201 (Pusher protocol: ping and pong).
func (s *Server) Check(sess *Session, now int64) {
	if !sess.open {
		return
	}
	if sess.pingSent != 0 {
		if now-sess.pingSent >= int64(sess.app.pongTimeout()) {
			s.fail(sess, &Error{Code: CodePongNotReceived, Message: "Pong reply not received in time"})
		}
		return
	}
	if now-sess.lastSeen >= int64(sess.app.activityTimeout()) {
		sess.pingSent = now
		sess.conn.Write(pingFrame)
	}
}
