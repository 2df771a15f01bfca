package loop

import (
	"errors"
)

// A TLS connection's traffic on its loop: records in, plaintext to the
// handshake parser and the frame decoder (traffic), and the turn's frames
// sealed into records before the one write (write).

var errCloseNotify = errors.New("loop: TLS close_notify")

// serveTLS reads what c has received: records for the handshake while it
// runs, then records opened into plaintext for traffic.
func (c *conn) serveTLS() {
	buf, _ := c.gc.Peek(-1)
	if c.tls.rec == nil {
		n, err := c.handshakeTraffic(buf)
		if n > 0 {
			_, _ = c.gc.Discard(n)
		}
		if err != nil {
			c.state = stateClosing
			_ = c.gc.Close()
		}
		return
	}
	plain := append(c.l.plain[:0], c.tls.pending...)
	used := 0
	var err error
	for err == nil {
		n, lerr := recordLen(buf[used:])
		if lerr != nil {
			err = lerr
			break
		}
		if n == 0 || used+n > len(buf) {
			break
		}
		plain, err = c.openRecord(plain, buf[used:used+n])
		used += n
	}
	if used > 0 {
		_, _ = c.gc.Discard(used)
	}
	c.l.plain = plain
	c.plainTraffic(plain)
	if err != nil {
		c.tlsFail(err)
	}
}

// openRecords opens records, each a whole record (those the handshake
// left), and hands their plaintext to traffic.
func (c *conn) openRecords(recs [][]byte) error {
	plain := append(c.l.plain[:0], c.tls.pending...)
	var err error
	for _, rec := range recs {
		if plain, err = c.openRecord(plain, rec); err != nil {
			break
		}
	}
	c.l.plain = plain
	c.plainTraffic(plain)
	return err
}

// openRecord opens the whole record rec in place and appends its
// application data to plain. An alert ends the connection; a KeyUpdate
// moves the client's keys on (and, if asked, the server's before its next
// record); anything else is an error.
func (c *conn) openRecord(plain, rec []byte) ([]byte, error) {
	typ, p, err := c.tls.rec.open(rec)
	if err != nil {
		return plain, err
	}
	switch typ {
	case recordApplicationData:
		return append(plain, p...), nil
	case recordAlert:
		if len(p) == 2 && p[1] == 0 {
			return plain, errCloseNotify
		}
		return plain, errRecord
	case recordHandshake:
		requested, err := c.tls.rec.keyUpdate(p)
		if requested {
			c.tls.update = true
		}
		return plain, err
	}
	return plain, errRecord
}

// plainTraffic hands plain, the opened plaintext not consumed before, to
// traffic, and keeps what it leaves (a partial frame, or what waits past
// the budget) for the next time.
func (c *conn) plainTraffic(plain []byte) {
	if len(plain) == 0 || c.state == stateClosing || c.state == stateClosed {
		c.tls.pending = c.tls.pending[:0]
		return
	}
	n := 0
	if !c.throttled {
		n = c.traffic(plain)
	}
	rest := plain[n:]
	if len(rest) == 0 || c.state != stateOpen && c.state != stateHandshake {
		c.tls.pending = nil
		return
	}
	c.tls.pending = append(c.tls.pending[:0], rest...)
	if cap(c.l.plain) > keepArena {
		c.l.plain = nil
	}
}

// tlsFail ends a connection whose records are broken, or whose client
// closed its side (close_notify): no WebSocket close frame can reach it
// any more, so it goes at once.
func (c *conn) tlsFail(err error) {
	if c.state == stateOpen {
		code := 1006
		if errors.Is(err, errCloseNotify) {
			code = 1000
		}
		c.l.countClose(code)
	}
	c.state = stateClosing
	_ = c.gc.Close()
}

// sealTo seals b, frames of the turn, into records after a KeyUpdate if
// one is owed, and returns the bytes to write.
func (c *conn) sealTo(b []byte) []byte {
	out := c.l.sealed[:0]
	if c.tls.update {
		c.tls.update = false
		var err error
		if out, err = c.tls.rec.updateOut(out); err != nil {
			return nil
		}
	}
	out = c.tls.rec.seal(out, b, recordApplicationData)
	if cap(out) > keepArena {
		c.l.sealed = nil
	} else {
		c.l.sealed = out
	}
	return out
}

// closeNotify sends a TLS close_notify alert after what c has sent.
func (c *conn) closeNotify() {
	if c.tls == nil || c.tls.rec == nil || c.state == stateClosed {
		return
	}
	out := c.tls.rec.seal(c.l.sealed[:0], []byte{1, 0}, recordAlert)
	_, _ = c.gc.Write(out)
	c.l.sealed = out[:0]
}
