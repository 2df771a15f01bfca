package pusher

import "time"

// A connection's budget of inbound messages (PROTOCOL.md: limits answer or
// slow down; they never drop). A connection may send max_messages_per_second
// messages a second, and a burst of messageBurst at once, so that a client
// reconnecting with every channel it had resubscribes in one go. Past its
// budget a connection is not refused: package loop stops reading it, so its
// further messages wait unread, in order, until the budget allows them.
//
// The budget is a generic cell rate algorithm: one number per session, the
// theoretical arrival time of the next message. A message may be read at
// now when that time is at most the burst's tolerance ahead of now; reading
// it moves the time one interval on.

// DefaultMaxSubscriptions is the default cap on the channels one connection
// may be in: a safety bound no real app meets (Pusher has none).
const DefaultMaxSubscriptions = 2000

// messageBurst is how many messages a connection may send back to back: at
// least the subscription cap, however low an app sets it, and a second's
// worth more for the pings, signin and unsubscribes around them.
func (a *App) messageBurst() int64 {
	return int64(max(a.MaxSubscriptions, DefaultMaxSubscriptions) + a.MaxMessageRate)
}

// CanRead reports whether the connection of sess may have one more inbound
// message read at now (unix nanoseconds). Package loop asks before it
// decodes a frame and, while the answer is no, leaves the connection's bytes
// unread.
func (s *Session) CanRead(now int64) bool {
	rate := s.app.MaxMessageRate
	if rate <= 0 {
		return true
	}
	interval := int64(time.Second) / int64(rate)
	return max(s.nextMessage, now)-now <= (s.app.messageBurst()-1)*interval
}

// Read takes one message, read at now, from the connection's budget: a
// whole WebSocket message or a control frame.
func (s *Session) Read(now int64) {
	rate := s.app.MaxMessageRate
	if rate <= 0 {
		return
	}
	s.nextMessage = max(s.nextMessage, now) + int64(time.Second)/int64(rate)
}
