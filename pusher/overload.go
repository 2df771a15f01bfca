package pusher

import (
	"context"
)

// What makes a node refuse what other nodes send. Other nodes are paced
// by their own loops, not by this node's, so a node that is slower (its
// CPU shared, more subscribers) falls behind; it must not drop everyone at
// the first hiccup: overloadFactor bounds of deliveries are a second or
// more of delivery work (64 × 4096 by default, against 100k–300k
// deliveries a second per node here), fifteen events of a channel with
// 17,000 subscribers on the node. overloadBytes bounds the memory that
// holds when the events are many, to channels of few subscribers.
const (
	overloadFactor = 64
	overloadBytes  = 64 << 20
)

// overloaded closes this node's subscribers of channel name with 4100: it
// is too far behind to deliver to them. keep, if not nil, becomes the
// channel's cached event all the same.
func (s *Server) overloaded(app *App, name string, keep *cachedEvent) {
	var to target
	r := app.hub.route(name, keep, &to)
	for i, mask := 0, r.mask; mask != 0; i, mask = i+1, mask>>1 {
		if mask&1 != 0 {
			_ = s.loops.Execute(i, &overloadTask{s: s, ch: r.ch, loop: i})
		}
	}
}

// overloadTask closes a channel's subscribers on one loop with 4100.
type overloadTask struct {
	s    *Server
	ch   *channel
	loop int
}

func (t *overloadTask) Run(context.Context) error {
	for _, sub := range t.ch.subs[t.loop] {
		t.s.overloadCloses.Add(1)
		t.s.fail(sub.sess, &Error{Code: CodeOverCapacity, Message: "Server over capacity: events for this channel could not be delivered"})
	}
	return nil
}
