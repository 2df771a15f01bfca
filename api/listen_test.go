package api

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
)

// serveListen serves a fresh API on a Listen listener on a free loopback
// port and returns its address.
func serveListen(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	p, err := pusher.NewServer([]pusher.AppConfig{pusher.DefaultApp(testAppID, testKey, testSecret)}, pusher.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Attach(&syncLoops{}); err != nil {
		t.Fatal(err)
	}
	s := New(p, opts)
	ln, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Shutdown(shutdownCtx(t))
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// keepAlive is a raw HTTP/1.1 connection that sends GET /up and reads the
// answer, keeping the connection.
type keepAlive struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keepAlive {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keepAlive{t: t, c: c, br: bufio.NewReader(c)}
}

func (k *keepAlive) send() {
	k.t.Helper()
	if _, err := k.c.Write([]byte("GET /up HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		k.t.Fatal(err)
	}
}

// read returns the next response, or an error if none comes in wait.
func (k *keepAlive) read(wait time.Duration) (*http.Response, error) {
	_ = k.c.SetReadDeadline(time.Now().Add(wait))
	res, err := http.ReadResponse(k.br, nil)
	if err == nil {
		res.Body.Close()
	}
	return res, err
}

// TestListenCapsConnections: with Concurrency 2, a third client is not
// served while two connections are open, and is as soon as one closes.
func TestListenCapsConnections(t *testing.T) {
	_, addr := serveListen(t, Options{Concurrency: 2})
	a, b := dialKeepAlive(t, addr), dialKeepAlive(t, addr)
	for _, k := range []*keepAlive{a, b} {
		k.send()
		if res, err := k.read(5 * time.Second); err != nil || res.StatusCode != 200 {
			t.Fatalf("first two: %v %v", res, err)
		}
	}
	c := dialKeepAlive(t, addr) // accepted by the kernel, not handed to the server
	c.send()
	if res, err := c.read(300 * time.Millisecond); err == nil {
		t.Fatalf("third connection served while two were open: %v", res.Status)
	}
	a.c.Close()
	if res, err := c.read(5 * time.Second); err != nil || res.StatusCode != 200 {
		t.Fatalf("third, once one closed: %v %v", res, err)
	}
}

// TestDrain: after Drain a keep-alive client's next request is answered,
// with Connection: close; /up says 503; and the listener is closed, so new
// connections go elsewhere.
func TestDrain(t *testing.T) {
	s, addr := serveListen(t, Options{})
	k := dialKeepAlive(t, addr)
	k.send()
	if res, err := k.read(5 * time.Second); err != nil || res.StatusCode != 200 || res.Close {
		t.Fatalf("before Drain: %v %v", res, err)
	}
	s.Drain()
	k.send()
	res, err := k.read(5 * time.Second)
	if err != nil || res.StatusCode != 503 || !res.Close {
		t.Fatalf("after Drain: %v %v, want 503 with Connection: close", res, err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("still accepting after Drain")
	}
}
