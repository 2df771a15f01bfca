package loop

import (
	"strings"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// connState is where a connection is in its life. It moves only forward:
// stateHandshake → stateOpen → stateClosing → stateClosed, or from
// stateHandshake straight to stateClosing when the handshake fails.
type connState uint8

const (
	// stateHandshake waits for the HTTP upgrade request.
	stateHandshake connState = iota
	// stateOpen exchanges WebSocket frames.
	stateOpen
	// stateClosing has sent its last bytes; input is ignored.
	stateClosing
	// stateClosed is gone.
	stateClosed
)

var stateNames = [...]string{"handshake", "open", "closing", "closed"}

func (s connState) String() string { return stateNames[s] }

// conn is one client connection. It lives in the gnet connection's context
// and is touched only on its event loop. It is kept small: an idle
// connection is this struct and what gnet and the kernel hold.
type conn struct {
	gc       gnet.Conn
	l        *loopState
	deadline int64 // unix nanoseconds: the handshake's, then the sign-in's (user_authentication_timeout), then the close's once stateClosing (0: none)
	slot     int32 // index in l.conns

	// Frames staged in this loop turn (write.go): a chain of segments.
	head, tail, staged int32

	hs        codec.Handshake
	state     connState
	throttled bool  // over its message budget: its bytes wait unread (budget.go), and it is in l.throttled
	refuse    int16 // a close code to refuse the connection with after its handshake, or 0

	dec  codec.Decoder
	sess pusher.Session
	tls  *tlsConn // nil on a plain ws:// connection
}

var _ pusher.Conn = (*conn)(nil)

// appPath is the WebSocket endpoint: /app/{key}.
const appPath = "/app/"

// traffic consumes what it can of buf, everything received and not yet
// consumed, and returns how many bytes it used: the handshake first, then
// frames.
func (c *conn) traffic(buf []byte) int {
	used := 0
	if c.state == stateHandshake {
		n, done := c.handshake(buf)
		if !done {
			return n
		}
		used = n
	}
	used = c.frames(buf, used)
	if c.state != stateOpen {
		return len(buf)
	}
	return used
}

// handshake parses the upgrade request at the start of buf and, once it
// is whole, answers it and opens the session. It returns the bytes used
// and whether the connection is open; when it is not, the bytes used are
// 0 (the request is not whole yet) or all of buf (refused).
func (c *conn) handshake(buf []byte) (int, bool) {
	req, n, err := c.hs.Parse(buf)
	if err == codec.ErrNeedMore {
		return 0, false
	}
	if err != nil {
		status, reason := 400, err.Error()
		if he, ok := err.(*codec.HTTPError); ok {
			status, reason = he.Status, he.Reason
		}
		c.refuseHTTP(status, reason)
		return len(buf), false
	}
	key, ok := strings.CutPrefix(req.Path, c.l.e.cfg.Path)
	if !ok || key == "" || strings.Contains(key, "/") {
		c.refuseHTTP(404, "Not found: the WebSocket endpoint is "+c.l.e.cfg.Path+"{key}")
		return len(buf), false
	}
	c.state = stateOpen
	c.deadline = 0
	// Staged, so that it leaves in one write with connection_established;
	// built in the loop's scratch, which staging copies from.
	c.l.scratch = codec.AppendUpgradeResponse(c.l.scratch[:0], req.Key)
	c.l.st.stage(c, c.l.scratch)
	if c.refuse != 0 {
		c.refused()
		return len(buf), false
	}
	c.l.opened.Add(1)
	if !c.l.e.srv.Open(&c.sess, c, c.l.index, key, codec.QueryValue(req.RawQuery, "protocol"), req.Origin) {
		return len(buf), false
	}
	c.dec.MaxMessage = c.sess.App().MaxMessageSize
	if t := c.sess.App().UserAuthenticationTimeout; t > 0 {
		// The loop's sweep closes it with 4009 if it has not signed in by
		// then (Pusher: authorized connections).
		c.deadline = time.Now().Add(time.Duration(t) * time.Second).UnixNano()
	}
	return n, true
}

// frames decodes the frames of buf from used on, as far as the
// connection's message budget allows, and hands each whole message to the
// protocol core. It returns the bytes used; a partial frame waits for the
// next read.
func (c *conn) frames(buf []byte, used int) int {
	now := time.Now().UnixNano()
	for c.state == stateOpen && used < len(buf) {
		if !c.sess.CanRead(now) {
			c.throttle()
			break
		}
		m, n, err := c.dec.Decode(buf[used:])
		if err == codec.ErrNeedMore {
			break
		}
		if err != nil {
			code, reason := ws.StatusProtocolError, err.Error()
			if ce, ok := err.(*codec.CloseError); ok {
				code, reason = ce.Code, ce.Reason
			}
			c.Close(int(code), reason)
			return len(buf)
		}
		used += n
		if m.Op != 0 { // a whole message or a control frame, not a fragment of one
			c.l.msgsIn.Add(1)
			c.sess.Read(now)
		}
		c.l.bytesIn.Add(uint64(n))
		c.message(&m)
	}
	return used
}

// message hands one decoded message or control frame to the protocol
// core, or answers it.
func (c *conn) message(m *codec.Message) {
	switch m.Op {
	case ws.OpText:
		c.l.e.srv.Handle(&c.sess, m.Payload)
	case ws.OpBinary:
		c.l.e.srv.HandleBinary(&c.sess)
	case ws.OpPing:
		c.l.e.srv.Touch(&c.sess)
		c.Write(codec.AppendFrame(nil, ws.OpPong, m.Payload))
	case ws.OpPong:
		c.l.e.srv.Touch(&c.sess)
	case ws.OpClose:
		// RFC 6455 §5.5.1: answer with the code received.
		code := m.CloseCode
		if code == ws.StatusNoStatusRcvd {
			code = ws.StatusNormalClosure
		}
		c.Close(int(code), "")
	}
}

// refused tells a connection just upgraded why it is refused: pusher:error
// then close, with 4100 (over capacity: pusher-js reconnects after a
// back-off) or 4200 (the server is stopping: reconnect at once, elsewhere).
func (c *conn) refused() {
	e := &pusher.Error{Code: int(c.refuse), Message: "Over capacity"}
	if c.refuse == pusher.CodeReconnect {
		e.Message = "Server is restarting, reconnect"
	}
	c.l.st.stage(c, codec.AppendFrame(nil, ws.OpText, e.AppendJSON(nil)))
	c.Close(e.Code, e.Message)
}

// refuseHTTP answers a failed handshake with an HTTP error and closes.
func (c *conn) refuseHTTP(status int, reason string) {
	c.write(codec.AppendHTTPError(nil, status, reason))
	c.state = stateClosing
	_ = c.gc.Close()
}

// Write queues one frame; it leaves with the connection's other frames of
// this loop turn, in one write (write.go). A connection whose unsent
// backlog passes the engine's limit is a slow consumer: it is closed with
// 4100 so that it reconnects after a back-off instead of growing the
// server's memory.
func (c *conn) Write(frame []byte) {
	if c.state != stateOpen {
		return
	}
	if c.gc.OutboundBuffered()+int(c.staged) > c.l.e.cfg.MaxOutbound {
		c.l.e.slowConsumers.Add(1)
		c.Close(pusher.CodeOverCapacity, "Slow consumer: too much unsent data")
		return
	}
	c.l.st.stage(c, frame)
	c.l.msgsOut.Add(1)
	c.l.bytesOut.Add(uint64(len(frame)))
}

// write hands b to gnet, which sends what the socket takes at once and
// keeps the rest until the socket is writable. A connection gone already
// sends nothing.
func (c *conn) write(b []byte) {
	if c.state == stateClosed {
		return
	}
	if c.tls != nil {
		if c.tls.rec == nil {
			return // nothing but the handshake's own bytes leaves before it ends
		}
		if b = c.sealTo(b); b == nil {
			return
		}
	}
	_, _ = c.gc.Write(b)
}

// Close sends a close frame with code and reason, after every frame staged
// before it, and closes the connection once what is queued has been
// flushed, so that the close frame reaches even a slow client; the loop's
// sweep closes it when the backlog has drained or after flushTimeout.
func (c *conn) Close(code int, reason string) {
	if c.state != stateOpen {
		return
	}
	c.l.st.stage(c, codec.AppendCloseFrame(nil, ws.StatusCode(code), reason))
	if c.refuse == 0 {
		c.l.countClose(code)
	}
	c.sess.ClosingWith(code)
	c.state = stateClosing
	c.deadline = time.Now().Add(flushTimeout).UnixNano()
	c.l.st.flushConn(c)
	c.closeNotify()
	if c.state == stateClosing && c.gc.OutboundBuffered() == 0 {
		_ = c.gc.Close()
	}
}

// flushTimeout bounds how long a closing connection may take to receive
// its backlog and close frame.
const flushTimeout = 5 * time.Second
