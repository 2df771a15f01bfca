// Package redistest runs real redis-server processes for tests: on free
// loopback ports, keeping nothing on disk (so that a restart starts
// empty), and killed with the test (and with the test binary, on Linux).
// Start runs one server; StartSentinel a primary with two replicas watched
// by three Sentinels; StartCluster a Redis Cluster of three primaries with
// a replica each. Do speaks to any of them.
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
	t        testing.TB
	port     int
	conf     string   // a config file, for a Sentinel; "" for none
	args     []string // beyond the port, bind and persistence
	sentinel bool
	tlsPort  int // 0: no TLS
	cmd      *exec.Cmd
}

// Start runs redis-server on a free loopback port and stops it when the
// test ends. The test fails when redis-server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, freePort(t, 0))
}

// start runs redis-server on port with the extra args.
func start(t testing.TB, port int, args ...string) *Server {
	t.Helper()
	// Its files (a replica's copy of the primary's data) in a directory of
	// the test's, not the package's.
	args = append([]string{"--dir", t.TempDir()}, args...)
	s := &Server{t: t, port: port, args: args}
	s.Restart()
	t.Cleanup(s.Kill)
	return s
}

// freePort returns a loopback port free now; with plus > 0, port+plus is
// free too (Redis Cluster's bus listens at port+10000).
func freePort(t testing.TB, plus int) int {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if plus == 0 {
			return port
		}
		if port+plus > 65535 {
			continue
		}
		if ln2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+plus)); err == nil {
			ln2.Close()
			return port
		}
	}
	t.Fatal("redistest: no free port pair")
	return 0
}

// URL is the server's address as a redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// servedPort is the port clients and peers use: the TLS one, if the
// server has one.
func (s *Server) servedPort() int {
	if s.tlsPort != 0 {
		return s.tlsPort
	}
	return s.port
}

// servedAddr is host:servedPort.
func (s *Server) servedAddr() string { return "127.0.0.1:" + strconv.Itoa(s.servedPort()) }

// Port is the server's port.
func (s *Server) Port() int { return s.port }

// Alive reports whether the process runs (it has not been killed).
func (s *Server) Alive() bool { return s.cmd != nil }

// Restart starts redis-server again on the same port, empty, after Kill;
// it returns once the server accepts connections.
func (s *Server) Restart() {
	s.t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		s.t.Fatal("redis-server is needed (make test installs Debian's redis-server): ", err)
	}
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1")
	if s.sentinel {
		args = append(args, "--sentinel")
	} else {
		args = append(args, "--save", "", "--appendonly", "no", "--enable-debug-command", "local", // Stall, DEBUG POPULATE
			"--repl-diskless-sync-delay", "0") // replicas in sync at once, not 5 s later
	}
	s.cmd = exec.Command(bin, append(args, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr = io.Discard, io.Discard
	s.cmd.SysProcAttr = procAttr()
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := Do(s.Addr(), "PING"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not start on ", s.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Do runs one command on the server, failing the test on an error.
func (s *Server) Do(args ...string) any {
	s.t.Helper()
	v, err := Do(s.Addr(), args...)
	if err != nil {
		s.t.Fatalf("redistest: %v on %s: %v", args, s.Addr(), err)
	}
	return v
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

// AddUser creates an ACL user that may use only the keys and pub/sub
// channels starting with prefix, and no dangerous command (KEYS, DEBUG,
// CONFIG, FLUSHALL...) but ROLE, which a Sentinel client asks a primary,
// as the README tells an operator to give revurb.
func (s *Server) AddUser(user, password, prefix string) {
	s.t.Helper()
	s.Do("ACL", "SETUSER", user, "reset", "on", ">"+password, "~"+prefix+":*", "&"+prefix+":*", "+@all", "-@dangerous", "+role")
}
