// Package redistest runs a real redis-server for tests: on a free loopback
// port, keeping nothing on disk, so that a restart starts it empty, and
// killed with the test (and with the test binary, on Linux).
package redistest

import (
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	port int
	cmd  *exec.Cmd
}

// Start runs redis-server on a free loopback port and stops it when the
// test ends. The test fails when redis-server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &Server{t: t, port: port}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// URL is the server's address as a redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Restart starts redis-server again on the same port, empty, after Kill;
// it returns once the server accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatal("redis-server is needed (make test installs Debian's redis-server): ", err)
	}
	s.cmd = exec.Command(bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--enable-debug-command", "local") // Stall
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, io.Discard
	s.cmd.SysProcAttr = procAttr()
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.Addr())
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not start: ", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stall makes redis-server answer nothing for d, as a server stuck in a
// slow command or swapping would (DEBUG SLEEP); it returns once a PING
// goes unanswered, and d must be well over 100 ms.
func (s *Server) Stall(d time.Duration) {
	s.t.Helper()
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := fmt.Fprintf(c, "DEBUG SLEEP %.3f\r\n", d.Seconds()); err != nil {
		s.t.Fatal(err)
	}
	// The answer comes once the sleep is over; nobody waits for it.
	s.t.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p, err := net.Dial("tcp", s.Addr())
		if err != nil {
			s.t.Fatal(err)
		}
		_, _ = p.Write([]byte("PING\r\n"))
		_ = p.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		_, err = p.Read(make([]byte, 16))
		p.Close()
		if err != nil {
			return // no answer: asleep
		}
	}
	s.t.Fatal("redis-server did not stall")
}

// Kill stops redis-server as a crash would.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
	s.cmd = nil
}
