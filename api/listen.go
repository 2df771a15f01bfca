package api

import (
	"context"
	"crypto/tls"
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
// processes' listeners, and Drain closes this one. With Config.TLS the
// connections speak HTTPS. The listener serves at
// most Config.Concurrency connections at once, and Config.ConnsPerAddress
// of one client address (conns.go): API clients cannot use up the
// descriptors the process keeps in reserve, and no client can lock the
// others out. And it rides out a lack of descriptors (EMFILE, ENFILE,
// ENOBUFS, ENOMEM) by waiting and trying again, where fasthttp would stop
// serving.
func (s *Server) Listen(addr string) (net.Listener, error) {
	ln, err := ListenReusePort(addr)
	if err != nil {
		return nil, err
	}
	t := newConnTable(s.concurrency, s.perAddr)
	s.mu.Lock()
	s.tables = append(s.tables, t)
	s.mu.Unlock()
	l := &listener{Listener: ln, s: s, t: t, closed: make(chan struct{}), done: make(chan struct{})}
	go l.accept()
	return l, nil
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

// listener takes connections off the kernel's queue on a goroutine of
// its own as they come, and hands them to Serve as they get a slot
// (conns.go).
type listener struct {
	net.Listener
	s         *Server
	t         *connTable
	closed    chan struct{}
	closeOnce sync.Once
	done      chan struct{} // closed when accept returns
	err       error         // why accept returned, if not for Close; read after done
}

// accept takes every connection the kernel hands over to the table, which
// queues or refuses it; it waits only while the table's queue holds no
// connection it could refuse for a newcomer, or for descriptors.
func (l *listener) accept() {
	defer close(l.done)
	wait := 5 * time.Millisecond
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			if !outOfDescriptors(err) {
				select {
				case <-l.closed:
				default:
					l.err = err
				}
				return
			}
			l.s.log.Warn("api: accept failed; trying again", "error", err, "in", wait.String())
			select {
			case <-time.After(wait):
			case <-l.closed:
				return
			}
			wait = min(2*wait, time.Second)
			continue
		}
		wait = 5 * time.Millisecond
		if l.s.tls != nil {
			// The handshake runs on the connection's first read, in the
			// goroutine that serves it, under the request's read deadline;
			// what the table reads and answers is then plaintext.
			nc = tls.Server(nc, l.s.tls)
		}
		for !l.t.arrive(nc) {
			select {
			case <-l.t.room:
			case <-l.closed:
				_ = nc.Close()
				return
			}
		}
	}
}

// Accept returns the next connection to serve.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.t.next(l.done)
	if err != nil {
		if l.err != nil {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
	return c, nil
}

// Close stops accepting and closes the connections still waiting for a
// slot; connections being served stay open.
func (l *listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.closed)
		err = l.Listener.Close()
		<-l.done
		l.t.closeWaiting()
	})
	return err
}

// outOfDescriptors reports whether an accept failed for want of
// descriptors or memory, which frees up as connections close.
func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
