package loop

import (
	"context"
	"time"

	"github.com/revurb/revurb/pusher"
)

// A connection over its message budget (pusher's Session.CanRead) is read
// more slowly, never refused (PROTOCOL.md: limits answer or slow down).
// traffic stops decoding it at the first message the budget does not allow
// and leaves the rest of its bytes in gnet's inbound buffer, in order; the
// connection joins its loop's throttled list, and every resumeEvery the
// engine's ticker queues a resume turn on each loop that has any, which
// reads each connection on the list again as far as its budget allows now.
// What a throttled connection may hold unread is capped (MaxInbound): a
// client that sends on regardless is closed with 4100, so that pusher-js
// backs off before it reconnects, and its memory is given back.

// resumeEvery is how often throttled connections are read again: at the
// default budget of 100 messages a second, ten at a time.
const resumeEvery = 100 * time.Millisecond

// throttle puts c, over its budget, on its loop's throttled list.
func (c *conn) throttle() {
	if c.throttled {
		return
	}
	c.throttled = true
	c.l.throttles.Add(1)
	c.l.throttled = append(c.l.throttled, c)
	c.l.nThrottled.Store(int32(len(c.l.throttled)))
}

// overInbound closes c, throttled, if what it has sent unread passes the
// engine's cap, and reports whether it did.
func (c *conn) overInbound() bool {
	unread := c.gc.InboundBuffered()
	if c.tls != nil {
		unread += len(c.tls.pending)
	}
	if c.state != stateOpen || unread <= c.l.e.cfg.MaxInbound {
		return false
	}
	c.l.e.inboundCloses.Add(1)
	c.Close(pusher.CodeOverCapacity, "Too many messages: more unread than the server holds for one connection")
	return true
}

// resumer is the task that reads a loop's throttled connections again. One
// per loop, made once: queued twice, it runs twice, harmlessly.
type resumer struct{ l *loopState }

// Run reads each throttled connection of the loop that its budget allows
// now; the others stay on the list.
func (r resumer) Run(context.Context) error {
	l := r.l
	now := time.Now().UnixNano()
	list := l.throttled
	l.throttled = l.spareThrottled[:0]
	for i, c := range list {
		list[i] = nil
		c.throttled = false
		switch {
		case c.state != stateOpen:
		case !c.sess.CanRead(now):
			c.throttle()
		default:
			if c.serve() {
				_ = c.gc.Close()
			}
		}
	}
	l.spareThrottled = list[:0]
	l.nThrottled.Store(int32(len(l.throttled)))
	return nil
}
