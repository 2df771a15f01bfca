package pusher

import (
	"math"
	"time"
)

// clientEvent relays a client-* event to the channel's other subscribers
// (Pusher protocol: client events). Refusals are pusher:error 4301 and are
// never relayed; the connection stays up.
func (s *Server) clientEvent(sess *Session, e *envelope) {
	app := sess.app
	var reason string
	k := -1
	switch {
	case !app.ClientEvents:
		reason = "Client events are not enabled for this app"
	case len(e.event) > app.MaxEventNameLength:
		reason = "Event name is too long"
	case e.channel == nil:
		reason = "Client event needs a channel"
	case e.data == nil:
		reason = "Client event needs data"
	case len(e.data) > app.MaxEventDataSize:
		reason = "Client event data is too large"
	default:
		if k = sess.find(e.channel); k < 0 {
			reason = "Not subscribed to the channel"
		} else if kind := sess.subs[k].ch.kind; kind != Private && kind != Presence {
			reason = "Client events are only allowed on private and presence channels"
		} else if !sess.rate.allowClientEvent(sess.lastSeen, app.ClientEventRate) {
			reason = "Client event rate limit exceeded"
		}
	}
	if reason != "" {
		s.refuse(sess, &Error{Code: CodeClientEventLimit, Message: reason})
		return
	}
	sub := &sess.subs[k]
	f := newFrame()
	f.buf = append(f.buf, `{"event":`...)
	f.buf = appendJSONBytes(f.buf, e.event)
	f.buf = append(f.buf, `,"channel":`...)
	f.buf = AppendJSONString(f.buf, sub.ch.name)
	f.buf = append(f.buf, `,"data":`...)
	f.buf = append(f.buf, e.data...)
	if sub.m != nil {
		f.buf = append(f.buf, `,"user_id":`...)
		f.buf = AppendJSONString(f.buf, sub.m.id)
	}
	f.buf = append(f.buf, '}')
	f.seal()
	s.broadcast(app.hub, sub.ch.name, f, target{except: sess.id, from: sess}, nil)
}

// allowClientEvent counts one client event at now (unix nanoseconds)
// against a limit per second.
func (r *rateWindow) allowClientEvent(now int64, limit int) bool {
	if limit <= 0 {
		return true
	}
	r.roll(now)
	if r.clientEvents < math.MaxUint16 {
		r.clientEvents++
	}
	return int(r.clientEvents) <= limit
}

// roll starts a new window when now (unix nanoseconds) is in another second
// than the counts are for. A connection over its message limit in the second
// that ended is marked, so that going on in the next one closes it.
func (r *rateWindow) roll(now int64) {
	sec := int32(now / int64(time.Second))
	if sec == r.second {
		return
	}
	r.over = r.second+1 == sec && r.refused
	r.second, r.messages, r.clientEvents, r.refused = sec, 0, 0, false
}
