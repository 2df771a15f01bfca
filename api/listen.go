package api

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listen opens the API's listening socket on addr (host:port) for Serve.
//
// The socket has SO_REUSEPORT, so that a new revurb process binds the same
// port while this one drains: the kernel shares new connections between the
// processes' listeners, and Drain closes this one. The listener holds at
// most Options.Concurrency connections at once: past it Accept waits for
// one to close and new clients wait in the kernel's queue, so API clients
// cannot use up the descriptors the process keeps in reserve. And Accept
// rides out a lack of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) by
// waiting and trying again, where fasthttp would stop serving.
func (s *Server) Listen(addr string) (net.Listener, error) {
	ln, err := ListenReusePort(addr)
	if err != nil {
		return nil, err
	}
	return &listener{Listener: ln, s: s, slots: make(chan struct{}, s.concurrency), closed: make(chan struct{})}, nil
}

// ListenReusePort listens on addr (host:port) with SO_REUSEPORT, so that
// a new revurb process binds the same port while this one drains. The
// process's other HTTP listeners (metrics, profiles) use it too, so that
// no listener of revurb stands in the way of a restart.
func ListenReusePort(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: reusePort}
	return lc.Listen(context.Background(), "tcp", addr)
}

// reusePort sets SO_REUSEPORT on a socket before it binds.
func reusePort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// listener caps the connections it hands out and waits out a lack of
// descriptors.
type listener struct {
	net.Listener
	s         *Server
	slots     chan struct{} // one per connection handed out and not yet closed
	closed    chan struct{}
	closeOnce sync.Once
}

// Accept returns the next connection once fewer than the cap are open.
func (l *listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	wait := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return &conn{Conn: c, slots: l.slots}, nil
		}
		if !outOfDescriptors(err) {
			<-l.slots
			return nil, err
		}
		l.s.log.Warn("api: accept failed; trying again", "error", err, "in", wait.String())
		select {
		case <-time.After(wait):
		case <-l.closed:
			<-l.slots
			return nil, net.ErrClosed
		}
		wait = min(2*wait, time.Second)
	}
}

// Close stops accepting; connections handed out stay open.
func (l *listener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// outOfDescriptors reports whether an accept failed for want of
// descriptors or memory, which frees up as connections close.
func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

// conn gives its listener's slot back when it closes.
type conn struct {
	net.Conn
	slots chan struct{}
	once  sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}
