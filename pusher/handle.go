package pusher

import (
	"time"

	"github.com/gobwas/ws"
	"github.com/revurb/revurb/codec"
)

// What a session sends is handled here, message by message, and what the
// server answers it alone is written here: the replies, errors and
// closes of one connection.

// fail sends err as pusher:error and closes the connection with its code.
func (s *Server) fail(sess *Session, err *Error) {
	if sess.app != nil && sess.app.Watched() {
		sess.tell(TapError, "", err.Code, err.Message)
	}
	sess.ClosingWith(err.Code)
	sess.conn.Write(appendFrameJSON(nil, err.AppendJSON(nil)))
	sess.conn.Close(err.Code, err.Message)
}

// refuse sends err as pusher:error; the connection stays up.
func (s *Server) refuse(sess *Session, err *Error) {
	if s.debug {
		s.log.Debug("send pusher:error", "socket_id", sess.id.String(), "code", err.Code, "message", err.Message)
	}
	if sess.app.Watched() {
		sess.tell(TapError, "", err.Code, err.Message)
	}
	sess.conn.Write(appendFrameJSON(nil, err.AppendJSON(nil)))
}

// send writes one event to sess alone.
func (s *Server) send(sess *Session, event, channel string, data []byte) {
	f := eventFrame(event, channel, data)
	sess.conn.Write(f.bytes())
	f.release()
}

var pongFrame = appendFrameJSON(nil, []byte(`{"event":"pusher:pong","data":"{}"}`))

// HandleBinary answers a binary frame: the Pusher protocol is text only.
func (s *Server) HandleBinary(sess *Session) {
	s.Touch(sess)
	s.refuse(sess, &Error{Message: "Binary frames are not supported"})
}

// Handle takes one text message from sess (Pusher protocol: client
// events). msg lives only until Handle returns.
func (s *Server) Handle(sess *Session, msg []byte) {
	if !sess.open {
		return
	}
	sess.lastSeen = time.Now().UnixNano()
	sess.pingSent = 0
	if s.debug {
		s.log.Debug("recv", "socket_id", sess.id.String(), "message", string(msg))
	}
	var e envelope
	if err := parseEnvelope(msg, &e); err != nil {
		s.refuse(sess, &Error{Message: "Invalid message: " + err.Error()[len("pusher: "):]})
		return
	}
	switch string(e.event) {
	case "pusher:ping":
		sess.conn.Write(pongFrame)
	case "pusher:pong":
	case "pusher:subscribe":
		s.handleSubscribe(sess, e.data)
	case "pusher:unsubscribe":
		s.handleUnsubscribe(sess, e.data)
	case "pusher:signin":
		s.handleSignin(sess, e.data)
	default:
		if hasPrefix(e.event, "client-") {
			s.clientEvent(sess, &e)
			return
		}
		s.refuse(sess, &Error{Message: "Unknown event " + string(e.event)})
	}
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// appendFrameJSON appends a text frame holding payload.
func appendFrameJSON(dst, payload []byte) []byte {
	return codec.AppendFrame(dst, ws.OpText, payload)
}
