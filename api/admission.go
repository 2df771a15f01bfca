package api

import (
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// The connections of the API port, as the listener made by Listen holds
// them (DESIGN: limits answer or slow down, never drop; README: the HTTP
// API's limits). Each connection served takes one of Config.Concurrency
// slots, and one client address (an IPv4 address, an IPv6 /64) holds at
// most Config.ConnsPerAddress connections, so that no client can take
// every slot — nor, as the cap is below pusher's PublishWaiters, every
// waiting trigger.
//
// The kernel's accept queue is first in, first out, so a client stuck
// behind a flood of connections would wait for all of them. Instead the
// listener takes every connection off it at once and lets it wait in a
// small queue of its own, from which a freed slot goes to the connection
// whose address has the fewest served, the oldest first among equals: a
// client with no connection yet goes before a flooder's hundredth. When
// that queue is full, the connection of the address with the most
// connections, if it has more than one, is answered 503; if no address
// has more than one, new connections wait in the kernel's queue.
//
// While connections wait and every slot is taken, the listener makes room
// by ending a connection that is not being served (victim): one draining
// after an error answer (limits.go), one idle between keep-alive
// requests, one that has sent nothing for newGrace, one that has been
// reading a single request for slowRequest — first from the addresses
// that hold the most, so that the slots even out between addresses. A
// connection idle for less than idleGrace is ended only for another
// address holding at least two fewer (its client may be about to reuse
// it, and what it sends then meets a closed connection), and a
// connection whose request is in the handler never is. One more connection from an address at its cap ends
// a connection of that address that is idle for idleGrace or silent for
// newGrace; failing that it is answered 503 {"error": ...} with
// Retry-After: 1 and closed after a drain, as an error answer is
// (refuse).
//
// Ending a connection sets its read deadline to now rather than closing
// it: fasthttp, blocked reading it, then ends it in its own goroutine —
// silently if it was idle, with 408 if it had sent nothing or was inside
// a request — and a request whose first byte won the race is served
// instead (fasthttp moves the deadline on), never cut half read.

// Times that make a connection one the listener may end to make room.
const (
	newGrace    = 250 * time.Millisecond // accepted and silent this long
	idleGrace   = 2 * time.Second        // idle this long, for a newcomer from an address holding as many
	slowRequest = time.Second            // reading one request this long
	// slowGreedy is slowRequest for an address holding at least two more
	// connections than the newcomer's: a backend's request on a LAN is in
	// within a millisecond, and one address filling the slots with
	// requests sent a byte at a time must not hold another app's trigger
	// for a second.
	slowGreedy = 100 * time.Millisecond
	// reclaimRetry is how long the listener waits for the connection it
	// ended to close before it looks again (and sets the deadline again:
	// fasthttp may have moved it on between its idle hook and its read).
	reclaimRetry = 25 * time.Millisecond
)

// addrKey is the client address a connection counts against: its IPv4
// address, or the /64 of its IPv6 address (one host usually holds a whole
// /64).
func addrKey(a net.Addr) netip.Prefix {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}
	}
	ip := tcp.AddrPort().Addr().Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// signal wakes whoever waits on ch, if anyone.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// arrive takes a connection the kernel handed over: it waits for a slot,
// or is answered 503 and closed. It reports false when it must be offered
// again once a waiting connection has left the queue (every waiting one
// is its address's only connection).
func (t *connTable) arrive(nc net.Conn) bool {
	key := addrKey(nc.RemoteAddr())
	now := time.Now()
	t.mu.Lock()
	a := t.addrs[key]
	if a == nil {
		a = &addrCount{key: key}
	}
	if t.perAddr > 0 && a.total() >= t.perAddr {
		v := t.victim(now, a, true)
		if v == nil {
			t.mu.Unlock()
			t.refuse(nc, tooMany)
			return true
		}
		t.end(v, now)
	}
	if len(t.waiting) == cap(t.waiting) {
		g := t.greediest()
		switch {
		case a.total() > 0 && a.total() >= g.addr.total():
			t.mu.Unlock()
			t.refuse(nc, tooMany)
			return true
		case g.addr.total() > 1:
			t.unwait(g)
			t.mu.Unlock()
			t.refuse(g.Conn, tooMany)
			t.mu.Lock()
		default:
			t.mu.Unlock()
			return false
		}
	}
	t.addrs[key] = a
	a.waiting++
	t.counts[connWaiting]++
	t.waiting = append(t.waiting, &conn{Conn: nc, t: t, addr: a, state: connWaiting, since: now})
	t.mu.Unlock()
	signal(t.arrived)
	return true
}

// greediest is the waiting connection whose address holds the most, the
// newest among equals. t.mu is held; the queue is not empty.
func (t *connTable) greediest() *conn {
	g := t.waiting[0]
	for _, c := range t.waiting[1:] {
		if c.addr.total() >= g.addr.total() {
			g = c
		}
	}
	return g
}

// unwait takes c out of the queue. t.mu is held.
func (t *connTable) unwait(c *conn) {
	for i, w := range t.waiting {
		if w == c {
			t.waiting = append(t.waiting[:i], t.waiting[i+1:]...)
			break
		}
	}
	c.addr.waiting--
	t.counts[connWaiting]--
	if c.addr.total() == 0 {
		delete(t.addrs, c.addr.key)
	}
	signal(t.room)
}

// next returns the next connection to serve once it has a slot, ending a
// connection to make room when one waits and none is free. It returns
// net.ErrClosed once closed closes.
func (t *connTable) next(closed <-chan struct{}) (*conn, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		now := time.Now()
		t.mu.Lock()
		if len(t.waiting) > 0 && len(t.open) < t.slots {
			c := t.first()
			t.unwait(c)
			c.addr.open++
			t.addrs[c.addr.key] = c.addr
			t.open[c] = struct{}{}
			t.counts[connNew]++
			c.state, c.since = connNew, now
			t.mu.Unlock()
			return c, nil
		}
		wait := len(t.waiting) > 0
		if wait {
			if v := t.victim(now, t.first().addr, false); v != nil {
				t.end(v, now)
			}
		}
		t.mu.Unlock()
		var tick <-chan time.Time
		if wait {
			if timer == nil {
				timer = time.NewTimer(reclaimRetry)
			} else {
				timer.Reset(reclaimRetry)
			}
			tick = timer.C
		}
		select {
		case <-t.arrived:
		case <-t.freed:
		case <-tick:
		case <-closed:
			return nil, net.ErrClosed
		}
	}
}

// first is the waiting connection the next slot goes to: that of the
// address with the fewest served, the oldest among equals. t.mu is held;
// the queue is not empty.
func (t *connTable) first() *conn {
	c := t.waiting[0]
	for _, w := range t.waiting[1:] {
		if w.addr.open < c.addr.open {
			c = w
		}
	}
	return c
}

// victim picks the connection to end to make room for a connection from
// a, or nil. Over a's cap (same), only a's own connections are looked at;
// else those of addresses holding at least two more than a come first,
// as a slot from them evens the shares. By state: one draining after an
// error answer; one idle for idleGrace, or for any time on one of those
// addresses; one silent for newGrace; one reading a request for
// slowRequest, or slowGreedy on those addresses (not over a's cap: a slow
// request of a's stays). Then the
// address holding the most, then the oldest. t.mu is held.
func (t *connTable) victim(now time.Time, a *addrCount, same bool) *conn {
	var best *conn
	bestRank := 0
	for c := range t.open {
		if same && c.addr != a || c.reclaiming && now.Sub(c.reclaimAt) < reclaimRetry {
			continue
		}
		greedier := !same && c.addr != a && c.addr.open >= a.open+2
		age := now.Sub(c.since)
		rank := -1
		switch c.state {
		case connClosing:
			rank = 0
		case connIdle:
			if greedier || age >= idleGrace {
				rank = 1
			}
		case connNew:
			if age >= newGrace {
				rank = 2
			}
		case connReading:
			if !same && (age >= slowRequest || greedier && age >= slowGreedy) {
				rank = 3
			}
		}
		if rank < 0 {
			continue
		}
		if !greedier {
			rank += 4
		}
		if best == nil || rank < bestRank || rank == bestRank &&
			(c.addr.open > best.addr.open || c.addr.open == best.addr.open && c.since.Before(best.since)) {
			best, bestRank = c, rank
		}
	}
	return best
}

// end sets c's read deadline to now, so that fasthttp (or the drain)
// stops waiting for it and closes it. t.mu is held.
func (t *connTable) end(c *conn, now time.Time) {
	if !c.reclaiming {
		t.ended[c.state].Add(1)
	}
	c.reclaiming, c.reclaimAt = true, now
	_ = c.Conn.SetReadDeadline(now)
}

// closeWaiting answers the connections still waiting 503, when the
// listener closes (the process is stopping: their clients try again, on
// the next process).
func (t *connTable) closeWaiting() {
	t.mu.Lock()
	waiting := append([]*conn(nil), t.waiting...)
	for _, c := range waiting {
		t.unwait(c)
	}
	t.mu.Unlock()
	for _, c := range waiting {
		t.refuse(c.Conn, stopping)
	}
}

// The answers to a connection refused: over its address's cap or the
// client holding the most when the queue is full; waiting when the
// process stops.
var (
	tooMany = rawResponse(fasthttp.StatusServiceUnavailable, "Service Unavailable",
		"Retry-After: 1\r\n", `{"error":"Too many connections from this address; retry shortly"}`)
	stopping = rawResponse(fasthttp.StatusServiceUnavailable, "Service Unavailable",
		"Retry-After: 1\r\n", `{"error":"Server is restarting; retry shortly"}`)
)

// rawResponse is a whole HTTP/1.1 response that closes its connection,
// for a connection fasthttp never sees.
func rawResponse(status int, reason, headers, body string) []byte {
	return []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + reason + "\r\nServer: revurb\r\nContent-Type: application/json\r\n" +
		headers + "Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// A refused connection's client may send this long before its request's
// first byte, and this much after the answer.
const (
	refusalWait  = time.Second
	refusalDrain = 64 << 10
)

// refuse gives nc answer (a 503) and closes it. The answer waits for the
// first byte of the request — an HTTP client drops an answer that comes
// before it asked (Go's does) — and the close for a drain. That happens on
// a goroutine of its own while fewer than cap(refusers) refusals are
// under way; beyond, at once: answered if the request has begun to
// arrive, else closed unanswered, before the client asked anything.
func (t *connTable) refuse(nc net.Conn, answer []byte) {
	t.refused.Add(1)
	select {
	case t.refusers <- struct{}{}:
		go func() {
			defer func() { <-t.refusers }()
			_ = nc.SetReadDeadline(time.Now().Add(refusalWait))
			var b [1]byte
			if n, _ := nc.Read(b[:]); n == 1 {
				_ = nc.SetDeadline(time.Now().Add(lingerTime))
				if _, err := nc.Write(answer); err == nil {
					drain(nc, refusalDrain)
				}
			}
			_ = nc.Close()
		}()
	default:
		if discardBuffered(nc) {
			_ = nc.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := nc.Write(answer); err == nil {
				discardBuffered(nc)
			}
		}
		_ = nc.Close()
	}
}

// discardBuffered reads and drops what the kernel holds for nc now,
// without waiting for more, up to 64 KiB, and reports whether there was
// anything.
func discardBuffered(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var buf [4096]byte
	some := false
	_ = rc.Read(func(fd uintptr) bool {
		for range 16 {
			n, err := unix.Read(int(fd), buf[:])
			if n <= 0 || err != nil {
				break
			}
			some = true
		}
		return true
	})
	return some
}
