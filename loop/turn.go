package loop

import (
	"fmt"
	"runtime/debug"
)

// A turn is one callback of gnet on a loop's goroutine: the traffic of
// one connection (OnTraffic), one batch of queued tasks (broadcasts,
// sweeps, resumes), or a close (OnClose). Each entry point brackets itself
// with begin and end; nothing above package loop does.
//
// Two things happen at the end of the outermost turn:
//
//   - the frames written during the turn leave, one write per connection
//     (write.go);
//   - the connections that closed during the turn are closed in the
//     protocol core (pusher's Server.Close), then what that staged leaves
//     too. A write that fails makes gnet close its socket at once, inside
//     the write: OnClose then runs in the middle of whatever was writing —
//     a fan-out walking the very subscriber list that closing would change.
//     So OnClose inside a turn only forgets the connection here and queues
//     it; the protocol core hears of it when the turn has ended.
//
// A panic that unwinds through a turn still runs its end (a defer), so no
// turn is left open and no close is left waiting.

// begin marks the start of a turn on l; end ends it.
func (l *loopState) begin() { l.depth++ }

// end ends a turn. Leaving the outermost one, it flushes the turn's
// writes, then closes the connections that closed meanwhile, flushing
// what each close staged (a member_removed for the others), until none is
// left.
func (l *loopState) end() {
	defer func() { l.depth-- }()
	if l.depth > 1 {
		return
	}
	l.flushSafely()
	for len(l.closing) > 0 {
		c := l.closing[0]
		l.closing[0] = nil
		l.closing = l.closing[1:]
		l.closeSession(c)
		l.flushSafely()
	}
	l.closing = l.closing[:0:0]
}

// closeSession ends c's session in the protocol core. A panic there is a
// bug: it is logged and the loop goes on with the next close.
func (l *loopState) closeSession(c *conn) {
	defer func() {
		if r := recover(); r != nil {
			l.e.cfg.Log.Error("loop: panic closing a session; going on", "loop", l.index, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	l.e.srv.Close(&c.sess)
}
