package pusher

import (
	"context"
	"math"
	"time"

	"github.com/revurb/revurb/codec"
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
	var user string
	if sub.m != nil {
		user = sub.m.id
	}
	s.fanOut(app.hub, sub.ch.name, clientEventFrame(e.event, sub.ch.name, e.data, user), target{except: sess.id, from: sess}, nil)
	s.loopCounters[sess.loop].clientEvents.Add(1)
	if s.obs != nil && app.wants(ClientEventHook) {
		s.obs.Observe(&Moment{App: app, Name: ClientEventHook, Channel: sub.ch.name, User: user,
			Event: string(e.event), Data: append([]byte(nil), e.data...), SocketID: sess.id.String()})
	}
	if s.clustered {
		s.publishClientEvent(sess, sub.ch.name, e, user)
	}
	if app.Watched() {
		app.Tell(TapEvent{Kind: TapClientEvent, SocketID: sess.id.String(), Channel: sub.ch.name, Event: string(e.event), Data: tapData(e.data), Detail: user})
	}
}

// appendClientEvent appends a relayed client event: its data exactly as
// the client sent it (raw JSON), and on presence channels the sender's
// user_id.
func appendClientEvent(dst, event []byte, channel string, data []byte, user string) []byte {
	dst = append(dst, `{"event":`...)
	dst = appendJSONBytes(dst, event)
	dst = append(dst, `,"channel":`...)
	dst = codec.AppendJSONString(dst, channel)
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	if user != "" {
		dst = append(dst, `,"user_id":`...)
		dst = codec.AppendJSONString(dst, user)
	}
	return append(dst, '}')
}

// publishClientEvent hands a client event to the other nodes. It runs on
// an event loop, so it does not wait: if the broker's queue is full the
// other nodes miss the event (client events are best effort), and it is
// counted.
func (s *Server) publishClientEvent(sess *Session, channel string, e *envelope, user string) {
	b := &Broadcast{Origin: s.broker.Node(), App: sess.app.ID, Channels: []string{channel},
		Event: string(e.event), Data: append([]byte(nil), e.data...), Except: sess.id.String(),
		ClientEvent: true, User: user}
	if err := s.broker.Publish(doneCtx, b); err != nil && err != ErrBrokerDown {
		s.clientEventsDropped.Add(1)
	}
}

// doneCtx is a context that is done already: what an event loop hands a
// broker, which must then not wait.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

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
// than the count is for.
func (r *rateWindow) roll(now int64) {
	if sec := int32(now / int64(time.Second)); sec != r.second {
		r.second, r.clientEvents = sec, 0
	}
}
