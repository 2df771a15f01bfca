// Package loop is revurb's WebSocket front: a gnet engine whose event loops
// (one per core by default) own every connection. It is the only package that
// imports gnet.
//
// There is no goroutine per connection. OnTraffic peeks at what the kernel
// delivered, runs the incremental handshake parser and frame decoder of
// package codec over it, hands complete messages to package pusher, and
// discards exactly the bytes consumed; a partial request or frame waits in
// gnet's buffer for the next read.
//
// A conn (the per-connection struct, with its pusher.Session inside) is
// touched only on its own loop. Broadcasts from other goroutines reach it
// through Engine.Execute, which queues a task on the loop. Keepalive
// deadlines are checked by one sweep per loop per second, not by timers per
// connection. A connection whose unsent backlog passes Config.MaxOutbound is
// closed with 4100 (slow consumer).
//
// A turn is one callback of gnet on a loop: a connection's traffic, a
// batch of queued tasks, a close. Every entry point brackets itself
// (turn.go); at the end of the outermost turn each connection's frames
// leave in one write, then the sessions of connections that closed during
// the turn — gnet closes a socket inside a write that fails — are closed
// in the protocol core, so that it never sees a close in the middle of its
// own work.
//
// A connection that sends faster than its message budget (pusher's
// Session.CanRead) is read more slowly rather than refused: its bytes wait
// unread in gnet's inbound buffer, in order, and a resume turn every 100 ms
// reads it again as far as the budget allows; past Config.MaxInbound unread
// it is closed with 4100 (budget.go).
//
// Files: engine (construction, Stop, Stats), loopstate (what revurb keeps
// per loop), events (gnet's callbacks and the keepalive sweep), turn,
// tasks (the ordered queue), conn (a connection: handshake, frames,
// writes, close), write (the turn's staging), budget, logger.
//
// Locks. A loop's own state needs none: only its goroutine touches it.
// Two mutexes are shared, each taken alone and never held across a call
// into gnet or the protocol core: a loop's task queue (taskQueue.mu, by
// whoever queues a task and by the loop draining it), and the engine's
// list of gnet's loops (Engine.mu). The protocol core's locks are its own
// (pusher's hub.go); the loop calls into it holding none.
package loop
