package loop

import (
	"fmt"
	"net"
	"runtime/debug"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// gnet's events, each a turn of its loop but OnOpen and OnTick (turn.go):
// a connection opened, closed, its traffic, and the ticker's beat.

// OnOpen gives the connection its state; the handshake comes as traffic.
// A connection over MaxConns, or one arriving while the engine stops, is
// refused: told why after its handshake (4100 over capacity, 4200
// reconnect now) if few enough wait for that already, else closed at once.
func (e *Engine) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	l := e.loops[e.loopIndex(gc.EventLoop())]
	c := &conn{gc: gc, l: l, slot: int32(len(l.conns)), deadline: time.Now().Add(e.cfg.HandshakeTimeout).UnixNano()}
	n := e.open.Add(1)
	switch {
	case e.stopping.Load():
		c.refuse = pusher.CodeReconnect
	case e.cfg.MaxConns > 0 && n > int64(e.cfg.MaxConns):
		c.refuse = pusher.CodeOverCapacity
	}
	if c.refuse != 0 {
		e.refused.Add(1)
		if e.refusing.Add(1) > int64(e.cfg.Refusing) {
			e.refusing.Add(-1)
			e.open.Add(-1)
			return nil, gnet.Close
		}
		c.deadline = time.Now().Add(refuseTimeout).UnixNano()
	}
	if e.tls != nil && !e.plain(gc) {
		c.tls = &tlsConn{}
	}
	gc.SetContext(c)
	l.conns = append(l.conns, c)
	return nil, gnet.None
}

// plain reports whether gc came in on PlainAddr, the port that speaks
// plain ws:// beside wss://.
func (e *Engine) plain(gc gnet.Conn) bool {
	if e.plainPort == 0 {
		return false
	}
	a, ok := gc.LocalAddr().(*net.TCPAddr)
	return ok && a.Port == e.plainPort
}

// refuseTimeout is how long a refused connection may take to send its
// handshake and be told why.
const refuseTimeout = 2 * time.Second

// OnClose ends the session, however the connection went.
func (e *Engine) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None
	}
	if c.state == stateOpen && c.refuse == 0 {
		c.l.countClose(1006) // gone without a close frame
	}
	c.state = stateClosed
	if c.tls != nil && c.tls.hs != nil {
		c.tls.hs.cancel() // the worker stops waiting for records that will not come
	}
	e.open.Add(-1)
	if c.refuse != 0 {
		e.refusing.Add(-1)
	}
	l := c.l
	last := len(l.conns) - 1
	moved := l.conns[last]
	l.conns[c.slot], moved.slot = moved, c.slot
	l.conns[last] = nil
	l.conns = l.conns[:last]
	// Closed by gnet inside a write of a turn: the protocol core hears of
	// it when that turn ends. Else this is a turn of its own.
	l.closing = append(l.closing, c)
	if l.depth == 0 {
		l.begin()
		l.end()
	}
	return gnet.None
}

// OnTraffic decodes what arrived and hands complete messages to the
// protocol core.
func (e *Engine) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	c.l.begin()
	defer c.l.end()
	if c.serve() {
		return gnet.Close
	}
	return gnet.None
}

// serve reads what c has received and not consumed yet, as far as its
// message budget allows, in a turn of c's loop. It reports whether
// c must be closed at once: a bug reached by one client's bytes must not
// take every other connection down with the process, so a panic is
// logged, that client is told 1011 and dropped.
func (c *conn) serve() (closeNow bool) {
	defer func() {
		if r := recover(); r != nil {
			c.l.e.cfg.Log.Error("loop: panic serving a connection; closing it with 1011", "remote", fmt.Sprint(c.gc.RemoteAddr()), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.l.st.forget(c)
			if c.state == stateOpen {
				if c.tls == nil { // a TLS connection's record layer may be what broke
					_, _ = c.gc.Write(codec.AppendCloseFrame(nil, ws.StatusInternalServerError, "Internal server error"))
				}
				c.l.countClose(int(ws.StatusInternalServerError))
			}
			c.state = stateClosing
			closeNow = true
		}
	}()
	if c.throttled {
		// Still waiting for its budget: what arrived waits too, up to the
		// cap. (A resume turn takes it off the list first.)
		c.overInbound()
		return false
	}
	if c.tls != nil {
		c.serveTLS()
	} else {
		buf, _ := c.gc.Peek(-1)
		// Discard(0) would drop everything buffered: gnet treats n <= 0 as
		// "all". A partial request or frame must stay for the next read.
		if n := c.traffic(buf); n > 0 {
			_, _ = c.gc.Discard(n)
		}
	}
	if c.throttled {
		c.overInbound()
	}
	return false
}

// sweepEvery is how often each loop checks its connections' keepalive
// deadlines. Deadlines are seconds long, so one pass a second over the loop's
// connections is precise enough and costs no timer per connection.
const sweepEvery = time.Second

// sweepTicks is how many ticks, resumeEvery apart, make a sweepEvery.
const sweepTicks = int(sweepEvery / resumeEvery)

// expireEvery is how many sweeps pass between purges of expired cache-channel
// events: a purge walks every cached event, and a late purge only holds
// memory a little longer (an expired event is never replayed).
const expireEvery = 30 * sweepTicks

// OnTick queues, every resumeEvery, a resume turn on each loop with
// throttled connections, and every sweepEvery a sweep of every loop's
// connections.
func (e *Engine) OnTick() (time.Duration, gnet.Action) {
	if e.ticks == 0 {
		close(e.ready)
	}
	now := time.Now().UnixNano()
	for i, l := range e.loops {
		if l.nThrottled.Load() > 0 {
			_ = e.Execute(i, l.resume)
		}
	}
	if e.ticks%sweepTicks == 0 {
		e.eachLoop(func(i int) { e.sweep(i, now) })
	}
	if e.ticks++; e.ticks%expireEvery == 0 {
		e.srv.Expire(now)
	}
	return resumeEvery, gnet.None
}

// sweep runs on loop i: keepalive for open sessions, a deadline for
// handshakes, and the final close of connections whose close frame has
// been flushed.
func (e *Engine) sweep(i int, now int64) {
	for _, c := range e.loops[i].snapshot() {
		switch c.state {
		case stateOpen:
			if c.tls != nil && c.tls.rec != nil {
				c.tls.rec.parkIn()
			}
			if c.deadline != 0 && now > c.deadline {
				c.deadline = 0
				if c.sess.User() == "" {
					e.srv.Unauthenticated(&c.sess)
					continue
				}
			}
			e.srv.Check(&c.sess, now)
		case stateHandshake:
			if now > c.deadline {
				c.state = stateClosing
				c.deadline = 0
				_ = c.gc.Close()
			}
		case stateClosing:
			if c.deadline != 0 && (c.gc.OutboundBuffered() == 0 || now > c.deadline) {
				c.deadline = 0
				_ = c.gc.Close()
			}
		}
	}
	clear(e.loops[i].sweep) // let closed connections go
}
